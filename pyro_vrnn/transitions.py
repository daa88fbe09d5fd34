"""Deterministic recurrences ``h_t = f(u_t, h_{t-1})`` with ``u_t = [phi_x(x_t), phi_z(z_t)]``.

A transition owns its state, which may be richer than the ``h`` the other components see (an
LSTM carries ``(h, c)``). The interface every transition offers:

- ``initial_state(batch_shape, like)`` -> the state before the first step;
- ``output(state)`` -> ``h`` of shape ``(..., hidden_dim)``, the vector priors, emissions and
  guides condition on;
- ``forward(u, state)`` -> the next state; ``u`` is ``(..., input_dim)`` and may carry more
  leading (particle) dims than ``state``: both are broadcast.

Optionally (the LSTM and GRU here), a split of the input projection, so that the part that
depends on ``x`` only runs once for all time steps instead of inside the loop:

- ``project_x(x_features)`` -> ``(..., T, G)``: ``W_x phi_x(x_t) + biases`` for every step at once;
- ``step_projected(x_part_t, z_feature_t, state)`` -> the next state, equal to
  ``forward([phi_x(x_t), phi_z(z_t)], state)`` up to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .nn import flatten_leading


def _project_x(cell, x_features: torch.Tensor, hidden_bias: bool) -> torch.Tensor:
    """``W_ih[:, :F_x] x + b_ih (+ b_hh)``: the x-only part of a cell's input projection."""
    bias = cell.bias_ih
    if bias is not None and hidden_bias:
        bias = bias + cell.bias_hh
    return F.linear(x_features, cell.weight_ih[:, :x_features.shape[-1]], bias)


def _z_part(cell, z_feature: torch.Tensor | None, gates: torch.Tensor) -> torch.Tensor:
    if z_feature is None or z_feature.shape[-1] == 0:
        return gates
    return gates + F.linear(z_feature, cell.weight_ih[:, cell.input_size - z_feature.shape[-1]:])


class LSTMTransition(nn.Module):
    """``(h_t, c_t) = LSTMCell(u_t, (h_{t-1}, c_{t-1}))``; output ``h_t`` of shape ``(..., H)``."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.input_dim, self.hidden_dim = input_dim, hidden_dim
        self.cell = nn.LSTMCell(input_dim, hidden_dim)

    def initial_state(self, batch_shape: torch.Size, like: torch.Tensor):
        zeros = like.new_zeros(tuple(batch_shape) + (self.hidden_dim,))
        return (zeros, zeros)

    def output(self, state) -> torch.Tensor:
        return state[0]

    def forward(self, u: torch.Tensor, state):
        h, c = state
        return flatten_leading(lambda u_, h_, c_: self.cell(u_, (h_, c_)), u, h, c)

    def project_x(self, x_features: torch.Tensor) -> torch.Tensor:
        """``(..., T, F_x) -> (..., T, 4H)``: ``W_ih^x phi_x(x_t) + b_ih + b_hh``."""
        return _project_x(self.cell, x_features, hidden_bias=True)

    def step_projected(self, x_part: torch.Tensor, z_feature: torch.Tensor | None, state):
        """The LSTM cell (gates ``i, f, g, o``) with the x-part of its gates given."""
        h, c = state
        gates = _z_part(self.cell, z_feature, x_part) + F.linear(h, self.cell.weight_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class GRUTransition(nn.Module):
    """``h_t = GRUCell(u_t, h_{t-1})``; state and output are ``h_t`` of shape ``(..., H)``."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.input_dim, self.hidden_dim = input_dim, hidden_dim
        self.cell = nn.GRUCell(input_dim, hidden_dim)

    def initial_state(self, batch_shape: torch.Size, like: torch.Tensor):
        return like.new_zeros(tuple(batch_shape) + (self.hidden_dim,))

    def output(self, state) -> torch.Tensor:
        return state

    def forward(self, u: torch.Tensor, state):
        return flatten_leading(self.cell, u, state)

    def project_x(self, x_features: torch.Tensor) -> torch.Tensor:
        """``(..., T, F_x) -> (..., T, 3H)``: ``W_ih^x phi_x(x_t) + b_ih``."""
        return _project_x(self.cell, x_features, hidden_bias=False)

    def step_projected(self, x_part: torch.Tensor, z_feature: torch.Tensor | None, state):
        """The GRU cell (gates ``r, z, n``) with the x-part of its input gates given."""
        input_gates = _z_part(self.cell, z_feature, x_part)
        hidden_gates = F.linear(state, self.cell.weight_hh, self.cell.bias_hh)
        i_r, i_z, i_n = input_gates.chunk(3, dim=-1)
        h_r, h_z, h_n = hidden_gates.chunk(3, dim=-1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (state - candidate)


class IdentityTransition(nn.Module):
    """``h_t = u_t``: the state is the latest input and ``h_{t-1}`` is forgotten.

    With ``phi_x`` discarding ``x`` and ``phi_z`` the identity, ``h_t = z_t`` and a VRNN becomes a
    first-order state-space model (a linear-Gaussian one with linear-Gaussian prior and emission).
    """

    def __init__(self, input_dim: int):
        super().__init__()
        self.input_dim = self.hidden_dim = input_dim

    def initial_state(self, batch_shape: torch.Size, like: torch.Tensor):
        return like.new_zeros(tuple(batch_shape) + (self.hidden_dim,))

    def output(self, state) -> torch.Tensor:
        return state

    def forward(self, u: torch.Tensor, state):
        return u.expand(torch.broadcast_shapes(u.shape[:-1], state.shape[:-1]) + u.shape[-1:])


TRANSITIONS = {"lstm": LSTMTransition, "gru": GRUTransition}


def make_transition(kind: str, input_dim: int, hidden_dim: int) -> nn.Module:
    """Build a named recurrence (``"lstm"`` or ``"gru"``)."""
    if kind not in TRANSITIONS:
        raise ValueError(f"unknown transition {kind!r}; expected one of {sorted(TRANSITIONS)}")
    return TRANSITIONS[kind](input_dim, hidden_dim)
