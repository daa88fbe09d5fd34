"""The SRNN (Fraccaro et al. 2016) as a configuration of the components.

- its model and guide give the log-densities of a hand-written SRNN on the guide's draws (fixed noise):
  ``d_t = LSTM(phi_x(x_{t-1}), d_{t-1})``, ``p(z_t | z_{t-1}, d_t)``, ``p(x_t | z_t, d_t)``,
  ``a_t`` a backward LSTM over ``[d_t, x_t]`` within each sequence's length, ``q``'s mean the prior's
  plus a residual;
- the fast ELBO gives Trace_ELBO's loss and gradients for it in float64 (with masks, particles and a
  carried initial state), and SMC runs it;
- ``--model srnn`` builds it from a spec, and its prior and guide cannot be overridden.
"""

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Trace_ELBO
from torch.nn import functional as F

from pyro_vrnn.infer import SequenceELBO, smc_estimate
from pyro_vrnn.models.seeds import SRNN
from pyro_vrnn.models.zoo import build_model, model_spec


def _srnn(**kw):
    pyro.clear_param_store()
    torch.manual_seed(0)
    return SRNN(3, 2, 5, feature_dims=(4,), hidden_dims=(6,), rnn_dim=4, **kw).double()


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 6, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    return x, mask


def _normal(head, v):
    """A GaussianHead by hand: MLP, then loc and softplus(raw) + floor."""
    hidden = head.net(v)
    return torch.distributions.Normal(head.loc(hidden), F.softplus(head.raw_scale(hidden)) + head.scale_floor)


def _by_hand(m, x, mask, zs):
    """``(log p(x, z), log q(z | x))`` per sequence of the SRNN's equations, written out."""
    B, T, _ = x.shape
    cell = m.transition.cell
    H = cell.hidden_size
    # d_t = f(d_{t-1}, phi_x(x_{t-1})), x_0 = 0, d_0 = 0
    h, c = cell(m.phi_x(x.new_zeros(B, 3)), (x.new_zeros(B, H), x.new_zeros(B, H)))
    ds = []
    for t in range(T):
        ds.append(h)
        h, c = cell(m.phi_x(x[:, t]), (h, c))
    d = torch.stack(ds, 1)
    # a_t = g(a_{t+1}, [d_t, x_t]): the guide's LSTM run backwards from each sequence's last real step
    rnn = m.posterior.rnn
    a = x.new_zeros(B, T, rnn.hidden_size)
    for b in range(B):
        n = int(mask[b].sum())
        u = torch.cat([d[b, :n], x[b, :n]], -1).flip(0).unsqueeze(0)
        a[b, :n] = rnn(u)[0][0].flip(0)
    log_p = x.new_zeros(B)
    log_q = x.new_zeros(B)
    z_prev = x.new_zeros(B, 2)
    for t in range(T):
        prior = _normal(m.prior, torch.cat([d[:, t], z_prev], -1))
        residual = _normal(m.posterior.head, torch.cat([a[:, t], z_prev], -1))
        q = torch.distributions.Normal(prior.loc + residual.loc, residual.scale)
        emission = m.emission(torch.cat([zs[t], d[:, t]], -1))
        real = mask[:, t].double()
        log_p = log_p + real * (prior.log_prob(zs[t]).sum(-1) + emission.log_prob(x[:, t]))
        log_q = log_q + real * q.log_prob(zs[t]).sum(-1)
        z_prev = zs[t]
    return log_p, log_q


def test_srnn_model_and_guide_equal_a_hand_written_srnn_on_the_guides_draws():
    m = _srnn()
    x, mask = _data()
    pyro.set_rng_seed(4)
    guide = poutine.trace(m.guide).get_trace(x, mask)
    model = poutine.trace(poutine.replay(m.model, trace=guide)).get_trace(x, mask)
    zs = [guide.nodes[f"z_{t}"]["value"] for t in range(6)]
    log_p, log_q = _by_hand(m, x, mask, zs)
    assert model.log_prob_sum().item() == pytest.approx(log_p.sum().item(), rel=1e-12)
    assert guide.log_prob_sum().item() == pytest.approx(log_q.sum().item(), rel=1e-12)
    # and the Resq guide's mean really is the prior's plus a residual: zero the residual head, q's mean is p's
    with torch.no_grad():
        m.posterior.head.loc.weight.zero_()
        m.posterior.head.loc.bias.zero_()
    state = m.initial_state((3,), x)
    context = m.encode(x, mask)[1][:, 0]
    assert torch.allclose(m.posterior_dist(state, context).mean, m.prior_dist(state).mean, rtol=0, atol=0)


def test_the_fast_elbo_equals_trace_elbo_for_the_srnn_in_float64():
    m = _srnn()
    x, mask = _data()
    (h, c), z_0 = m.initial_state((3,), x)
    initial = ((h.detach() + 0.3, c.detach() - 0.1), z_0 + 0.2)  # a carried state (a window's start)
    params = list(m.parameters())
    for kwargs, particles in (({}, 1), ({"initial_state": initial}, 3)):
        results = []
        for elbo in (SequenceELBO, Trace_ELBO):
            pyro.set_rng_seed(9)
            for p in params:
                p.grad = None
            loss = elbo(num_particles=particles, vectorize_particles=True, max_plate_nesting=1).loss_and_grads(
                m.model, m.guide, x, mask, 0.7, **kwargs)
            results.append((loss, [None if p.grad is None else p.grad.clone() for p in params]))
        (fast, fast_grads), (plain, plain_grads) = results
        assert fast == pytest.approx(plain, rel=1e-12)
        assert sum(g is not None for g in plain_grads) == len(params)
        for a, b in zip(fast_grads, plain_grads):
            assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_smc_runs_the_srnns_deterministic_recurrence_once_per_sequence_not_per_particle():
    """``d_t`` reads ``x_{<t}`` alone: the filter keeps it ``(B, H)`` (no particle dims) through every
    step and resampling, and gives on fixed noise, in float64, the figures of particles whose states
    all start expanded to ``(K, B, H)`` (where ``d`` is run per particle); FIVO carries it as it is."""
    from pyro_vrnn.infer import FIVO
    from pyro_vrnn.infer.smc import SequenceNoise, particle_filter
    m = _srnn()
    x, mask = _data()
    K = 6
    shared = particle_filter(m, x, mask, num_particles=K, num_replicates=2, noise=SequenceNoise([1, 2, 3], x.device))
    ((h, c), z) = shared.state
    assert h.shape == c.shape == (3, 5) and z.shape == (2, K, 3, 2)
    assert bool(shared.resampled.any())  # resampling happened, and left d alone
    expanded = m.initial_state((K, 3), x)
    per_particle = particle_filter(m, x, mask, num_particles=K, num_replicates=2, initial_state=expanded,
                                   noise=SequenceNoise([1, 2, 3], x.device))
    assert per_particle.state[0][0].shape == (2, K, 3, 5)
    assert torch.allclose(shared.log_z, per_particle.log_z, rtol=0, atol=1e-10)
    assert torch.allclose(shared.ess, per_particle.ess, rtol=0, atol=1e-10)
    assert torch.equal(shared.resampled, per_particle.resampled)
    assert torch.allclose(per_particle.state[0][0], h.expand(2, K, 3, 5), rtol=0, atol=1e-12)
    pyro.set_rng_seed(0)
    carried = FIVO(num_particles=K).window_end_state(m.model, m.guide, x, mask)
    assert carried[0][0].shape == (3, 5) and carried[1].shape == (K, 3, 2)


def test_srnn_is_a_named_model_with_its_prior_and_guide_fixed_and_smc_runs_it():
    spec = model_spec("srnn", 3, z_dim=2, h_dim=5, feature_dims=(4,), hidden_dims=(6,))
    assert (spec["family"], spec["prior"], spec["guide"]) == ("srnn", "srnn", "resq")
    model = build_model(spec)
    assert isinstance(model, SRNN) and model.z_dim == 2 and model.transition.hidden_dim == 5
    assert model_spec("srnn", 88, kind="music")["emission"] == "bernoulli"
    with pytest.raises(ValueError, match="SRNN's prior"):
        model_spec("srnn", 3, guide="filtering")
    # a saved spec names the fixed prior and guide (a resumed run passes them back): accepted as the model's own
    for name in ("srnn", "dmm"):
        saved = model_spec(name, 3)
        assert model_spec(name, 3, prior=saved["prior"], guide=saved["guide"]) == saved
    m = _srnn()
    x, mask = _data()
    estimate = smc_estimate(m, x, mask, num_particles=8, seed=0)
    assert estimate.log_likelihood.shape == (3,) and torch.isfinite(estimate.log_likelihood).all()
    assert (estimate.ess[mask] <= 8 + 1e-9).all() and estimate.ess.nan_to_num(1.0).min() >= 1 - 1e-9
