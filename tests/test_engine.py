"""The fast ELBO engine (``pyro_vrnn.infer``) equals the plain Pyro programs, and nothing depends on
what was called before.

- ``SequenceELBO`` gives ``Trace_ELBO``'s loss and gradients on fixed noise, in float64, for every guide
  and emission, masks, annealing and particles (vectorized or not);
- it runs ``Trace_ELBO`` itself (and so equals it) for what it does not know: an overridden step
  (STORN), a foreign guide, a non-reparameterized ``q``, a handler around the call;
- the three call patterns that once gave silently wrong gradients (a guide traced without grad and
  the model replayed with grad; a diagnostic guide call before training with a user's guide;
  parameters changed between the guide and the replayed model) give what recomputation gives;
- every stock Pyro ELBO gives the same loss and gradients after any of those calls as on a fresh copy;
- importance sampling through the engine equals the traced programs for the same seed.
"""

import contextlib
import copy

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import (JitTrace_ELBO, ReweightedWakeSleep, RenyiELBO, Trace_ELBO, TraceEnum_ELBO, TraceGraph_ELBO,
                        TraceMeanField_ELBO)
from torch import nn

from pyro_vrnn import RNN, STORN, VRNN, importance_estimate
from pyro_vrnn.infer import SequenceELBO, sequence_log_weights, supported_model
from pyro_vrnn.infer.engine import OutOfScope
from pyro_vrnn.train.trainer import Trainer


def _data(emission="normal", batch=4, steps=6, x_dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, x_dim, generator=g, dtype=torch.float64)
    if emission in ("bernoulli", "autoregressive"):
        x = (x > 0).double()
    if emission == "handwriting":
        x[..., 2] = (x[..., 2] > 0).double()
    mask = torch.ones(batch, steps, dtype=torch.bool)
    mask[1, 3:] = False
    mask[2, 1:] = False
    return x, mask


def _model(**kw):
    pyro.clear_param_store()
    torch.manual_seed(0)
    return VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,), num_components=3, **kw).double()


def _loss_and_grads(elbo, model, guide, params, *args, seed=7, **kwargs):
    pyro.set_rng_seed(seed)
    for p in params:
        p.grad = None
    loss = elbo.loss_and_grads(model, guide, *args, **kwargs)
    return loss, [p.grad.clone() if p.grad is not None else None for p in params]


def _assert_same(a, b, atol=1e-10):
    assert a[0] == pytest.approx(b[0], rel=1e-12, abs=atol)
    assert len(a[1]) == len(b[1]) and sum(g is not None for g in a[1]) > 5
    for ga, gb in zip(a[1], b[1]):
        assert (ga is None) == (gb is None)
        if ga is not None:
            assert torch.allclose(ga, gb, rtol=0, atol=atol)


@pytest.mark.parametrize("guide,emission,num_particles,vectorize", [
    ("filtering", "normal", 1, False), ("filtering", "gmm", 3, True), ("filtering", "bernoulli", 2, False),
    ("filtering", "handwriting", 1, False), ("smoothing", "normal", 3, True), ("storn", "gmm", 2, True),
    ("filtering", "autoregressive", 2, True),
])
def test_engine_equals_trace_elbo_in_float64(guide, emission, num_particles, vectorize):
    prior = "standard" if guide == "storn" else "conditional"
    m = _model(guide=guide, emission=emission, prior=prior)
    x, mask = _data(emission)
    params = list(m.parameters())
    kw = dict(num_particles=num_particles, vectorize_particles=vectorize, max_plate_nesting=1)
    for annealing in (1.0, 0.3):
        fast = _loss_and_grads(SequenceELBO(**kw), m.model, m.guide, params, x, mask, annealing_factor=annealing)
        plain = _loss_and_grads(Trace_ELBO(**kw), m.model, m.guide, params, x, mask, annealing_factor=annealing)
        _assert_same(fast, plain)
    assert supported_model(m.model, m.guide, (x, mask), {}) is m


def test_engine_equals_trace_elbo_for_the_rnn_and_without_a_mask():
    pyro.clear_param_store()
    m = RNN(3, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x, mask = _data()
    params = list(m.parameters())
    for args in ((x, mask), (x,)):
        _assert_same(_loss_and_grads(SequenceELBO(max_plate_nesting=1), m.model, m.guide, params, *args),
                     _loss_and_grads(Trace_ELBO(max_plate_nesting=1), m.model, m.guide, params, *args))


def test_engine_loss_and_differentiable_loss_equal_trace_elbo():
    m = _model()
    x, mask = _data()
    for name in ("loss", "differentiable_loss"):
        values = []
        for elbo in (SequenceELBO(max_plate_nesting=1), Trace_ELBO(max_plate_nesting=1)):
            pyro.set_rng_seed(3)
            values.append(float(torch.as_tensor(getattr(elbo, name)(m.model, m.guide, x, mask)).detach()))
        assert values[0] == pytest.approx(values[1], rel=1e-12)


class _NonReparameterizedGuide(nn.Module):
    """A guide component whose q has no rsample (so Trace_ELBO adds score-function terms)."""

    uses_model_state = False

    def __init__(self, z_dim):
        super().__init__()
        self.z_dim = z_dim
        self.logit = nn.Parameter(torch.zeros(()))

    def encode(self, x, x_features, mask):
        return x

    def forward(self, context_t, h):
        probs = torch.sigmoid(self.logit).expand(context_t.shape[:-1] + (self.z_dim,))
        return dist.Bernoulli(probs).to_event(1)


class _AnyRealPrior(nn.Module):
    z_dim = 2

    def forward(self, h):
        return dist.Normal(h.new_zeros(h.shape[:-1] + (2,)), 1.0).to_event(1)


def _foreign_guide(model):
    """A user's own guide sampling the same sites (a mean-field Normal per step)."""
    loc = pyro.param("foreign_loc", torch.zeros(2, dtype=torch.float64))

    def guide(x, mask=None, annealing_factor=1.0):
        with pyro.plate("sequences", x.shape[0], dim=-1):
            for t in pyro.markov(range(x.shape[1])):
                pyro.sample(f"z_{t}", dist.Normal(loc, 1.0).to_event(1).mask(mask[:, t]))
    return guide


@pytest.mark.parametrize("case", ["overridden_step", "foreign_guide", "not_reparameterized", "handler"])
def test_engine_falls_back_to_trace_elbo_and_equals_it(case):
    x, mask = _data()
    pyro.clear_param_store()
    torch.manual_seed(0)
    if case == "overridden_step":
        m = STORN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
        model, guide = m.model, m.guide
    elif case == "not_reparameterized":
        m = VRNN(3, 2, 8, prior=_AnyRealPrior(), guide=_NonReparameterizedGuide(2), feature_dims=(8,),
                 hidden_dims=(8,)).double()
        model, guide = m.model, m.guide
    else:
        m = _model()
        model, guide = m.model, (_foreign_guide(m) if case == "foreign_guide" else m.guide)
    assert (supported_model(model, guide, (x, mask), {}) is None) == (case in ("overridden_step", "foreign_guide"))
    params = list(m.parameters())
    context = (lambda: poutine.scale(scale=0.5)) if case == "handler" else contextlib.nullcontext
    with context():
        fast = _loss_and_grads(SequenceELBO(max_plate_nesting=1), model, guide, params, x, mask)
    with context():
        plain = _loss_and_grads(Trace_ELBO(max_plate_nesting=1), model, guide, params, x, mask)
    _assert_same(fast, plain)


def _fresh_gradients(m, fn):
    clone = copy.deepcopy(m)
    for p in clone.parameters():
        p.grad = None
    fn(clone)
    return {n: p.grad for n, p in clone.named_parameters()}


def _replayed_log_prob_backward(m, guide_trace, x):
    model_trace = poutine.trace(poutine.replay(m.model, trace=guide_trace)).get_trace(x)
    model_trace.log_prob_sum().backward()
    return model_trace


def test_model_replayed_on_a_no_grad_guide_trace_gets_every_gradient():
    """Fitting the model to fixed posterior samples (as reweighted wake-sleep does)."""
    m = _model()
    x, _ = _data()
    with torch.no_grad():
        guide_trace = poutine.trace(m.guide).get_trace(x)
    _replayed_log_prob_backward(m, guide_trace, x)
    fresh = _fresh_gradients(m, lambda c: _replayed_log_prob_backward(c, guide_trace, x))
    for name, p in m.named_parameters():
        if name.startswith("posterior"):
            continue  # the model does not use the guide's own networks
        assert p.grad is not None and fresh[name] is not None, name
        assert torch.allclose(p.grad, fresh[name], rtol=0, atol=1e-12), name
    assert m.phi_x[0].weight.grad.abs().sum() > 0


def test_a_diagnostic_guide_call_does_not_change_the_next_training_step():
    m = _model()
    x, mask = _data()
    guide = _foreign_guide(m)
    params = list(m.parameters())
    reference = _loss_and_grads(Trace_ELBO(max_plate_nesting=1), m.model, guide, params, x, mask)
    with torch.no_grad():
        m.guide(x, mask)  # a diagnostic call on the very same x
    after = _loss_and_grads(Trace_ELBO(max_plate_nesting=1), m.model, guide, params, x, mask)
    _assert_same(after, reference, atol=0)
    assert m.phi_x[0].weight.grad is not None and m.phi_x[0].weight.grad.abs().sum() > 0


def test_model_replayed_after_a_parameter_change_scores_with_the_new_parameters():
    m = _model()
    x, _ = _data()
    guide_trace = poutine.trace(m.guide).get_trace(x)
    with torch.no_grad():
        for p in m.emission.parameters():
            p.add_(0.5)
    replayed = poutine.trace(poutine.replay(m.model, trace=guide_trace)).get_trace(x)
    clone = copy.deepcopy(m)
    recomputed = poutine.trace(poutine.replay(clone.model, trace=guide_trace)).get_trace(x)
    assert replayed.log_prob_sum().item() == pytest.approx(recomputed.log_prob_sum().item(), rel=1e-12)


STOCK_ELBOS = {
    "Trace_ELBO": lambda: Trace_ELBO(max_plate_nesting=1),
    "TraceMeanField_ELBO": lambda: TraceMeanField_ELBO(max_plate_nesting=1),
    "RenyiELBO": lambda: RenyiELBO(alpha=0.5, num_particles=2, max_plate_nesting=1),
    "TraceGraph_ELBO": lambda: TraceGraph_ELBO(max_plate_nesting=1),
    "TraceEnum_ELBO": lambda: TraceEnum_ELBO(max_plate_nesting=1),
    "JitTrace_ELBO": lambda: JitTrace_ELBO(max_plate_nesting=1, ignore_jit_warnings=True),
}


def _before(pattern, m, x, mask):
    """Calls a user may make before an inference (each once broke the next result)."""
    if pattern == "no_grad_guide_then_replay":
        with torch.no_grad():
            trace = poutine.trace(m.guide).get_trace(x, mask)
        poutine.replay(m.model, trace=trace)(x, mask)
    elif pattern == "lone_guide_call":
        m.guide(x, mask)
    elif pattern == "engine_step":
        SequenceELBO(max_plate_nesting=1).loss_and_grads(m.model, m.guide, x, mask)
        m.zero_grad()


@pytest.mark.parametrize("pattern", ["no_grad_guide_then_replay", "lone_guide_call", "engine_step"])
@pytest.mark.parametrize("name", sorted(STOCK_ELBOS))
def test_stock_elbos_give_the_same_result_whatever_was_called_before(name, pattern):
    m = _model()
    x, mask = _data(steps=3)
    fresh = copy.deepcopy(m)
    _before(pattern, m, x, mask)
    results = []
    for model in (m, fresh):
        results.append(_loss_and_grads(STOCK_ELBOS[name](), model.model, model.guide, list(model.parameters()),
                                       x, mask))
    _assert_same(results[0], results[1], atol=1e-12)


def test_reweighted_wake_sleep_gives_the_same_result_whatever_was_called_before():
    m = _model()
    x, mask = _data(steps=3)
    fresh = copy.deepcopy(m)
    _before("no_grad_guide_then_replay", m, x, mask)
    losses = []
    for model in (m, fresh):
        pyro.set_rng_seed(5)
        rws = ReweightedWakeSleep(num_particles=3, max_plate_nesting=1, vectorize_particles=False)
        losses.append(torch.stack(rws.loss(model.model, model.guide, x, mask)))  # (wake-theta, wake-phi)
    assert torch.allclose(losses[0], losses[1], rtol=1e-12, atol=0)


def test_importance_sampling_through_the_engine_equals_the_traced_programs():
    m = _model(guide="smoothing")
    x, mask = _data()
    estimates = []
    for guide in (m.guide, lambda *args, **kwargs: m.guide(*args, **kwargs)):  # the lambda forces the traced path
        pyro.set_rng_seed(11)
        estimates.append(importance_estimate(m.model, guide, x, mask, num_particles=7, chunk_size=3))
    assert supported_model(m.model, m.guide, (x, mask), {}) is m
    assert torch.allclose(estimates[0].log_likelihood, estimates[1].log_likelihood, rtol=0, atol=1e-10)
    assert torch.allclose(estimates[0].elbo, estimates[1].elbo, rtol=0, atol=1e-10)


def test_trainer_uses_the_engine_by_default_and_steps_like_trace_elbo():
    x, mask = _data()
    results = []
    for elbo in (None, Trace_ELBO(max_plate_nesting=1)):
        m = _model()
        kwargs = {} if elbo is None else {"elbo": elbo}
        trainer = Trainer(m, lr=1e-2, **kwargs)
        pyro.set_rng_seed(1)
        losses = [trainer.step(x, mask) for _ in range(3)]
        results.append((losses, [p.detach().clone() for p in m.parameters()]))
    assert isinstance(Trainer(_model()).elbo, SequenceELBO)
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-10)
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


class _ScaledContextVRNN(VRNN):
    """A user's model whose guide reads a changed context (the documented ``encode`` hook)."""

    def encode(self, x, mask=None):
        x_features, context = super().encode(x, mask)
        return x_features, 2.0 * context + 0.5


class _ShiftedFeaturesVRNN(_ScaledContextVRNN):
    """... and whose guide's recurrence also reads other x-features than the model's ``phi_x(x)``."""

    def encode(self, x, mask=None):
        x_features, context = super().encode(x, mask)
        return x_features + 0.25, context


@pytest.mark.parametrize("cls", [_ScaledContextVRNN, _ShiftedFeaturesVRNN])
@pytest.mark.parametrize("guide", ["filtering", "storn"])
def test_an_overridden_encode_gives_trace_elbo_loss_and_gradients(guide, cls):
    """Issue 23: the fast ELBO ignored an overridden ``encode`` (132.43 against Trace_ELBO's 134.04).
    The one pass now reads ``m.encode`` as the guide does; where a guide that runs the model's
    recurrence would read other x-features than the model's, it falls back to the programs."""
    x, mask = _data()
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = cls(3, 2, 8, guide=guide, feature_dims=(8,), hidden_dims=(8,), rnn_dim=8).double()
    assert supported_model(m.model, m.guide, (x, mask), {}) is m  # decided by what the pass computes, below
    if cls is _ShiftedFeaturesVRNN and guide == "filtering":
        with pytest.raises(OutOfScope):
            sequence_log_weights(m, x, mask, (1,))
    params = list(m.parameters())
    fast = _loss_and_grads(SequenceELBO(max_plate_nesting=1), m.model, m.guide, params, x, mask)
    plain = _loss_and_grads(Trace_ELBO(max_plate_nesting=1), m.model, m.guide, params, x, mask)
    _assert_same(fast, plain)
    base = VRNN(3, 2, 8, guide=guide, feature_dims=(8,), hidden_dims=(8,), rnn_dim=8).double()
    base.load_state_dict(m.state_dict())
    unchanged = _loss_and_grads(Trace_ELBO(max_plate_nesting=1), base.model, base.guide, list(base.parameters()),
                                x, mask)
    assert abs(unchanged[0] - plain[0]) > 1e-3  # the override changes the ELBO: the test can tell them apart


@pytest.mark.parametrize("cls", [_ScaledContextVRNN, _ShiftedFeaturesVRNN])
@pytest.mark.parametrize("guide", ["filtering", "storn"])
def test_importance_sampling_with_an_overridden_encode_equals_the_traced_programs(guide, cls):
    x, mask = _data()
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = cls(3, 2, 8, guide=guide, feature_dims=(8,), hidden_dims=(8,), rnn_dim=8).double()
    estimates = []
    for g in (m.guide, lambda *args, **kwargs: m.guide(*args, **kwargs)):  # the lambda forces the traced path
        pyro.set_rng_seed(11)
        estimates.append(importance_estimate(m.model, g, x, mask, num_particles=7, chunk_size=3))
    assert torch.allclose(estimates[0].log_likelihood, estimates[1].log_likelihood, rtol=0, atol=1e-10)
    assert torch.allclose(estimates[0].elbo, estimates[1].elbo, rtol=0, atol=1e-10)


def test_importance_sampling_with_a_non_reparameterized_guide_gives_the_traced_result():
    """Issue 23: ``NotReparameterized`` escaped from ``importance_log_likelihood``; it falls back as SequenceELBO."""
    x, mask = _data()
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = VRNN(3, 2, 8, prior=_AnyRealPrior(), guide=_NonReparameterizedGuide(2), feature_dims=(8,),
             hidden_dims=(8,)).double()
    estimates = []
    for g in (m.guide, lambda *args, **kwargs: m.guide(*args, **kwargs)):
        pyro.set_rng_seed(5)
        estimates.append(importance_estimate(m.model, g, x, mask, num_particles=6, chunk_size=4))
    assert supported_model(m.model, m.guide, (x, mask), {}) is m
    assert torch.isfinite(estimates[0].log_likelihood).all()
    assert torch.equal(estimates[0].log_likelihood, estimates[1].log_likelihood)
    assert torch.equal(estimates[0].elbo, estimates[1].elbo)
