"""Observation distributions that Pyro does not ship.

``BivariateGaussianMixturePen`` is Graves' (2013) handwriting density over a pen step
``x = (dx, dy, pen_lifted)``::

    p(x) = [sum_m pi_m N2(dx, dy | mu_m, sigma_m, rho_m)] * Bernoulli(pen_lifted | sigmoid(e))

evaluated in log space with ``logsumexp``.
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.nn import functional as F

_LOG_2PI = math.log(2 * math.pi)


class BivariateGaussianMixturePen(TorchDistribution):
    """Mixture of ``M`` correlated bivariate Gaussians on ``(dx, dy)`` times a Bernoulli pen bit.

    Args (all broadcastable over the batch shape ``(...)``):
        logits: ``(..., M)`` unnormalized mixture log-weights.
        loc: ``(..., M, 2)`` component means of ``(dx, dy)``.
        scale: ``(..., M, 2)`` positive component standard deviations.
        rho: ``(..., M)`` correlations in ``(-1, 1)``.
        pen_logits: ``(...)`` logit of ``pen_lifted = 1``.

    Event shape ``(3,)``: ``value[..., 0:2]`` are the offsets and ``value[..., 2]`` the pen bit.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 1)
    has_rsample = False

    def __init__(self, logits, loc, scale, rho, pen_logits, validate_args=None):
        batch_shape = torch.broadcast_shapes(
            logits.shape[:-1], loc.shape[:-2], scale.shape[:-2], rho.shape[:-1], pen_logits.shape
        )
        m = logits.shape[-1]
        self.logits = logits.expand(batch_shape + (m,))
        self.loc = loc.expand(batch_shape + (m, 2))
        self.scale = scale.expand(batch_shape + (m, 2))
        self.rho = rho.expand(batch_shape + (m,))
        self.pen_logits = pen_logits.expand(batch_shape)
        super().__init__(batch_shape, torch.Size((3,)), validate_args=validate_args)

    @property
    def num_components(self) -> int:
        return self.logits.shape[-1]

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        m = self.num_components
        return type(self)(
            self.logits.expand(batch_shape + (m,)),
            self.loc.expand(batch_shape + (m, 2)),
            self.scale.expand(batch_shape + (m, 2)),
            self.rho.expand(batch_shape + (m,)),
            self.pen_logits.expand(batch_shape),
        )

    def offset_log_prob(self, offsets: torch.Tensor) -> torch.Tensor:
        """``log sum_m pi_m N2(offsets | mu_m, Sigma_m)``; ``offsets: (..., 2) -> (...)``."""
        z = (offsets.unsqueeze(-2) - self.loc) / self.scale  # (..., M, 2)
        one_minus_rho2 = (1 - self.rho.square()).clamp_min(1e-6)
        quad = (z[..., 0].square() + z[..., 1].square() - 2 * self.rho * z[..., 0] * z[..., 1]) / one_minus_rho2
        log_n2 = -_LOG_2PI - self.scale.log().sum(-1) - 0.5 * one_minus_rho2.log() - 0.5 * quad
        return torch.logsumexp(F.log_softmax(self.logits, -1) + log_n2, dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        pen_logits, pen = torch.broadcast_tensors(self.pen_logits, value[..., 2])
        pen_lp = -F.binary_cross_entropy_with_logits(pen_logits, pen, reduction="none")
        return self.offset_log_prob(value[..., :2]) + pen_lp

    def sample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape
        with torch.no_grad():
            component = torch.distributions.Categorical(logits=self.logits).sample(sample_shape)  # (shape)
            idx = component[..., None, None].expand(shape + (1, 2))
            loc = self.loc.expand(shape + self.loc.shape[-2:]).gather(-2, idx).squeeze(-2)
            scale = self.scale.expand(shape + self.scale.shape[-2:]).gather(-2, idx).squeeze(-2)
            rho = self.rho.expand(shape + self.rho.shape[-1:]).gather(-1, component[..., None]).squeeze(-1)
            eps = torch.randn(shape + (2,), dtype=loc.dtype, device=loc.device)
            dx = loc[..., 0] + scale[..., 0] * eps[..., 0]
            dy = loc[..., 1] + scale[..., 1] * (rho * eps[..., 0] + (1 - rho.square()).clamp_min(0).sqrt() * eps[..., 1])
            pen = torch.bernoulli(torch.sigmoid(self.pen_logits.expand(shape)))
            return torch.stack([dx, dy, pen], dim=-1)
