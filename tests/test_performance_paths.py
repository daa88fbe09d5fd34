"""The fast paths equal the plain ones: loss and gradients on fixed noise.

(The engine, ``SequenceELBO``, against ``Trace_ELBO`` on the plain programs: ``tests/test_engine.py``.)

- the benchmark's plain-PyTorch reference VRNNs equal our Pyro step (``Trace_ELBO`` and the engine);
- the LSTM recurrence with its input projection split (``x`` share for all steps at once) and,
  without autograd, its faster pointwise part equals ``nn.LSTMCell`` on the concatenated input;
- chunked importance sampling gives the same estimate as unchunked for the same seed.
"""

import copy
import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from torch import nn

from pyro_vrnn import VRNN, importance_estimate
from pyro_vrnn.infer import SequenceELBO
from pyro_vrnn.components.nn import broadcast_cat, broadcast_leading
from pyro_vrnn.components.transitions import LSTMTransition

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


def _loss_and_grads(model, x, mask, num_particles=2, elbo=Trace_ELBO):
    pyro.set_rng_seed(7)
    model.zero_grad()
    elbo = elbo(num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=1)
    loss = elbo.differentiable_loss(model.model, model.guide, x, mask)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(fast, slow, atol=1e-10):
    (fast_loss, fast_grads), (slow_loss, slow_grads) = fast, slow
    assert torch.allclose(fast_loss, slow_loss, rtol=0, atol=atol)
    assert fast_grads.keys() == slow_grads.keys() and len(fast_grads) > 5
    for name in fast_grads:
        assert torch.allclose(fast_grads[name], slow_grads[name], rtol=0, atol=atol), name


@pytest.mark.parametrize("loop", ["per_step", "hoisted"])
@pytest.mark.parametrize("elbo", [Trace_ELBO, SequenceELBO])
def test_benchmark_reference_equals_pyro_step(loop, elbo):
    pyro.clear_param_store()
    model = VRNN(3, 4, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x = _data("normal", batch=4, steps=6)
    params = list(model.parameters())
    torch.manual_seed(3)
    pyro_loss = elbo(max_plate_nesting=1).loss_and_grads(model.model, model.guide, x)
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



def test_guide_head_with_projected_context_equals_head_on_concatenated_input():
    from pyro_vrnn.components.guides import GaussianHead
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


def plain_lstm_cell(model):
    """A copy of ``model`` whose LSTM runs ``nn.LSTMCell`` on the concatenated input at every step."""
    plain = copy.deepcopy(model)
    plain.transition.decomposed = False
    return plain


@pytest.mark.parametrize("grad,min_rows", [(True, 256), (False, 0), (False, 256)])
def test_lstm_stepper_equals_lstm_cell_on_the_concatenated_input(grad, min_rows):
    """``min_rows=0`` forces the no-grad pointwise route onto these few rows."""
    transition = LSTMTransition(5 + 3, 4, inference_min_rows=min_rows).double()
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
def test_lstm_forward_without_grad_equals_lstm_cell(min_rows):
    transition = LSTMTransition(6, 5, inference_min_rows=min_rows)
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
        for elbo in (Trace_ELBO, SequenceELBO):
            fast = _loss_and_grads(model, x, mask, num_particles=2, elbo=elbo)
            slow = _loss_and_grads(plain_lstm_cell(model), x, mask, num_particles=2, elbo=elbo)
            _assert_same(fast, slow)


def test_fast_lstm_inference_path_leaves_the_importance_estimate_unchanged():
    model = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    model.transition.inference_min_rows = 0  # the fast route even on 27 rows
    x = _data("normal", batch=3, steps=6)
    pyro.set_rng_seed(5)
    fast = importance_estimate(model.model, model.guide, x, num_particles=9, chunk_size=4)
    plain = plain_lstm_cell(model)
    pyro.set_rng_seed(5)
    slow = importance_estimate(plain.model, plain.guide, x, num_particles=9, chunk_size=9)
    assert torch.allclose(fast.log_likelihood, slow.log_likelihood, rtol=0, atol=1e-10)
    assert torch.allclose(fast.elbo, slow.elbo, rtol=0, atol=1e-10)


def test_per_particle_noise_blocks_do_not_depend_on_the_chunk():
    """A particle's noise comes in blocks drawn from its own generator; small blocks force refills."""
    from pyro_vrnn.infer.importance import PerParticleNoise

    def noise_of_particles(seeds, steps=7):
        noise = PerParticleNoise([torch.Generator().manual_seed(s) for s in seeds], block_numel=2 * 2 * 3)
        fn = dist.Normal(torch.zeros(2, 2, dtype=torch.float64), 1.0).to_event(1)  # (B=2, Z=2); 3 rows a block
        return torch.stack([noise.draw(fn, (len(seeds), 2)) for _ in range(steps)], 1)  # (k, steps, B, Z)

    whole = noise_of_particles(range(5))
    chunks = torch.cat([noise_of_particles(range(0, 2)), noise_of_particles(range(2, 4)), noise_of_particles([4])])
    assert torch.equal(whole, chunks)
    assert whole[:, 3:].std() > 0 and not torch.equal(whole[:, :3], whole[:, 3:6])  # refills draw fresh noise
