"""Observation distributions that Pyro does not ship.

``BivariateGaussianMixturePen`` is Graves' (2013) handwriting density over a pen step
``x = (dx, dy, pen_lifted)``::

    p(x) = [sum_m pi_m N2(dx, dy | mu_m, sigma_m, rho_m)] * Bernoulli(pen_lifted | sigmoid(e))

evaluated in log space with ``logsumexp``.

``AutoregressiveBernoulli`` is an autoregressive density over a binary vector ``x in {0, 1}^D`` (the keys
of one piano-roll step), as RNN-NADE models a step (Boulanger-Lewandowski et al. 2012)::

    p(x) = prod_d Bernoulli(x_d | sigmoid(l_d(x_{<d})))

so that, unlike independent Bernoullis, which keys sound together is modelled within the step. Its
conditionals come from a masked one-hidden-layer network (MADE, Germain et al. 2015) in one pass. NADE's
own weight sharing needs a ``(D, H)`` hidden state per draw: on 88 keys its log-density and gradient cost
76x the Bernoulli emission's, MADE's 1.5x, and a whole training update with MADE 1.04x the Bernoulli
VRNN's (``benchmarks/emission_cost.py``, one CPU thread).
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.nn import functional as F

from .nn import broadcast_leading

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



def autoregressive_masks(x_dim: int, hidden_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """MADE's masks (Germain et al. 2015) for one hidden layer: ``(H, D)`` into it, ``(D, H)`` out of it.

    Hidden unit ``k`` gets the degree ``m_k = (k mod (D - 1)) + 1`` and sees inputs ``j <= m_k``
    (1-based); output ``d`` sees the units with ``m_k < d``. So output ``d`` depends on ``x_{<d}`` only.
    """
    degrees = torch.arange(hidden_dim, device=device) % max(x_dim - 1, 1) + 1  # (H,)
    keys = torch.arange(1, x_dim + 1, device=device)  # (D,)
    into = (degrees[:, None] >= keys[None, :]).float()  # (H, D)
    out = (keys[:, None] > degrees[None, :]).float()  # (D, H)
    return into, out


class AutoregressiveBernoulli(TorchDistribution):
    """``x in {0, 1}^D`` with ``p(x) = prod_d Bernoulli(x_d | sigmoid(l_d(x_{<d})))`` (module docstring), where

        l = b + (V * M_out) act(c + (W * M_in) x) + (A * L) x

    a one-hidden-layer MADE (masks from :func:`autoregressive_masks`) plus a direct term with ``L``
    strictly lower triangular, so ``l_d`` depends on ``x_{<d}`` only and ``log p(x)`` takes one pass.

    Args:
        bias: ``(..., D)`` ``b`` (from the emission's input).
        hidden_bias: ``(..., H)`` ``c`` (from the emission's input).
        in_weight: ``(H, D)`` ``W``; out_weight: ``(D, H)`` ``V``; direct_weight: ``(D, D)`` ``A`` (all
            shared by every step and sample, masked here whatever they hold).
        activation: the hidden layer's nonlinearity (a callable; it may overwrite its input, a fresh sum).

    Batch shape: ``bias.shape[:-1]`` broadcast with ``hidden_bias.shape[:-1]``; event shape ``(D,)``.
    Drawing is ``D`` sequential passes, key by key.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(self, bias, hidden_bias, in_weight, out_weight, direct_weight, activation=torch.relu,
                 validate_args=None):
        d, h = bias.shape[-1], hidden_bias.shape[-1]
        if (tuple(in_weight.shape), tuple(out_weight.shape), tuple(direct_weight.shape)) != ((h, d), (d, h), (d, d)):
            raise ValueError(f"weights must be W (H, D) = {(h, d)}, V (D, H) = {(d, h)} and A (D, D) = {(d, d)}, got "
                             f"{tuple(in_weight.shape)}, {tuple(out_weight.shape)} and {tuple(direct_weight.shape)}")
        batch_shape = broadcast_leading(bias.shape[:-1], hidden_bias.shape[:-1])
        self.bias = bias.expand(batch_shape + (d,))
        self.hidden_bias = hidden_bias.expand(batch_shape + (h,))
        self.in_weight, self.out_weight, self.direct_weight = in_weight, out_weight, direct_weight
        self.activation = activation
        into, out = autoregressive_masks(d, h, device=bias.device)
        self._in = (in_weight * into.to(in_weight.dtype)).t()  # (D, H)
        self._out = (out_weight * out.to(out_weight.dtype)).t()  # (H, D)
        self._direct = direct_weight.tril(-1).t()  # (D, D): x @ it sums A_{dj} x_j over j < d
        super().__init__(batch_shape, torch.Size((d,)), validate_args=validate_args)

    @property
    def hidden_dim(self) -> int:
        return self.hidden_bias.shape[-1]

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return type(self)(self.bias.expand(batch_shape + self.event_shape),
                          self.hidden_bias.expand(batch_shape + (self.hidden_dim,)), self.in_weight,
                          self.out_weight, self.direct_weight, self.activation)

    def conditional_logits(self, value: torch.Tensor) -> torch.Tensor:
        """``l_d(x_{<d})`` for every key at once; ``value`` ``(..., D)`` broadcasts with the batch shape."""
        x = value.to(self.bias.dtype)
        hidden = self.activation(self.hidden_bias + x @ self._in)
        return self.bias + hidden @ self._out + x @ self._direct

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits = self.conditional_logits(value)
        x = value.to(logits.dtype).expand(logits.shape)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def sample(self, sample_shape=torch.Size()):
        return self.tempered_sample(1.0, sample_shape)

    def tempered_sample(self, temperature: float, sample_shape=torch.Size()) -> torch.Tensor:
        """Keys drawn in order, ``x_d ~ Bernoulli(sigmoid(l_d / tau))``; ``tau = 0`` takes each key's more
        likely value given the keys before it. Shape ``sample_shape + batch_shape + (D,)``."""
        shape = torch.Size(sample_shape) + self.batch_shape
        with torch.no_grad():
            x = torch.zeros(shape + self.event_shape, dtype=self.bias.dtype, device=self.bias.device)
            for k in range(self.event_shape[0]):
                logit = self.conditional_logits(x)[..., k]  # depends on x[..., :k], already drawn
                if temperature == 0:
                    x[..., k] = (logit > 0).to(x.dtype)
                else:
                    x[..., k] = torch.bernoulli(torch.sigmoid(logit / temperature))
        return x
