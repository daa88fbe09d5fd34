"""``--model dmm`` is Pyro's Deep Markov Model: on fixed noise it equals a hand-written DMM model/guide
of the same networks (loss and gradients), and it trains and evaluates through the CLI's zoo."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_vrnn.components.guides import reverse_padded
from pyro_vrnn.infer import SequenceELBO
from pyro_vrnn.models import DMM
from pyro_vrnn.models.zoo import build_model, model_spec


def hand_written(m):
    """Pyro's dmm.py model/guide written against ``m``'s networks (z_0 = 0, no normalizing flows)."""

    def model(x, mask):
        pyro.module("dmm_by_hand", m)
        z_prev = x.new_zeros(x.shape[0], m.z_dim)
        with pyro.plate("sequences", x.shape[0], dim=-1):
            for t in pyro.markov(range(x.shape[1])):
                z_t = pyro.sample(f"z_{t}", m.prior(z_prev).mask(mask[:, t]))          # p(z_t | z_{t-1})
                pyro.sample(f"x_{t}", m.emission(z_t).mask(mask[:, t]), obs=x[:, t])  # p(x_t | z_t)
                z_prev = z_t

    def guide(x, mask):
        pyro.module("dmm_by_hand", m)
        rnn = m.posterior.rnn
        backward = reverse_padded(rnn(reverse_padded(x, mask))[0], mask)             # x_{t:T}, per sequence
        z_prev = x.new_zeros(x.shape[0], m.z_dim)
        with pyro.plate("sequences", x.shape[0], dim=-1):
            for t in pyro.markov(range(x.shape[1])):
                q = m.posterior.head(torch.cat([backward[:, t], z_prev], -1))      # q(z_t | z_{t-1}, x_{t:T})
                z_prev = pyro.sample(f"z_{t}", q.mask(mask[:, t]))

    return model, guide


def test_dmm_equals_a_hand_written_dmm_on_fixed_noise():
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = DMM(88, 4, transition_dim=8, emission_dims=(8,), rnn_dim=8).double()
    x = (torch.rand(3, 5, 88, generator=torch.Generator().manual_seed(1)) > 0.9).double()
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    params = list(m.parameters())
    results = []
    for elbo, (model, guide) in ((SequenceELBO(max_plate_nesting=1), (m.model, m.guide)),
                                 (Trace_ELBO(max_plate_nesting=1), hand_written(m))):
        pyro.set_rng_seed(4)
        for p in params:
            p.grad = None
        loss = elbo.loss_and_grads(model, guide, x, mask)
        results.append((loss, [p.grad.clone() for p in params]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_dmm_is_a_named_model_with_a_bernoulli_emission_on_music():
    spec = model_spec("dmm", 88, kind="music", z_dim=4, h_dim=8, hidden_dims=(8,))
    m = build_model(spec)
    assert isinstance(m, DMM) and spec["family"] == "dmm"
    assert isinstance(m.emission(torch.zeros(2, 4)).base_dist, dist.Bernoulli)
    with pytest.raises(ValueError, match="fixed"):
        model_spec("dmm", 88, guide="filtering")
