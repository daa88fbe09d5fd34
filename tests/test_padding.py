"""Padded values never reach a density or a gradient, whatever they hold (issue 23: select, then score).

With NaN in the padding, plain SVI gave the right loss and NaN gradients for every parameter (the mask
zeroed the value, not its gradient), and ``importance_estimate`` raised a support error under Pyro's
validation. Each path must give exactly what it gives with zeros in the padding.
"""

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_vrnn import VRNN, importance_estimate, smc_estimate
from pyro_vrnn.infer import SequenceELBO


def _batches(emission, fill):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, 3, generator=g, dtype=torch.float64)
    if emission == "bernoulli":
        x = (x > 0).double()
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    clean = x.masked_fill(~mask.unsqueeze(-1), 0.0)
    dirty = x.masked_fill(~mask.unsqueeze(-1), fill)
    dirty[2, 3, 1] = -fill if fill == fill else fill  # NaN and -inf too
    return clean, dirty, mask


def _model(emission, guide="filtering"):
    pyro.clear_param_store()
    torch.manual_seed(0)
    return VRNN(3, 2, 8, emission, guide=guide, feature_dims=(8,), hidden_dims=(8,), rnn_dim=8).double()


def _loss_and_grads(elbo, m, x, mask):
    params = list(m.parameters())
    for p in params:
        p.grad = None
    pyro.set_rng_seed(7)
    loss = elbo.loss_and_grads(m.model, m.guide, x, mask)
    return loss, [p.grad.clone() for p in params]


@pytest.mark.parametrize("fill", [float("nan"), float("inf")])
@pytest.mark.parametrize("emission,guide", [("normal", "filtering"), ("bernoulli", "smoothing")])
@pytest.mark.parametrize("elbo", ["Trace_ELBO", "SequenceELBO"])
def test_gradients_with_non_finite_padding_equal_those_with_zero_padding(elbo, emission, guide, fill):
    clean, dirty, mask = _batches(emission, fill)
    m = _model(emission, guide)
    make = {"Trace_ELBO": Trace_ELBO, "SequenceELBO": SequenceELBO}[elbo]
    with pyro.validation_enabled(True):
        loss_clean, grads_clean = _loss_and_grads(make(max_plate_nesting=1), m, clean, mask)
        loss_dirty, grads_dirty = _loss_and_grads(make(max_plate_nesting=1), m, dirty, mask)
    assert len(grads_dirty) >= 26 and all(torch.isfinite(g).all() for g in grads_dirty)
    assert loss_dirty == loss_clean
    for a, b in zip(grads_clean, grads_dirty):
        assert torch.equal(a, b)


@pytest.mark.parametrize("emission,guide", [("normal", "filtering"), ("bernoulli", "smoothing")])
def test_importance_sampling_and_smc_with_nan_padding_equal_zero_padding(emission, guide):
    clean, dirty, mask = _batches(emission, float("nan"))
    m = _model(emission, guide)
    results = []
    for x in (clean, dirty):
        for model, g in ((m.model, m.guide), (m.model, lambda *a, **k: m.guide(*a, **k))):  # engine and traced
            with pyro.validation_enabled(True):
                pyro.set_rng_seed(3)
                results.append(importance_estimate(model, g, x, mask, num_particles=5).log_likelihood)
    assert all(torch.isfinite(r).all() for r in results)
    assert torch.equal(results[0], results[2]) and torch.equal(results[1], results[3])
    smc = [smc_estimate(m, x, mask, num_particles=5, seed=2).log_likelihood for x in (clean, dirty)]
    assert torch.isfinite(smc[0]).all() and torch.equal(smc[0], smc[1])


def test_a_users_own_guide_never_sees_the_padding_in_importance_sampling():
    clean, dirty, mask = _batches("normal", float("nan"))
    m = _model("normal")
    seen = []

    def guide(x, mask=None):
        seen.append(x)
        return m.guide(x, mask)

    results = []
    for x in (clean, dirty):
        pyro.set_rng_seed(3)
        results.append(importance_estimate(m.model, guide, x, mask, num_particles=4).log_likelihood)
    assert all(torch.isfinite(x).all() for x in seen)
    assert torch.equal(results[0], results[1])
