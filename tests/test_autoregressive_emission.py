"""The autoregressive emission over binary keys: a normalized density whose key d sees only the keys
before it, equal to the chain rule written out by hand, drawn from as it scores, inside every path."""

import itertools

import pyro
import pytest
import torch

from pyro_vrnn.components import AutoregressiveBernoulli, AutoregressiveBernoulliEmission, BernoulliEmission
from pyro_vrnn.components.distributions import autoregressive_masks
from pyro_vrnn.models.predictive import tempered_sample


def _emission(x_dim=5, in_dim=4, made_dim=7, seed=0):
    torch.manual_seed(seed)
    emission = AutoregressiveBernoulliEmission(in_dim, x_dim, (6,), made_dim=made_dim).double()
    with torch.no_grad():  # every weight away from its initial value (the direct term starts at zero)
        for p in emission.parameters():
            p.normal_()
    return emission


def _all_binary(x_dim):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=x_dim)), dtype=torch.float64)


def test_log_prob_sums_to_one_over_every_binary_vector():
    emission = _emission()
    fn = emission(torch.randn(2, 3, 4, dtype=torch.float64))
    assert fn.batch_shape == (2, 3) and fn.event_shape == (5,)
    log_p = fn.log_prob(_all_binary(5)[:, None, None, :])  # (32, 2, 3)
    assert torch.allclose(torch.logsumexp(log_p, 0), torch.zeros(2, 3, dtype=torch.float64), atol=1e-12)


def test_each_keys_conditional_depends_on_the_keys_before_it_only():
    fn = _emission(x_dim=6)(torch.randn(4, dtype=torch.float64))
    x = torch.bernoulli(torch.full((6,), 0.5, dtype=torch.float64))
    base = fn.conditional_logits(x)
    for j in range(6):
        flipped = x.clone()
        flipped[j] = 1 - flipped[j]
        changed = (fn.conditional_logits(flipped) - base).abs() > 1e-12
        assert not changed[:j + 1].any(), j  # l_d for d <= j never sees x_j
        assert changed[j + 1:].any() or j == 5, j  # and the keys after it do (random weights)


def test_log_prob_equals_the_chain_rule_written_out_key_by_key():
    emission = _emission()
    u = torch.randn(3, 4, dtype=torch.float64)
    x = torch.bernoulli(torch.full((3, 5), 0.4, dtype=torch.float64))
    fn = emission(u)
    with torch.no_grad():
        b = emission.bias(emission.net(u))
        c = emission.hidden_bias(emission.net(u))
        w, v, a = emission.in_weight, emission.out_weight, emission.direct_weight
        h_dim = w.shape[0]
        degree = [k % 4 + 1 for k in range(h_dim)]  # MADE degrees for D = 5: 1..D-1 in turn
        expected = torch.zeros(3, dtype=torch.float64)
        for n in range(3):
            for d in range(5):  # key d (0-based) sees keys j < d; unit k sees keys j < degree[k]
                hidden = [torch.relu(c[n, k] + sum(w[k, j] * x[n, j] for j in range(5) if j < degree[k]))
                          for k in range(h_dim)]
                logit = b[n, d] + sum(v[d, k] * hidden[k] for k in range(h_dim) if degree[k] < d + 1)
                logit = logit + sum(a[d, j] * x[n, j] for j in range(d))
                p = torch.sigmoid(logit)
                expected[n] += torch.log(p if x[n, d] == 1 else 1 - p)
    assert torch.allclose(fn.log_prob(x), expected, atol=1e-10)


def test_masks_follow_made_degrees_and_connect_every_key_after_the_first():
    into, out = autoregressive_masks(4, 6)
    assert into.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]
    assert (out @ into).triu().count_nonzero() == 0  # paths from key j to key d only where j < d
    assert (out.sum(1)[1:] > 0).all() and out[0].sum() == 0


def test_draws_have_the_densitys_frequencies():
    fn = _emission(x_dim=3, seed=1)(torch.randn(4, dtype=torch.float64))
    configurations = _all_binary(3)
    probabilities = fn.log_prob(configurations).exp().detach()
    pyro.set_rng_seed(0)
    draws = fn.sample((40000,))
    assert draws.shape == (40000, 3)
    codes = (draws * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(-1).long()
    frequencies = torch.bincount(codes, minlength=8).double() / 40000
    standard_error = (probabilities * (1 - probabilities) / 40000).sqrt()
    assert ((frequencies - probabilities).abs() <= 4 * standard_error + 1e-4).all(), (frequencies, probabilities)


def test_temperature_zero_takes_each_keys_likelier_value_given_the_keys_before_it():
    fn = _emission(x_dim=6, seed=2)(torch.randn(3, 4, dtype=torch.float64))
    greedy = tempered_sample(fn, 0)
    assert greedy.shape == (3, 6)
    logits = fn.conditional_logits(greedy)
    assert torch.equal(greedy, (logits > 0).double())  # each key as its conditional's likelier value
    pyro.set_rng_seed(5)
    at_one = tempered_sample(fn, 1.0)
    pyro.set_rng_seed(5)
    assert torch.equal(at_one, fn.sample())  # tau = 1 is the density's own draw


def test_with_the_autoregressive_weights_at_zero_it_is_a_bernoulli_emission():
    emission = _emission()
    with torch.no_grad():
        emission.in_weight.zero_()
        emission.direct_weight.zero_()
    u = torch.randn(5, 4, dtype=torch.float64)
    x = torch.bernoulli(torch.full((5, 5), 0.5, dtype=torch.float64))
    c = emission.hidden_bias(emission.net(u))
    logits = emission.bias(emission.net(u)) + torch.relu(c) @ (emission.out_weight
                                                               * autoregressive_masks(5, 7)[1].double()).t()
    independent = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    assert torch.allclose(emission(u).log_prob(x), independent, atol=1e-12)
    assert isinstance(BernoulliEmission(4, 5)(u.float()), torch.distributions.Independent)


def test_extra_leading_batch_dims_equal_one_call_per_particle_and_expand():
    emission = _emission()
    u = torch.randn(7, 3, 4, dtype=torch.float64)  # (particles, batch, in)
    x = torch.bernoulli(torch.full((3, 5), 0.5, dtype=torch.float64))
    log_p = emission(u).log_prob(x)
    assert log_p.shape == (7, 3)
    for k in range(7):
        assert torch.allclose(log_p[k], emission(u[k]).log_prob(x), atol=1e-12)
    single = emission(u[0, :1])
    assert single.expand((4, 1)).batch_shape == (4, 1)
    assert torch.allclose(single.expand((4, 1)).log_prob(x[:1]), single.log_prob(x[:1]).expand(4, 1))
    with pytest.raises(ValueError, match=r"weights must be W \(H, D\)"):
        AutoregressiveBernoulli(single.bias, single.hidden_bias, emission.out_weight, emission.out_weight,
                                emission.direct_weight)
    with pytest.raises(ValueError, match="support"):
        single.log_prob(torch.full((1, 5), 0.5, dtype=torch.float64))  # not binary


def test_the_music_ar_preset_trains_in_windows_samples_midi_and_evaluates_by_smc(tmp_path):
    """``--preset music-ar``: a VRNN with the autoregressive emission trained one update per window of 100
    steps; its samples are 0/1 piano rolls written as MIDI; SMC scores it."""
    import json

    import numpy as np

    from pyro_vrnn.cli.main import main
    from pyro_vrnn.data.music import read_midi_piano_roll

    tiny = ["--data", "music-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
            "--data-option", "num_test=2", "--data-option", "lengths=(9,12)", "--h-dim", "8", "--z-dim", "2",
            "--feature-dims", "8", "--hidden-dims", "8", "--batch-size", "4", "--valid-every", "2", "--quiet"]
    run = tmp_path / "run"
    assert main(["train", "--preset", "music-ar", *tiny, "--steps", "3", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["emission"] == "autoregressive" and config["training"]["train_window"] == 100
    assert main(["sample", str(run), "--num", "2", "--length", "6", "--temperature", "0.5", "--out",
                 str(tmp_path / "samples"), "--quiet"]) == 0
    roll = read_midi_piano_roll(tmp_path / "samples" / "sample_0.mid")
    assert roll.shape[1] == 88 and set(np.unique(roll)) <= {0.0, 1.0}
    assert main(["evaluate", str(run), "--particles", "3", "--estimator", "is,smc", "--quiet"]) == 0
    evaluation = json.loads((run / "eval_test.json").read_text())
    assert evaluation["smc_num_particles"] == 3 and np.isfinite(evaluation["smc_log_likelihood"])
