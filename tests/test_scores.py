"""Per-step scores (pyro_vrnn.score): the SMC filter's own log p_hat(x_t | x_{<t}), summing to its
log p_hat(x), exact for the RNN, and equal to the Kalman filter's one-step predictive densities on a
linear-Gaussian state-space model within their Monte-Carlo standard errors."""

import math

import pyro.poutine as poutine
import pytest
import torch
from test_linear_gaussian_exactness import exact_log_likelihood
from test_smc import _models, lgssm

from pyro_vrnn import score, smc_estimate
from pyro_vrnn.data import pad_batch


def _padded_batch(x_dim=3, lengths=(7, 3, 5)):
    torch.manual_seed(1)
    x, mask = pad_batch([torch.randn(n, x_dim, dtype=torch.float64) for n in lengths])
    return x.double(), mask


def test_scores_sum_over_steps_to_the_smc_log_likelihood_with_the_same_particles_and_seed():
    model = _models()["vrnn"].double()
    x, mask = _padded_batch()
    scores = score(model, x, mask, num_particles=16, seed=5, ess_threshold=0.9)
    est = smc_estimate(model, x, mask, num_particles=16, seed=5, ess_threshold=0.9)
    assert scores.log_prob.shape == (3, 7) and scores.ess.shape == (3, 7)
    assert torch.equal(scores.log_prob.isnan(), ~mask) and torch.equal(scores.ess.isnan(), ~mask)
    torch.testing.assert_close(scores.log_prob.nansum(1), est.log_likelihood, rtol=0, atol=1e-9)
    torch.testing.assert_close(scores.ess, est.ess, equal_nan=True)
    assert est.num_resampling_events.sum() > 0  # the filter resampled along the way
    assert torch.all(scores.ess[mask] <= 16 + 1e-9) and torch.all(scores.ess[mask] >= 1 - 1e-9)
    assert scores.label.startswith("estimate of log p(x_t | x_{<t})") and "K=16" in scores.label
    assert not scores.exact and scores.log_prob_se[mask].isnan().all()  # one filter: no spread claimed
    other = score(model, x, mask, num_particles=16, seed=6, ess_threshold=0.9)
    assert not torch.allclose(other.log_prob[mask], scores.log_prob[mask])  # the seed matters


def test_rnn_scores_are_its_exact_one_step_log_likelihoods():
    model = _models()["rnn"].double()
    x, mask = _padded_batch()
    scores = score(model, x, mask, num_particles=50, seed=0)
    trace = poutine.trace(model.model).get_trace(x, mask)
    trace.compute_log_prob()
    exact = torch.stack([trace.nodes[f"x_{t}"]["log_prob"] for t in range(x.shape[1])], 1).double()
    torch.testing.assert_close(scores.log_prob[mask], exact[mask])
    assert scores.exact and scores.num_particles == 1 and scores.label.startswith("exact")
    assert torch.all(scores.log_prob_se[mask] == 0) and torch.all(scores.ess[mask] == 1)


def _kalman_step_log_likelihoods(model, x):
    """``log p(x_t | x_{<t})`` of the LGSSM, ``(B, T)``: differences of the exact ``log p(x_{1:t})``
    (pyro's GaussianHMM, a Kalman filter) over growing prefixes."""
    prefix = torch.stack([exact_log_likelihood(model, x[:, :t]) for t in range(1, x.shape[1] + 1)], -1)
    return torch.cat([prefix[:, :1], prefix.diff(dim=-1)], -1)


def test_scores_of_a_linear_gaussian_model_agree_with_the_kalman_filter_within_their_standard_errors():
    model = lgssm(widen=1.0)
    torch.manual_seed(0)
    with torch.no_grad():
        x = model.generate(2, 20)
    exact = _kalman_step_log_likelihoods(model, x)
    scores = score(model, x, num_particles=500, num_replicates=20, proposal="prior", seed=0)
    z = (scores.log_prob - exact) / scores.log_prob_se
    assert torch.all(z.abs() <= 4), z  # 40 steps: each within 4 standard errors
    assert 0.2 < float(z.square().mean()) < 3  # and the standard errors are of the right size
    assert float(scores.log_prob_se.max()) < 0.05  # precise enough for the check to mean something

    with torch.no_grad():  # the check has teeth: a shifted emission mean is far outside them
        model.emission.linear.bias.add_(0.3)
    wrong = score(model, x, num_particles=500, num_replicates=20, proposal="prior", seed=0)
    assert float(((wrong.log_prob - exact) / wrong.log_prob_se).abs().gt(4).float().mean()) > 0.5


def test_bad_particles_name_the_argument():
    model = _models()["vrnn"]
    with pytest.raises(ValueError, match="num_particles"):
        score(model, torch.randn(1, 2, 3), num_particles=0)
    assert math.isnan(float(score(model, torch.randn(1, 2, 3), num_particles=3, seed=0).log_prob_se[0, 0]))
