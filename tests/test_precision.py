"""``--precision bf16``: networks under bfloat16 autocast, float32 parameters and densities, float64
sums; close to float32 (the CPU runs autocast too, so this is tested here)."""

import json

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO

import pyro_vrnn as pv
from pyro_vrnn.cli import main
from pyro_vrnn.infer.importance import importance_estimate
from pyro_vrnn.train.precision import AutocastELBO, autocast, check_precision


@pytest.fixture
def vrnn_and_data():
    pyro.set_rng_seed(0)
    return pv.VRNN(3, 4, 32, feature_dims=(32,), hidden_dims=(32,)), torch.randn(6, 20, 3)


@pytest.mark.parametrize("elbo", [Trace_ELBO(max_plate_nesting=1), RenyiELBO(alpha=0, num_particles=2,
                                                                             max_plate_nesting=1)])
def test_a_bf16_training_step_keeps_float32_gradients_and_a_loss_near_float32(vrnn_and_data, elbo):
    model, x = vrnn_and_data
    pyro.set_rng_seed(1)
    full = elbo.loss_and_grads(model.model, model.guide, x, None)
    for p in model.parameters():
        p.grad = None
    pyro.set_rng_seed(1)
    half = AutocastELBO(elbo, "cpu").loss_and_grads(model.model, model.guide, x, None)
    assert half != full and abs(half - full) < 0.02 * abs(full)
    assert all(p.dtype == p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in model.parameters())


def test_bf16_importance_estimates_are_float64_and_near_float32(vrnn_and_data):
    model, x = vrnn_and_data
    pyro.set_rng_seed(2)
    full = importance_estimate(model.model, model.guide, x, num_particles=50).log_likelihood
    with autocast("bf16", "cpu"):
        pyro.set_rng_seed(2)
        half = importance_estimate(model.model, model.guide, x, num_particles=50).log_likelihood
    assert half.dtype == torch.float64 and not torch.equal(half, full)
    assert torch.allclose(half, full, rtol=5e-3)


def test_the_cli_records_the_precision_of_training_and_evaluation(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--model", "vrnn-normal", "--data", "music-synthetic", "--data-option", "num_train=4",
            "--data-option", "num_valid=1", "--data-option", "num_test=2", "--data-option", "lengths=(4,7)",
            "--h-dim", "6", "--z-dim", "2", "--feature-dims", "6", "--hidden-dims", "6", "--batch-size", "2",
            "--steps", "2", "--quiet", "--out", str(run), "--precision", "bf16"]
    assert main(args) == 0
    assert json.loads((run / "config.json").read_text())["precision"] == "bf16"
    assert main(["train", "--out", str(run), "--resume", "--steps", "3", "--quiet"]) == 0  # kept on resume
    assert json.loads((run / "config.json").read_text())["precision"] == "bf16"
    evaluate = ["evaluate", str(run), "--particles", "4", "--precision", "bf16", "--json", str(tmp_path / "e.json")]
    assert main(evaluate) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["precision"] == "bf16" and all(v < 0 for v in result["per_sequence"]["log_likelihood"])


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match="fp32, bf16"):
        check_precision("fp16")


@pytest.mark.parametrize("emission,guide,prior", [("normal", "filtering", "conditional"), ("gmm", "storn", "standard"),
                                                  ("bernoulli", "smoothing", "conditional")])
def test_under_cpu_autocast_samples_and_log_densities_are_float32(emission, guide, prior):
    """Issue 23: the help says log-densities stay float32; under CPU autocast z, log q and log p(z) were
    bfloat16 (0.03 nats per step of error in log q)."""
    torch.manual_seed(0)
    m = pv.VRNN(3, 2, 8, emission, guide=guide, prior=prior, feature_dims=(8,), hidden_dims=(8,), rnn_dim=8)
    x = torch.randn(2, 4, 3)
    if emission == "bernoulli":
        x = (x > 0).float()
    with autocast("bf16", "cpu"):
        guide_trace = poutine.trace(m.guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(m.model, trace=guide_trace)).get_trace(x)
        guide_trace.compute_log_prob()
        model_trace.compute_log_prob()
    assert m.phi_x(x).dtype == torch.float32  # outside autocast
    with autocast("bf16", "cpu"):
        assert m.phi_x(x).dtype == torch.bfloat16  # the networks do run in bfloat16
    for t in range(4):
        z = guide_trace.nodes[f"z_{t}"]
        assert z["value"].dtype == torch.float32 and z["log_prob"].dtype == torch.float32  # z and log q
        assert model_trace.nodes[f"z_{t}"]["log_prob"].dtype == torch.float32  # log p(z)
        assert model_trace.nodes[f"x_{t}"]["log_prob"].dtype == torch.float32  # log p(x | z)
