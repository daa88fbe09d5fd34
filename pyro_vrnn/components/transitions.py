"""Deterministic recurrences ``h_t = f(u_t, h_{t-1})`` with ``u_t = [phi_x(x_t), phi_z(z_t)]``.

A transition owns its state, which may be richer than the ``h`` the other components see (an
LSTM carries ``(h, c)``). The interface every transition offers:

- ``initial_state(batch_shape, like)`` -> the state before the first step;
- ``output(state)`` -> ``h`` of shape ``(..., hidden_dim)``, the vector priors, emissions and
  guides condition on;
- ``forward(u, state)`` -> the next state; ``u`` is ``(..., input_dim)`` and may carry more
  leading (particle) dims than ``state``: both are broadcast.

Optionally (the model falls back to ``forward`` on ``cat([phi_x(x_t), phi_z(z_t)])`` without it):

- ``stepper(x_features)`` -> ``step(t, z_feature_t, state)``, equal to
  ``forward(cat([x_features[:, t], z_feature_t]), state)`` for the steps of one call, where
  ``x_features`` is ``(B, T, F_x)``: the share of the work that depends on ``x`` alone (its part of
  the input projection) runs once for all steps, and under vectorized particles once instead of
  once per particle.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .nn import add_into, broadcast_cat, flatten_leading

#: rows (batch x particles) from which the no-grad cell takes the faster pointwise route; below it the
#: op count dominates and ``nn.LSTMCell`` (its pointwise part in C++) is as fast or faster. Measured
#: on a CPU, one thread, no grad, H 64: 32 rows 105 vs 82 us, 128 rows 216 vs 227, 512 rows 662 vs 917,
#: 3200 rows 4.5 vs 8.1 ms (decomposed vs nn.LSTMCell, a whole step).
INFERENCE_MIN_ROWS = 256


class LSTMTransition(nn.Module):
    """``(h_t, c_t) = LSTMCell(u_t, (h_{t-1}, c_{t-1}))``; output ``h_t`` of shape ``(..., H)``::

        i, f, g, o = split(W_ih u_t + b_ih + W_hh h_{t-1} + b_hh)
        c_t = sigma(f) c_{t-1} + sigma(i) tanh(g),    h_t = sigma(o) tanh(c_t)

    :meth:`forward` is that cell. The fast route (the methods after it, in one place with what each
    is equal to and where that is tested) serves inference: ``stepper`` splits the input projection,
    ``W_ih u_t = W_ih^x phi_x(x_t) + W_ih^z phi_z(z_t)``, and runs the ``x`` share (with both biases)
    for all steps at once; without autograd and with at least ``inference_min_rows`` rows
    (importance sampling with many particles, large batches) the cell's pointwise part runs without
    ``tanh`` (:func:`_lstm_gates_to_state_inference`). ``decomposed=False`` turns the route off.
    """

    def __init__(self, input_dim: int, hidden_dim: int, *, decomposed: bool = True,
                 inference_min_rows: int = INFERENCE_MIN_ROWS):
        super().__init__()
        self.input_dim, self.hidden_dim = input_dim, hidden_dim
        self.decomposed, self.inference_min_rows = bool(decomposed), int(inference_min_rows)
        self.cell = nn.LSTMCell(input_dim, hidden_dim)

    def initial_state(self, batch_shape: torch.Size, like: torch.Tensor):
        zeros = like.new_zeros(tuple(batch_shape) + (self.hidden_dim,))
        return (zeros, zeros)

    def output(self, state) -> torch.Tensor:
        return state[0]

    def forward(self, u: torch.Tensor, state):
        """``(h_t, c_t) = LSTMCell(u_t, (h_{t-1}, c_{t-1}))``, broadcasting the leading dims of ``u`` and the state.

        The textbook cell, except without autograd on many rows, where the fast route below gives the
        same state to float rounding."""
        h, c = state
        if self.decomposed and not torch.is_grad_enabled() and _rows(u, h) >= self.inference_min_rows:
            return self._fast_forward(u, state)
        return flatten_leading(lambda u_, h_, c_: self.cell(u_, (h_, c_)), u, h, c)

    # ------------------------------------------------------------------ the fast route
    # What it is equal to, and where that is tested:
    # - ``_fast_forward(u, state)`` == ``LSTMCell(u, state)`` to float rounding (~1e-7 absolute in float32):
    #   tests/test_performance_paths.py::test_lstm_forward_without_grad_equals_lstm_cell;
    # - ``stepper(x_features)(t, z_feature_t, state)`` == ``forward(cat([x_features[:, t], z_feature_t]), state)``
    #   (exactly with autograd; to rounding without): ::test_lstm_stepper_equals_lstm_cell_on_the_concatenated_input;
    # - through the models: the fast ELBO's loss and gradients equal Trace_ELBO's on the plain programs in
    #   float64 (tests/test_engine.py), and the no-grad route leaves importance sampling unchanged
    #   (::test_fast_lstm_inference_path_leaves_the_importance_estimate_unchanged).
    # ``decomposed=False`` switches the whole route off (the plain path those tests compare against).
    def _fast_forward(self, u: torch.Tensor, state):
        h, c = state
        cell = self.cell
        gates = self._gates(F.linear(u, cell.weight_ih, self._bias()), h, cell.weight_hh, fresh=True)
        return self._gates_to_state(gates, c)

    def _bias(self):
        cell = self.cell
        return cell.bias_ih + cell.bias_hh if cell.bias else None

    @staticmethod
    def _gates(input_share: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, fresh: bool = False):
        """``input_share + W_hh h`` (broadcasting leading dims), a fresh tensor the caller may overwrite.

        ``fresh``: ``input_share`` is a contiguous intermediate nothing else uses, accumulated into in place
        (unless autocast made it another dtype than the weights: in-place ops are not autocast).
        """
        if input_share.shape[:-1] == h.shape[:-1]:
            share, h = input_share.reshape(-1, input_share.shape[-1]), h.reshape(-1, h.shape[-1])
            in_place = fresh and share.dtype == weight_hh.dtype
            gates = share.addmm_(h, weight_hh.t()) if in_place else torch.addmm(share, h, weight_hh.t())
            return gates.view(input_share.shape)
        return add_into(F.linear(h, weight_hh), input_share)

    def _gates_to_state(self, gates, c):
        if torch.is_grad_enabled() or gates.numel() < self.inference_min_rows * gates.shape[-1]:
            return _lstm_gates_to_state(gates, c)
        return _lstm_gates_to_state_inference(gates, c)

    def stepper(self, x_features: torch.Tensor):
        """``step(t, z_feature_t, state)`` = ``forward(cat([x_features[:, t], z_feature_t]), state)``.

        ``x_features: (B, T, F_x)``; ``z_feature_t: (..., B, F_z)`` or ``None`` (a model without
        latents). ``W_ih^x x_features + b_ih + b_hh`` runs once, as one ``(B, T)`` matmul; each step
        adds ``W_ih^z phi_z(z_t) + W_hh h_{t-1}``. Weight slices are taken once per call.
        """
        cell = self.cell
        if not self.decomposed:
            steps = x_features.unbind(1)
            return lambda t, z_feature, state: self(broadcast_cat([steps[t], z_feature]), state)
        x_dim = x_features.shape[-1]
        x_share = F.linear(x_features, cell.weight_ih[:, :x_dim], self._bias()).unbind(1)
        weight_z_t, weight_hh = cell.weight_ih[:, x_dim:].t(), cell.weight_hh

        def step(t, z_feature, state):
            h, c = state
            share = x_share[t]  # a view of x_share: never overwritten
            if z_feature is not None:
                share = torch.addmm(share, z_feature, weight_z_t) if z_feature.dim() == 2 else \
                    torch.matmul(z_feature, weight_z_t).add_(share)
            return self._gates_to_state(self._gates(share, h, weight_hh, fresh=z_feature is not None), c)

        return step


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


# ---------------------------------------------------------------------------- the LSTM's fast route


def _rows(*tensors: torch.Tensor) -> int:
    """The most rows (product of leading dims) among the tensors: what they broadcast to, when
    one of them carries the full leading shape (as the recurrence input does)."""
    return max(t.numel() // max(1, t.shape[-1]) for t in tensors)


def _lstm_gates_to_state(gates: torch.Tensor, c: torch.Tensor):
    """The LSTM cell's pointwise part: gates ``(..., 4H)`` (order i, f, g, o) and ``c_{t-1}`` -> ``(h_t, c_t)``.

    ``c_t = sigma(f) c_{t-1} + sigma(i) tanh(g)``, ``h_t = sigma(o) tanh(c_t)``.
    """
    i, f, g, o = gates.chunk(4, -1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def _lstm_gates_to_state_inference(gates: torch.Tensor, c: torch.Tensor):
    """``_lstm_gates_to_state`` without autograd, overwriting ``gates``; ~2x faster on a CPU.

    One ``sigmoid`` over all four (contiguous) gates and ``tanh(v) = 2 sigma(2 v) - 1``: torch's
    CPU ``tanh`` costs ~7x a ``sigmoid`` per element (and more on a strided gate slice). Equal to
    the textbook cell to float rounding (~1e-7 absolute in float32).
    """
    hidden = c.shape[-1]
    gates[..., 2 * hidden:3 * hidden].mul_(2)
    i, f, g, o = gates.sigmoid_().chunk(4, -1)
    c_new = torch.addcmul(f * c, i, g.mul_(2).sub_(1))
    return c_new.mul(2).sigmoid_().mul_(2).sub_(1).mul_(o), c_new
