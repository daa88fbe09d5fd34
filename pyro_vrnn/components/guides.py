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

import pyro.distributions as dist
import torch
from torch import nn

from .heads import GaussianHead, StepIndependent
from .nn import broadcast_cat, full_precision, positive_scale


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



class CombinerGuide(nn.Module):
    """The Deep Markov Model's guide step ``q(z_t | z_{t-1}, x_{t:T})`` (Krishnan et al. 2017; the
    ``Combiner`` and backward ``rnn`` of Pyro's ``examples/dmm.py``)::

        a_t = ReLU-RNN(x_T, ..., x_t)                  (each sequence reversed within its length, h_0 learned)
        g_t = (tanh(W z_{t-1} + b) + a_t) / 2
        q   = N(W_mu g_t + b_mu, diag sigma^2),   sigma = softplus(W_s g_t + b_s) + floor

    ``encode`` gives ``a: (B, T, R)`` for all steps at once; ``forward(a_t, z_{t-1})`` with ``z_{t-1}``
    of shape ``(..., B, Z)``. The floor (the example has none) keeps ``sigma`` from underflowing to 0,
    which is where the example's NaNs come from; ``scale_floor=0`` is the example's formula.
    """

    uses_model_state = True

    def __init__(self, x_dim: int, z_dim: int, rnn_dim: int = 600, scale_floor: float = 1e-3):
        super().__init__()
        self.z_dim, self.rnn_dim, self.scale_floor = z_dim, rnn_dim, scale_floor
        self.rnn = nn.RNN(x_dim, rnn_dim, nonlinearity="relu", batch_first=True)
        self.h_0 = nn.Parameter(torch.zeros(1, 1, rnn_dim))
        self.z_to_hidden = nn.Linear(z_dim, rnn_dim)
        self.loc = nn.Linear(rnn_dim, z_dim)
        self.raw_scale = nn.Linear(rnn_dim, z_dim)

    def encode(self, x, x_features, mask):
        """``a_t`` for every step: the RNN over ``x_features`` reversed within each sequence's length
        (padding stays at the end, after the real steps), its outputs put back in forward order."""
        h_0 = self.h_0.expand(1, x_features.shape[0], self.rnn_dim).contiguous()
        return reverse_padded(self.rnn(reverse_padded(x_features, mask), h_0)[0], mask)

    def forward(self, context_t, h):
        combined = 0.5 * (torch.tanh(self.z_to_hidden(h)) + context_t)
        scale = positive_scale(full_precision(self.raw_scale(combined)), self.scale_floor)
        return StepIndependent(dist.Normal(full_precision(self.loc(combined)), scale), 1)


class ResidualGuide(nn.Module):
    """SRNN's posterior ``q(z_t | z_{t-1}, a_t)`` with the residual mean of Fraccaro et al. 2016 ("Resq")::

        a_t = BackwardRNN(u_{>=t})                         (u_t = [d_t, x_t] in the SRNN)
        q(z_t | .) = N(mu_p + mu_res([a_t, z_{t-1}]), diag sigma([a_t, z_{t-1}])^2)

    where ``mu_p`` is the prior's mean ``E p(z_t | z_{t-1}, d_t)``, given by the model: the guide learns
    the correction to the prior. ``encode(x, features, mask)`` runs the backward RNN over ``features
    (B, T, F)`` once per call (within each sequence's length); ``forward(a_t, z_prev, prior_loc)`` takes
    ``a_t: (B, C)``, ``z_{t-1}: (..., B, Z)`` and ``mu_p: (..., B, Z)``. It reads the model's state
    (``z_{t-1}`` and ``mu_p``), so the guide runs the model's recurrence.
    """

    uses_model_state = True

    def __init__(self, feature_dim: int, z_dim: int, rnn_dim: int = 64, hidden_dims=(64,), activation="relu",
                 rnn="lstm", scale_floor=1e-3):
        super().__init__()
        self.z_dim = z_dim
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn]
        self.rnn = rnn_cls(feature_dim, rnn_dim, batch_first=True)
        self.head = GaussianHead(rnn_dim + z_dim, z_dim, hidden_dims, activation, scale_floor=scale_floor)

    def encode(self, x, features, mask):
        """``a_t`` for all steps at once: ``(B, T, rnn_dim)``."""
        return reverse_padded(self.rnn(reverse_padded(features, mask))[0], mask)

    def forward(self, context_t, z_prev, prior_loc):
        residual = self.head(broadcast_cat([context_t, z_prev])).base_dist
        return StepIndependent(dist.Normal(prior_loc + residual.loc, residual.scale), 1)
