"""Variational posteriors ``q(z_t | ...)`` used by a model's ``guide``.

A guide component splits its work in two, so that everything that does not depend on the
sampled latents runs once for all time steps:

- ``encode(x, x_features, mask)`` -> a context ``(B, T, C)`` computed in one batched call
  (features of ``x``, a forward or backward RNN over the sequence, or already their share of
  the head's first layer: what a context is, is the guide's own business);
- optionally ``stepper()`` -> a callable equal to ``forward`` for the steps of one guide call
  (it may hoist per-call work, e.g. weight slices, out of the loop);
- ``forward(context_t, h)`` -> a distribution over ``z_t`` with event shape ``(Z,)``, where
  ``context_t`` is ``(B, C)`` and ``h`` is the model's ``h_{t-1}`` of shape ``(..., B, H)``
  (``None`` when ``uses_model_state`` is False, in which case the guide never runs the
  model's recurrence).
"""

from __future__ import annotations

import itertools
import math

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from .nn import MLP, add_into, broadcast_cat, positive_scale


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


class StepIndependent(dist.Independent):
    """``pyro.distributions.Independent`` whose ``expand`` to its own batch shape is free.

    ``pyro.plate`` expands every site's distribution to the plate's shape, even when it already
    has it; for ``Independent(Normal)`` that builds two new distributions and two ``expand``
    views (and their backward nodes) per site, about 60 us per site on a CPU. A distribution is
    immutable, so expanding to the same shape can return it as is.

    ``precomputed``, if set, is ``(value, fn)`` with ``fn()`` returning ``self.log_prob(value)``
    computed elsewhere (the model evaluates it for all steps in one batched call); ``log_prob`` of
    that very tensor (by identity) returns it, of any other value computes as usual.
    """

    precomputed = None

    def expand(self, batch_shape, _instance=None):
        if _instance is None and tuple(batch_shape) == tuple(self.batch_shape):
            return self
        return super().expand(batch_shape, _instance)

    def log_prob(self, value):
        known = self.precomputed
        if known is not None and value is known[0]:
            return known[1]()
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
        raw = self.raw_scale(hidden)
        scale = raw.abs() + self.scale_floor if self.scale == "square" else positive_scale(raw, self.scale_floor)
        return StepIndependent(dist.Normal(self.loc(hidden), scale), 1)


def reverse_padded(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of ``x: (B, T, D)`` in time within its own length.

    Padded steps stay at the end, so a forward RNN over the result is a backward RNN over the
    real steps that never sees padding. Applying it twice is the identity.
    """
    if mask is None:
        return x.flip(1)
    T = x.shape[1]
    lengths = mask.sum(1, keepdim=True)  # (B, 1)
    steps = torch.arange(T, device=x.device).expand_as(mask)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class _ContextStateGuide(nn.Module):
    """Shared by the guides whose head reads ``[context_t, h_{t-1}]``: ``self.head`` is a
    :class:`GaussianHead` over ``C + H`` inputs and ``self.h_dim`` is ``H``."""

    def forward(self, context_t, h):
        if self.head.splits_first_layer:
            return self.head.forward_projected(context_t, h)
        return self.head(broadcast_cat([context_t, h]))

    def stepper(self):
        """``forward`` for the steps of one guide call, with ``W_1^h`` sliced once, not per step."""
        if not self.head.splits_first_layer:
            return self
        h_weight = self.head.h_weight(self.h_dim)
        return lambda context_t, h: self.head.forward_projected(context_t, h, h_weight)


class FilteringGuide(_ContextStateGuide):
    """The VRNN encoder ``q(z_t | x_t, h_{t-1}) = N(mu_enc([phi_x(x_t), h]), diag sigma_enc^2)``.

    Shares ``phi_x`` and the recurrence with the model (as in Chung et al. 2015).
    """

    uses_model_state = True

    def __init__(self, x_feature_dim: int, h_dim: int, z_dim: int, hidden_dims=(64,), activation="relu",
                 scale_floor=1e-3):
        super().__init__()
        self.z_dim, self.h_dim = z_dim, h_dim
        self.head = GaussianHead(x_feature_dim + h_dim, z_dim, hidden_dims, activation, scale_floor=scale_floor)

    def encode(self, x, x_features, mask):
        """The context is ``phi_x(x)``'s share of the head's first layer, for all steps at once."""
        return self.head.project_context(x_features) if self.head.splits_first_layer else x_features


class STORNGuide(nn.Module):
    """STORN's recognition model ``q(z_t | x_{<=t})`` from its own forward RNN over ``x``.

    ``g_t = RNN(x_{<=t})``; ``q = N(mu(g_t), diag sigma(g_t)^2)`` with the variance the square of
    the net's output (``scale="square"``, as in Bayer & Osendorfer 2014) or a softplus.
    It never needs the model's ``h``, so the guide skips the model's recurrence entirely.
    """

    uses_model_state = False

    def __init__(self, x_dim: int, z_dim: int, rnn_dim: int = 64, hidden_dims=(64,), activation="relu",
                 rnn="lstm", scale="square", scale_floor=1e-3):
        super().__init__()
        self.z_dim = z_dim
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn]
        self.rnn = rnn_cls(x_dim, rnn_dim, batch_first=True)
        self.head = GaussianHead(rnn_dim, z_dim, hidden_dims, activation, scale=scale, scale_floor=scale_floor)

    def encode(self, x, x_features, mask):
        return self.rnn(x)[0]

    def forward(self, context_t, h=None):
        return self.head(context_t)


class SmoothingGuide(_ContextStateGuide):
    """A smoothing posterior ``q(z_t | h_{t-1}, x_{>=t})`` (as in SRNN and the DMM's guide).

    ``a_t = BackwardRNN(phi_x(x_{>=t}))`` runs once over the whole sequence (respecting each
    sequence's length); ``q = N(mu([a_t, h_{t-1}]), diag sigma^2)``.
    """

    uses_model_state = True

    def __init__(self, x_feature_dim: int, h_dim: int, z_dim: int, rnn_dim: int = 64, hidden_dims=(64,),
                 activation="relu", rnn="lstm", scale_floor=1e-3):
        super().__init__()
        self.z_dim, self.h_dim = z_dim, h_dim
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn]
        self.rnn = rnn_cls(x_feature_dim, rnn_dim, batch_first=True)
        self.head = GaussianHead(rnn_dim + h_dim, z_dim, hidden_dims, activation, scale_floor=scale_floor)

    def encode(self, x, x_features, mask):
        """``a_t`` (its share of the head's first layer, when the head has one) for all steps at once."""
        backward = reverse_padded(self.rnn(reverse_padded(x_features, mask))[0], mask)
        return self.head.project_context(backward) if self.head.splits_first_layer else backward

