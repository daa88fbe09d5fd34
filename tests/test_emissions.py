"""Emission densities against direct torch computations."""

import math

import pytest
import torch
import torch.distributions as td
from torch.nn import functional as F

from pyro_vrnn import BernoulliEmission, GaussianEmission, GMMEmission, HandwritingEmission
from pyro_vrnn.components.distributions import BivariateGaussianMixturePen


def test_gmm_emission_log_prob_matches_direct_logsumexp():
    torch.manual_seed(0)
    emission = GMMEmission(in_dim=5, x_dim=4, num_components=3, hidden_dims=(7,)).double()
    u = torch.randn(2, 6, 5, dtype=torch.float64)
    x = torch.randn(6, 4, dtype=torch.float64)  # broadcasts over the leading particle dim
    d = emission(u)
    hidden = emission.net(u)
    logits = emission.logits(hidden)
    loc = emission.loc(hidden).reshape(2, 6, 3, 4)
    scale = (F.softplus(emission.raw_scale(hidden)) + emission.scale_floor).reshape(2, 6, 3, 4)
    direct = torch.zeros(2, 6, dtype=torch.float64)
    for b in range(2):
        for n in range(6):
            weights = torch.softmax(logits[b, n], -1)
            density = sum(weights[k] * torch.exp(td.Normal(loc[b, n, k], scale[b, n, k]).log_prob(x[n]).sum())
                          for k in range(3))
            direct[b, n] = torch.log(density)
    assert d.batch_shape == (2, 6) and d.event_shape == (4,)
    assert torch.allclose(d.log_prob(x), direct, atol=1e-10)


def test_handwriting_emission_log_prob_matches_bivariate_normal_mixture_times_bernoulli():
    torch.manual_seed(1)
    emission = HandwritingEmission(in_dim=5, num_components=4, hidden_dims=(7,)).double()
    u = torch.randn(3, 5, dtype=torch.float64)
    x = torch.cat([torch.randn(3, 2, dtype=torch.float64), torch.tensor([[1.0], [0.0], [1.0]],
                                                                        dtype=torch.float64)], -1)
    d = emission(u)
    direct = torch.zeros(3, dtype=torch.float64)
    for n in range(3):
        log_terms = []
        for m in range(4):
            sx, sy = d.scale[n, m]
            rho = d.rho[n, m]
            cov = torch.stack([torch.stack([sx * sx, rho * sx * sy]), torch.stack([rho * sx * sy, sy * sy])])
            mvn = td.MultivariateNormal(d.loc[n, m], covariance_matrix=cov)
            log_terms.append(torch.log_softmax(d.logits[n], -1)[m] + mvn.log_prob(x[n, :2]))
        pen = td.Bernoulli(logits=d.pen_logits[n]).log_prob(x[n, 2])
        direct[n] = torch.logsumexp(torch.stack(log_terms), 0) + pen
    assert torch.allclose(d.log_prob(x), direct, atol=1e-10)
    assert torch.all(d.rho.abs() < 1) and torch.all(d.scale >= emission.scale_floor)


def test_handwriting_distribution_samples_match_its_moments():
    torch.manual_seed(2)
    d = BivariateGaussianMixturePen(torch.tensor([0.0, math.log(3.0)]), torch.tensor([[-2.0, 0.0], [1.0, 1.0]]),
                                    torch.tensor([[0.5, 0.5], [0.3, 0.6]]), torch.tensor([0.0, 0.8]),
                                    torch.tensor(0.0))
    s = d.sample((20000,))
    assert s.shape == (20000, 3)
    assert s[:, 0].mean().item() == pytest.approx(0.25 * -2 + 0.75 * 1, abs=0.05)
    assert s[:, 2].mean().item() == pytest.approx(0.5, abs=0.02)
    second = s[:, 0] > 0  # the correlated component
    c = torch.corrcoef(s[second, :2].T)[0, 1]
    assert c.item() == pytest.approx(0.8, abs=0.05)
    expanded = d.expand((4, 5))
    assert expanded.batch_shape == (4, 5) and expanded.log_prob(torch.zeros(3)).shape == (4, 5)


def test_scales_have_floors_even_for_huge_negative_preactivations():
    emission = GaussianEmission(in_dim=2, x_dim=3, hidden_dims=(4,), scale_floor=1e-3)
    with torch.no_grad():
        emission.raw_scale.bias.fill_(-1e4)
    d = emission(torch.zeros(5, 2))
    assert torch.all(d.base_dist.scale >= 1e-3)
    assert torch.isfinite(d.log_prob(torch.zeros(5, 3))).all()


def test_bernoulli_emission_log_prob_has_the_right_sign():
    emission = BernoulliEmission(in_dim=2, x_dim=3, hidden_dims=(4,))
    with torch.no_grad():
        emission.logits.weight.zero_()
        emission.logits.bias.copy_(torch.tensor([5.0, -5.0, 0.0]))
    lp = emission(torch.zeros(1, 2)).log_prob(torch.tensor([[1.0, 0.0, 1.0]]))
    expected = F.logsigmoid(torch.tensor(5.0)) + F.logsigmoid(torch.tensor(5.0)) + math.log(0.5)
    assert torch.allclose(lp, expected.reshape(1), atol=1e-6)
