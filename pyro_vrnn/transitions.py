"""Deterministic recurrences ``h_t = f(u_t, h_{t-1})`` with ``u_t = [phi_x(x_t), phi_z(z_t)]``.

A transition owns its state, which may be richer than the ``h`` the other components see (an
LSTM carries ``(h, c)``). The interface every transition offers:

- ``initial_state(batch_shape, like)`` -> the state before the first step;
- ``output(state)`` -> ``h`` of shape ``(..., hidden_dim)``, the vector priors, emissions and
  guides condition on;
- ``forward(u, state)`` -> the next state; ``u`` is ``(..., input_dim)`` and may carry more
  leading (particle) dims than ``state``: both are broadcast.
"""

from __future__ import annotations

import torch
from torch import nn

from .nn import flatten_leading


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
