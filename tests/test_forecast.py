"""Forecasts (pyro_vrnn.forecast): posterior-predictive continuations of each sequence. With the exact
model and the exact posterior of a linear-Gaussian state-space model, the 5-95% interval covers held-out
continuations at its nominal 90% rate; continuations start at each sequence's own last real step."""

import math

import pytest
import torch
from test_linear_gaussian_exactness import Z_DIM, exact_log_likelihood, linear_gaussian_model
from test_smc import PriorAsGuide
from torch import nn

import pyro.distributions as dist
from pyro_vrnn import Forecast, RNN, forecast, importance_estimate
from pyro_vrnn.data import pad_batch


class ExactPosteriorGuide(nn.Module):
    """The exact posterior of the LGSSM ``z_t = A z_{t-1} + b + w_t``, ``x_t = C z_t + d + v_t``
    (``w ~ N(0, Q)``, ``v ~ N(0, R)``, ``z_0 = 0``), factorized forward in time:
    ``q(z_t | z_{t-1}, x_{t:T}) ∝ N(z_t; A z_{t-1} + b, Q) p(x_{t:T} | z_t)``.

    ``encode`` runs the backward information filter: ``p(x_{t:T} | z_t) ∝ exp(-z'J_t z / 2 + eta_t'z)``
    with ``J_T = C'R^-1 C``, ``eta_T = C'R^-1 (x_T - d)`` and, with ``M = (Q^-1 + J_{t+1})^-1``,
    ``J_t = C'R^-1 C + A'(Q^-1 - Q^-1 M Q^-1)A``,
    ``eta_t = C'R^-1 (x_t - d) + A'(Q^-1 M eta_{t+1} - (Q^-1 - Q^-1 M Q^-1) b)``. The context of step
    ``t`` is ``[eta_t, vec J_t]``; ``forward`` gives ``N`` with precision ``Q^-1 + J_t`` and mean
    ``(Q^-1 + J_t)^-1 (Q^-1 (A h + b) + eta_t)``."""

    uses_model_state = True

    def __init__(self, prior, emission):
        super().__init__()
        self.prior, self.emission, self.z_dim = prior, emission, prior.z_dim

    def _parts(self):
        z = self.z_dim
        c = self.emission.linear.weight
        assert torch.all(c[:, z:] == 0), "the emission must not read h_{t-1}"
        return (self.prior.linear.weight, self.prior.linear.bias, torch.diag(self.prior.scale ** -2), c[:, :z],
                self.emission.linear.bias, torch.diag(self.emission.scale ** -2))

    def encode(self, x, x_features, mask):
        assert mask is None or bool(mask.all()), "this test guide takes sequences without padding"
        a, b, q_inv, c, d, r_inv = self._parts()
        info = c.T @ r_inv @ c
        j, eta = info, (x[:, -1] - d) @ r_inv @ c
        contexts = [torch.cat([eta, j.flatten().expand(len(x), -1)], -1)]
        for t in range(x.shape[1] - 2, -1, -1):
            m = torch.linalg.inv(q_inv + j)
            kept = q_inv - q_inv @ m @ q_inv
            eta = (x[:, t] - d) @ r_inv @ c + (eta @ m @ q_inv - b @ kept) @ a
            j = info + a.T @ kept @ a
            contexts.append(torch.cat([eta, j.flatten().expand(len(x), -1)], -1))
        return torch.stack(contexts[::-1], 1)

    def forward(self, context_t, h):
        a, b, q_inv, _, _, _ = self._parts()
        eta, j = context_t[..., :self.z_dim], context_t[..., self.z_dim:].unflatten(-1, (self.z_dim, self.z_dim))
        precision = q_inv + j
        mean = torch.linalg.solve(precision, ((h @ a.T + b) @ q_inv + eta).unsqueeze(-1)).squeeze(-1)
        return dist.MultivariateNormal(mean, precision_matrix=precision)


def exact_lgssm():
    model = linear_gaussian_model().double()
    model.posterior = ExactPosteriorGuide(model.prior, model.emission)
    return model


def test_the_exact_posterior_guide_is_exact():
    """Every importance weight p(x, z) / q(z | x) equals p(x): the guide is the posterior."""
    model = exact_lgssm()
    with torch.no_grad():
        x = model.generate(3, 8)
        est = importance_estimate(model.model, model.guide, x, num_particles=16)
    torch.testing.assert_close(est.log_likelihood, exact_log_likelihood(model, x))
    torch.testing.assert_close(est.ess, torch.full_like(est.ess, 16.0))


def _covered(forecast_result, truth):
    return ((truth >= forecast_result.quantile(0.05)) & (truth <= forecast_result.quantile(0.95))).double()


def test_forecast_intervals_cover_held_out_continuations_at_their_nominal_rate():
    """Each of N independent series contributes one held-out value (series i: step i mod H, feature
    (i // H) mod 2), so the N hits are independent Bernoulli draws and the binomial standard error
    applies; all N H X values are then checked with the standard error of their mean over series (the
    values of one series are correlated). The nominal rate of the interval between the interpolated
    5% and 95% quantiles of S draws is 0.9 (S - 1) / (S + 1) (each interpolated quantile has expected
    CDF value (p (S - 1) + 1) / (S + 1)): 0.891 for S = 200."""
    torch.manual_seed(0)
    model = exact_lgssm()
    prefix_steps, horizon, num_series, num_samples = 6, 3, 1000, 200
    with torch.no_grad():
        series = model.generate(num_series, prefix_steps + horizon)
    prefix, truth = series[:, :prefix_steps], series[:, prefix_steps:]
    result = forecast(model, prefix, horizon=horizon, num_samples=num_samples)
    assert isinstance(result, Forecast) and result.samples.shape == (num_samples, num_series, horizon, 2)
    covered = _covered(result, truth)                                             # (N, H, X)
    rows = torch.arange(num_series)
    one_each = covered[rows, rows % horizon, (rows // horizon) % 2]
    nominal = 0.9 * (num_samples - 1) / (num_samples + 1)
    rate, se = float(one_each.mean()), math.sqrt(nominal * (1 - nominal) / num_series)
    assert abs(rate - nominal) <= 3 * se, (rate, se)
    per_series = covered.mean((1, 2))
    overall, overall_se = float(per_series.mean()), float(per_series.std() / math.sqrt(num_series))
    assert abs(overall - nominal) <= 3 * overall_se, (overall, overall_se)
    low, high = result.quantile(0.05), result.quantile(0.95)
    assert torch.all(result.quantile(0.5) <= high) and torch.all(low <= result.quantile(0.5))

    # the prefix matters: forecasts that ignore it (the prior as guide) miss the next step by more
    blind = linear_gaussian_model().double()
    blind.posterior = PriorAsGuide(blind.prior)
    blind_mean = forecast(blind, prefix, horizon=1, num_samples=num_samples).mean
    exact_error = (result.mean[:, 0] - truth[:, 0]).square().mean()
    blind_error = (blind_mean[:, 0] - truth[:, 0]).square().mean()
    assert exact_error < 0.8 * blind_error, (exact_error, blind_error)
    # and the coverage check has teeth: a model whose observation noise is 30% too small misses it
    overconfident = exact_lgssm()
    with torch.no_grad():
        overconfident.emission.raw_scale.copy_(torch.log(torch.expm1(0.7 * model.emission.scale)))
    narrow = _covered(forecast(overconfident, prefix, horizon=horizon, num_samples=num_samples), truth)
    assert float(narrow[rows, rows % horizon, (rows // horizon) % 2].mean()) < nominal - 3 * se


def test_each_sequence_is_continued_from_its_own_last_real_step():
    """At temperature 0 an RNN's forecast is its chain of one-step means, so the continuation of a
    padded row must equal that of the row alone (it starts after the row's last real step)."""
    torch.manual_seed(0)
    model = RNN(2, 8, feature_dims=(8,), hidden_dims=(8,)).double()
    x, mask = pad_batch([torch.randn(n, 2) for n in (6, 3)])
    x = x.double()
    torch.manual_seed(1)
    padded = forecast(model, x, mask, horizon=4, num_samples=3, temperature=0.0)
    alone = forecast(model, x[1:, :3], horizon=4, num_samples=3, temperature=0.0)
    torch.testing.assert_close(padded.samples[:, 1], alone.samples[:, 0])
    assert padded.samples.shape == (3, 2, 4, 2)
    assert not torch.allclose(padded.samples[:, 0], padded.samples[:, 1])


def test_bad_horizon_names_the_argument():
    model = RNN(2, 4)
    with pytest.raises(ValueError, match="horizon"):
        forecast(model, torch.randn(1, 3, 2), horizon=0)
    with pytest.raises(ValueError, match="num_samples"):
        forecast(model, torch.randn(1, 3, 2), horizon=2, num_samples=0)
