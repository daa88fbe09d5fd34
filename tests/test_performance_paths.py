"""The fast paths of the training step equal the plain ones: loss and gradients on fixed noise.

- the model reuses the guide's recurrent states and ``phi_x(x)`` and evaluates the prior and the
  emission for all steps in one batched call (``reuse_guide_states=True``) -- against recomputing
  everything step by step (``reuse_guide_states=False``), for every guide and emission, masks
  and vectorized particles included, and for a component whose distribution cannot be split;
- the benchmark's plain-PyTorch reference VRNN equals our Pyro ``Trace_ELBO`` step;
- the LSTM recurrence with its input projection split (``x`` share for all steps at once) and,
  without autograd, its faster pointwise part equals ``nn.LSTMCell`` on the concatenated input;
- chunked importance sampling gives the same estimate as unchunked for the same seed.
"""

import contextlib
import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from torch import nn

from pyro_vrnn import VRNN, importance_estimate
from pyro_vrnn.nn import broadcast_cat, broadcast_leading
from pyro_vrnn.transitions import LSTMTransition

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reference_vrnn import TorchVRNNLoss  # noqa: E402


def _data(emission, batch=3, steps=5, x_dim=3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, steps, x_dim, generator=g, dtype=torch.float64)
    if emission == "bernoulli":
        x = (x > 0).double()
    if emission == "handwriting":
        x[..., 2] = (x[..., 2] > 0.5).double()
    return x


def _loss_and_grads(model, x, mask, reuse, num_particles=2):
    model.reuse_guide_states = reuse
    pyro.set_rng_seed(7)
    model.zero_grad()
    elbo = Trace_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=1)
    loss = elbo.differentiable_loss(model.model, model.guide, x, mask)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(fast, slow, atol=1e-10):
    (fast_loss, fast_grads), (slow_loss, slow_grads) = fast, slow
    assert torch.allclose(fast_loss, slow_loss, rtol=0, atol=atol)
    assert fast_grads.keys() == slow_grads.keys() and len(fast_grads) > 5
    for name in fast_grads:
        assert torch.allclose(fast_grads[name], slow_grads[name], rtol=0, atol=atol), name


@pytest.mark.parametrize("guide,emission,num_particles", [
    ("filtering", "normal", 1), ("filtering", "gmm", 2), ("filtering", "bernoulli", 2),
    ("filtering", "handwriting", 1), ("smoothing", "normal", 2), ("storn", "gmm", 2),
])
def test_batched_model_path_equals_step_by_step_recomputation(guide, emission, num_particles):
    model = VRNN(3, 2, 8, emission, guide=guide, feature_dims=(8,), hidden_dims=(8,), num_components=3).double()
    x = _data(emission)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    mask[2, 1:] = False
    fast = _loss_and_grads(model, x, mask, True, num_particles)
    slow = _loss_and_grads(model, x, mask, False, num_particles)
    _assert_same(fast, slow)


class _LaplaceEmission(nn.Module):
    """An emission whose distribution the batched path does not know how to split by step."""

    def __init__(self, in_dim, x_dim):
        super().__init__()
        self.x_dim = x_dim
        self.loc = nn.Linear(in_dim, x_dim)

    def forward(self, u):
        return dist.Laplace(self.loc(u), 1.0).to_event(1)


def test_unsplittable_emission_falls_back_to_per_step_and_stays_exact():
    model = VRNN(3, 2, 8, _LaplaceEmission(64 + 8, 3), feature_dims=(64,), hidden_dims=(8,)).double()
    x = _data("normal")
    _assert_same(_loss_and_grads(model, x, None, True), _loss_and_grads(model, x, None, False))
    _assert_same(_loss_and_grads(model, x, None, True), _loss_and_grads(model, x, None, False))  # cached verdict


def test_model_recomputes_when_it_does_not_replay_the_guide():
    """After a guide call, a model run that samples its own z must not use the guide's states."""
    model = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x = _data("normal")
    model.guide(x)
    trace = pyro.poutine.trace(model.model).get_trace(x)  # z drawn from the prior, not replayed
    latents = {n: s["value"] for n, s in trace.nodes.items() if n.startswith("z_")}
    model.reuse_guide_states = False
    again = pyro.poutine.trace(pyro.poutine.condition(model.model, latents)).get_trace(x)
    for t in range(5):
        assert torch.allclose(trace.nodes[f"x_{t}"]["fn"].log_prob(x[:, t]), again.nodes[f"x_{t}"]["fn"].log_prob(x[:, t]))


@pytest.mark.parametrize("loop", ["per_step", "hoisted"])
def test_benchmark_reference_equals_pyro_trace_elbo(loop):
    pyro.clear_param_store()
    model = VRNN(3, 4, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x = _data("normal", batch=4, steps=6)
    params = list(model.parameters())
    torch.manual_seed(3)
    pyro_loss = Trace_ELBO(max_plate_nesting=1).loss_and_grads(model.model, model.guide, x)
    pyro_grads = [p.grad.clone() for p in params]
    model.zero_grad()
    torch.manual_seed(3)
    ref_loss = TorchVRNNLoss(model, loop=loop)(x)
    ref_loss.backward()
    assert ref_loss.item() == pytest.approx(pyro_loss, rel=1e-12)
    for p, g in zip(params, pyro_grads):
        assert torch.allclose(p.grad, g, rtol=0, atol=1e-10)


def test_chunked_importance_sampling_equals_unchunked_for_the_same_seed():
    model = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x = _data("normal", batch=3, steps=4)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[2, 2:] = False
    estimates = []
    for chunk_size in (None, 7, 3, 1):
        pyro.set_rng_seed(11)
        estimates.append(importance_estimate(model.model, model.guide, x, mask, num_particles=7,
                                             chunk_size=chunk_size))
    model.reuse_guide_states = False  # and the model's reuse of the guide's states changes nothing
    pyro.set_rng_seed(11)
    estimates.append(importance_estimate(model.model, model.guide, x, mask, num_particles=7, chunk_size=3))
    for other in estimates[1:]:
        assert torch.allclose(other.log_likelihood, estimates[0].log_likelihood, rtol=0, atol=1e-10)
        assert torch.allclose(other.elbo, estimates[0].elbo, rtol=0, atol=1e-10)


@pytest.mark.parametrize("shapes", [[(3, 1, 4), (5, 4), ()], [(2,), (1,)], [(0,), (1,)], [(), ()]])
def test_broadcast_leading_agrees_with_torch(shapes):
    sizes = [torch.Size(s) for s in shapes]
    assert broadcast_leading(*sizes) == torch.broadcast_shapes(*sizes)


def test_broadcast_cat_broadcasts_and_rejects_mismatches():
    a, b = torch.randn(2, 3), torch.randn(4, 2, 5)
    assert torch.equal(broadcast_cat([a, b]), torch.cat([a.expand(4, 2, 3), b], -1))
    with pytest.raises(ValueError):
        broadcast_cat([torch.randn(2, 3), torch.randn(3, 3)])



def test_replayed_model_sites_use_the_batched_log_densities():
    """The fast path is really taken: the model's sites carry log-densities computed in one batch."""
    from pyro_vrnn.guides import StepIndependent
    model = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x = _data("normal")
    guide_trace = pyro.poutine.trace(model.guide).get_trace(x)
    model_trace = pyro.poutine.trace(pyro.poutine.replay(model.model, trace=guide_trace)).get_trace(x)
    for name in ("z_0", "x_0", "z_4", "x_4"):
        site = model_trace.nodes[name]
        assert isinstance(site["fn"], StepIndependent) and site["fn"].precomputed[0] is site["value"]
        expected = dist.Independent(site["fn"].base_dist, 1).log_prob(site["value"])
        assert torch.allclose(site["fn"].log_prob(site["value"]), expected, rtol=0, atol=1e-12)


def test_guide_head_with_projected_context_equals_head_on_concatenated_input():
    from pyro_vrnn.guides import GaussianHead
    head = GaussianHead(5 + 4, 3, hidden_dims=(6, 7)).double()
    g = torch.Generator().manual_seed(0)
    context = torch.randn(2, 8, 5, generator=g, dtype=torch.float64)  # (B, T, C)
    h = torch.randn(3, 2, 4, generator=g, dtype=torch.float64)  # particles in front
    expected = head(torch.cat([context[:, 1].expand(3, 2, 5), h], -1))
    got = head.forward_projected(head.project_context(context)[:, 1], h)
    assert got.batch_shape == expected.batch_shape
    assert torch.allclose(got.mean, expected.mean, rtol=0, atol=1e-12)
    assert torch.allclose(got.stddev, expected.stddev, rtol=0, atol=1e-12)


def test_benchmark_scripts_run_at_a_tiny_size(tmp_path):
    """Every benchmark script runs end to end (tiny sizes, in a subprocess: they set torch threads)."""
    import json
    import subprocess

    root = Path(__file__).resolve().parents[1]
    code = f"""
import sys
sys.path.insert(0, {str(root / 'benchmarks')!r})
import generate, importance, train_step
train_step.main(['--sizes', 'tiny', '--repeats', '2', '--warmup', '1', '--validation', 'both',
                 '--json', {str(tmp_path / 'train.json')!r}])
importance.main(['--particles', '6', '--chunk-sizes', '6', '4', '--loop-particles', '2', '--batch', '2',
                 '--steps', '3', '--h-dim', '8', '--z-dim', '2', '--json', {str(tmp_path / 'is.json')!r}])
generate.main(['--sizes', 'tiny', '--steps', '4', '--num-sequences', '2', '--repeats', '2',
               '--json', {str(tmp_path / 'gen.json')!r}])
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, capture_output=True, timeout=120)
    train = json.loads((tmp_path / "train.json").read_text())
    assert {"size", "torch_ms", "pyro_ms", "ratio"} <= set(train[0]) and train[0]["size"] == "tiny"
    assert {"loop_ms", "vectorized_ms", "speedup"} <= set(json.loads((tmp_path / "is.json").read_text())[0])
    assert {"torch_ms", "pyro_ms", "ratio"} <= set(json.loads((tmp_path / "gen.json").read_text())[0])


def test_a_model_with_a_pending_guide_cache_can_be_deep_copied():
    import copy

    model = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,))
    x = torch.randn(2, 4, 3)
    model.guide(x)  # leaves phi_x(x) and the recurrent states for the next model call
    clone = copy.deepcopy(model)
    assert clone._state_cache is None and model._state_cache is not None
    assert torch.isfinite(torch.tensor(Trace_ELBO(max_plate_nesting=1).loss(clone.model, clone.guide, x)))


@contextlib.contextmanager
def plain_lstm_cell():
    """Every LSTM step runs ``nn.LSTMCell`` on the concatenated input (the plain path) inside the ``with``."""
    LSTMTransition.decomposed = False
    try:
        yield
    finally:
        LSTMTransition.decomposed = True


@pytest.mark.parametrize("grad,min_rows", [(True, 256), (False, 0), (False, 256)])
def test_lstm_stepper_equals_lstm_cell_on_the_concatenated_input(grad, min_rows, monkeypatch):
    """``min_rows=0`` forces the no-grad pointwise route onto these few rows."""
    monkeypatch.setattr("pyro_vrnn.transitions.INFERENCE_MIN_ROWS", min_rows)
    transition = LSTMTransition(5 + 3, 4).double()
    g = torch.Generator().manual_seed(0)
    x_features = torch.randn(2, 6, 5, generator=g, dtype=torch.float64)  # (B, T, F_x)
    z_features = [torch.randn(*lead, 2, 3, generator=g, dtype=torch.float64) for lead in ((), (7,), (7,))]
    cell = transition.cell
    with torch.set_grad_enabled(grad):
        step = transition.stepper(x_features)
        state = transition.initial_state((2,), x_features)
        expected = transition.initial_state((2,), x_features)
        for t, z_feature in enumerate(z_features):  # (B, .) then particles in front of a (B, H) state
            state = step(t, z_feature, state)
            u = broadcast_cat([x_features[:, t], z_feature])
            flat = [v.expand(u.shape[:-1] + v.shape[-1:]).reshape(-1, v.shape[-1]) for v in (u, *expected)]
            expected = tuple(v.reshape(u.shape[:-1] + v.shape[-1:]) for v in cell(flat[0], tuple(flat[1:])))
            for got, want in zip(state, expected):
                assert got.shape == want.shape
                assert torch.allclose(got, want, rtol=0, atol=1e-12)
        if grad:
            got_grads = torch.autograd.grad(state[0].sum() + state[1].sum(), list(cell.parameters()),
                                            retain_graph=True)
            want_grads = torch.autograd.grad(expected[0].sum() + expected[1].sum(), list(cell.parameters()))
            for got, want in zip(got_grads, want_grads):
                assert torch.allclose(got, want, rtol=0, atol=1e-12)
    no_latents = transition.stepper(x_features)  # a model without latents: the input is phi_x(x_t) alone
    rnn = LSTMTransition(5, 4).double()
    assert torch.allclose(rnn.stepper(x_features)(2, None, rnn.initial_state((2,), x_features))[0],
                          rnn.cell(x_features[:, 2])[0], rtol=0, atol=1e-12)
    assert callable(no_latents)


@pytest.mark.parametrize("min_rows", [0, 256])
def test_lstm_forward_without_grad_equals_lstm_cell(min_rows, monkeypatch):
    monkeypatch.setattr("pyro_vrnn.transitions.INFERENCE_MIN_ROWS", min_rows)
    transition = LSTMTransition(6, 5)
    g = torch.Generator().manual_seed(1)
    u = torch.randn(4, 3, 6, generator=g) * 3  # large pre-activations: tanh = 2 sigmoid(2v) - 1 must hold
    state = (torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g))
    with torch.no_grad():
        got = transition(u, state)
        want = transition.cell(u.reshape(12, 6), tuple(v.expand(4, 3, 5).reshape(12, 5) for v in state))
    for a, b in zip(got, want):
        assert torch.allclose(a, b.reshape(4, 3, 5), rtol=0, atol=2e-6)


def test_split_lstm_recurrence_leaves_training_loss_and_gradients_unchanged():
    for guide in ("filtering", "storn"):
        model = VRNN(3, 2, 8, guide=guide, feature_dims=(8,), hidden_dims=(8,)).double()
        x = _data("normal")
        mask = torch.ones(3, 5, dtype=torch.bool)
        mask[1, 2:] = False
        fast = _loss_and_grads(model, x, mask, True, num_particles=2)
        with plain_lstm_cell():
            slow = _loss_and_grads(model, x, mask, True, num_particles=2)
        _assert_same(fast, slow)


def test_fast_lstm_inference_path_leaves_the_importance_estimate_unchanged(monkeypatch):
    monkeypatch.setattr("pyro_vrnn.transitions.INFERENCE_MIN_ROWS", 0)  # the fast route even on 27 rows
    model = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x = _data("normal", batch=3, steps=6)
    pyro.set_rng_seed(5)
    fast = importance_estimate(model.model, model.guide, x, num_particles=9, chunk_size=4)
    with plain_lstm_cell():
        pyro.set_rng_seed(5)
        slow = importance_estimate(model.model, model.guide, x, num_particles=9, chunk_size=9)
    assert torch.allclose(fast.log_likelihood, slow.log_likelihood, rtol=0, atol=1e-10)
    assert torch.allclose(fast.elbo, slow.elbo, rtol=0, atol=1e-10)


def test_per_particle_noise_blocks_do_not_depend_on_the_chunk():
    """A particle's noise comes in blocks drawn from its own generator; small blocks force refills."""
    from pyro_vrnn.importance import _PerParticleNoise, importance_log_weights

    model = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x = _data("normal", batch=2, steps=7)
    old = _PerParticleNoise.BLOCK_NUMEL
    try:
        _PerParticleNoise.BLOCK_NUMEL = 2 * 2 * 3  # 3 rows of (B=2, Z=2) per block: refills mid-sequence
        weights = []
        for chunk in (5, 2, 1):
            pyro.set_rng_seed(3)
            weights.append(importance_log_weights(model.model, model.guide, x, None, 5, chunk)[0])
    finally:
        _PerParticleNoise.BLOCK_NUMEL = old
    for w in weights[1:]:
        assert torch.allclose(w, weights[0], rtol=0, atol=1e-10)
    assert weights[0].std(0).min() > 0  # the particles differ
