"""Gaussian heads: the small networks that turn a vector into a diagonal Normal, and the
distribution type every Gaussian site of the library uses.

- :func:`normal_log_density`: ``log N(value | loc, scale^2)`` in 5 elementwise passes;
- :class:`StepIndependent`: ``Independent(Normal)`` whose same-shape ``expand`` is free (``pyro.plate``
  expands every site's distribution, even to the shape it already has);
- :class:`GaussianHead`: ``v -> N(mu(v), diag sigma(v)^2)`` through an MLP; priors, emissions and guide
  components are built on it.
"""

from __future__ import annotations

import itertools
import math

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from .nn import MLP, add_into, full_precision, positive_scale

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_NORMALS = (dist.Normal, torch.distributions.Normal)


def normal_log_density(value: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``log N(value | loc, scale^2)`` elementwise: ``-((value - loc) / scale)^2 / 2 - log scale - log(2 pi) / 2``.

    Equal to ``Normal(loc, scale).log_prob(value)`` to float rounding, in 5 elementwise passes
    (and a shorter backward) instead of 9: it runs on every Gaussian site, and on ``(T, B, X)`` at once
    for the model's replayed steps.
    """
    z = (value - loc) / scale
    return torch.addcmul(scale.log().add_(_HALF_LOG_2PI).neg_(), z, z, value=-0.5)


def independent_log_prob(fn, value: torch.Tensor) -> torch.Tensor:
    """``fn.log_prob(value)`` for an ``Independent`` ``fn``, through :func:`normal_log_density` when its
    base is a Normal."""
    base = fn.base_dist
    if type(base) not in _NORMALS:
        return fn.log_prob(value) if type(fn) is not StepIndependent else dist.Independent.log_prob(fn, value)
    if fn._validate_args:
        base._validate_sample(value)
    log_prob = normal_log_density(value, base.loc, base.scale)
    return log_prob.sum(tuple(range(-fn.reinterpreted_batch_ndims, 0))) if fn.reinterpreted_batch_ndims else log_prob


def unwrap_normal(fn):
    """``(loc, scale, shape)`` if ``fn`` is a Normal, possibly inside ``Independent`` and ``MaskedDistribution``
    wrappers (``shape``: ``fn``'s batch and event shape); else ``None``. The noise sources of the
    estimators draw such sites as ``loc + scale * eps`` from their own generators."""
    if not isinstance(fn, torch.distributions.Distribution):
        return None
    shape = fn.batch_shape + fn.event_shape
    while True:
        if type(fn) in _NORMALS or isinstance(fn, dist.Normal):
            return fn.loc, fn.scale, shape
        base = getattr(fn, "base_dist", None)
        if base is None or not isinstance(fn, (dist.Independent, dist.MaskedDistribution,
                                                torch.distributions.Independent)):
            return None
        fn = base


class StepIndependent(dist.Independent):
    """``pyro.distributions.Independent`` whose ``expand`` to its own batch shape is free.

    ``pyro.plate`` expands every site's distribution to the plate's shape, even when it already
    has it; for ``Independent(Normal)`` that builds two new distributions and two ``expand``
    views (and their backward nodes) per site, about 60 us per site on a CPU. A distribution is
    immutable, so expanding to the same shape can return it as is.

    ``log_prob`` takes :func:`normal_log_density` when the base is a Normal.
    """

    def expand(self, batch_shape, _instance=None):
        if _instance is None and tuple(batch_shape) == tuple(self.batch_shape):
            return self
        return super().expand(batch_shape, _instance)

    def log_prob(self, value):
        return independent_log_prob(self, value)


class GaussianHead(nn.Module):
    """``v -> N(mu(v), diag sigma(v)^2)`` through an MLP, ``sigma = softplus + floor``
    (or ``|out| + floor`` when ``scale="square"``: the variance is the square of the net's output).

    ``v: (..., in_dim) -> Normal`` with event shape ``(Z,)``.
    """

    def __init__(self, in_dim: int, z_dim: int, hidden_dims=(64,), activation="relu", scale="softplus",
                 scale_floor=1e-3):
        super().__init__()
        if scale not in ("softplus", "square"):
            raise ValueError(f"scale must be 'softplus' or 'square', got {scale!r}")
        self.scale, self.scale_floor = scale, scale_floor
        self.net = MLP(in_dim, hidden_dims, activation)
        self.loc = nn.Linear(self.net.out_dim, z_dim)
        self.raw_scale = nn.Linear(self.net.out_dim, z_dim)

    def forward(self, v: torch.Tensor):
        return self._distribution(self.net(v))

    @property
    def splits_first_layer(self) -> bool:
        """Whether :meth:`project_context` / :meth:`forward_projected` apply (the MLP has a layer)."""
        return len(self.net) > 0

    def project_context(self, context: torch.Tensor) -> torch.Tensor:
        """``W_1[:, :C] c + b_1``: the context's share of the first layer, for all steps at once.

        The first layer of ``forward(cat([c, h]))`` splits as ``W_1^c c + W_1^h h + b_1``; when
        ``c`` is known for every step before the loop (features of ``x``, a backward RNN), its
        share runs as one batched matmul and each step adds only ``W_1^h h``.
        ``(..., T, C) -> (..., T, hidden_dims[0])``.
        """
        first = self.net[0]
        return F.linear(context, first.weight[:, :context.shape[-1]], first.bias)

    def h_weight(self, h_dim: int) -> torch.Tensor:
        """``W_1^h``, the columns of the first layer that multiply ``h`` (a view; slice it once per call)."""
        first = self.net[0]
        return first.weight[:, first.in_features - h_dim:]

    def forward_projected(self, projected: torch.Tensor, h: torch.Tensor, h_weight: torch.Tensor | None = None):
        """``forward(cat([c, h]))`` given ``projected = project_context(c)`` (broadcasting leading dims)
        and optionally ``h_weight = self.h_weight(H)`` sliced once for all steps."""
        hidden = add_into(F.linear(h, h_weight if h_weight is not None else self.h_weight(h.shape[-1])), projected)
        for layer in itertools.islice(self.net, 1, None):
            hidden = layer(hidden)
        return self._distribution(hidden)

    def _distribution(self, hidden: torch.Tensor):
        raw = full_precision(self.raw_scale(hidden))
        scale = raw.abs() + self.scale_floor if self.scale == "square" else positive_scale(raw, self.scale_floor)
        return StepIndependent(dist.Normal(full_precision(self.loc(hidden)), scale), 1)
