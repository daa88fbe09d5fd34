"""Small neural building blocks shared by every component.

Every block here maps ``(..., in_dim) -> (..., out_dim)`` and accepts any number of leading
batch dimensions, so the same networks serve a plain batch ``(B, D)`` and a batch of vectorized
particles ``(K, B, D)``.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    # each follows a Linear whose output nothing else holds, so ReLU and ELU overwrite it in place
    # (one allocation less per layer; autograd allows it, neither Linear's backward needs its output)
    "relu": functools.partial(nn.ReLU, inplace=True),
    "tanh": nn.Tanh,
    "elu": functools.partial(nn.ELU, inplace=True),
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
}


_REDUCED = (torch.bfloat16, torch.float16)


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when autocast left it in a reduced precision (bfloat16, float16), else ``t``.

    Every component casts a distribution's parameters through it, so that under ``--precision bf16``
    the networks run in bfloat16 while samples and log-densities are float32 on every device.
    """
    return t.float() if t.dtype in _REDUCED else t


def positive_scale(raw: torch.Tensor, floor: float) -> torch.Tensor:
    """``softplus(raw) + floor``: a standard deviation that can neither vanish nor go negative."""
    return F.softplus(raw) + floor


def broadcast_leading(*shapes: torch.Size) -> torch.Size:
    """``torch.broadcast_shapes`` in plain Python (that one costs ~100 us a call on a CPU, this ~3 us).

    Raises ``ValueError`` when the shapes do not broadcast.
    """
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1 and out[i] != 1 and size != out[i]:
                raise ValueError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
            if out[i] == 1:
                out[i] = size
    return torch.Size(out)


def add_into(fresh: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``fresh + other`` (broadcasting), written into ``fresh`` when it already has the result's shape.

    ``fresh`` must be an intermediate nothing else holds, e.g. a matmul's output (autograd allows
    the in-place add there: neither the matmul's backward nor the add's needs it). Saves one
    allocation per call on the recurrences' hot paths.
    """
    if fresh.shape == broadcast_leading(fresh.shape, other.shape):
        return fresh.add_(other)
    return fresh + other


def broadcast_cat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate along the last dim after broadcasting all leading (batch) dims.

    ``[(B, A), (K, B, C)] -> (K, B, A + C)``; zero-width tensors are allowed.
    """
    tensors = [t for t in tensors if t is not None]
    if len(tensors) == 1:
        return tensors[0]
    leading = [t.shape[:-1] for t in tensors]
    if all(shape == leading[0] for shape in leading[1:]):  # the per-step hot path: nothing to broadcast
        return torch.cat(tensors, dim=-1)
    batch_shape = broadcast_leading(*leading)
    return torch.cat([t.expand(batch_shape + t.shape[-1:]) for t in tensors], dim=-1)


class MLP(nn.Sequential):
    """A multilayer perceptron ``in_dim -> hidden_dims[0] -> ... -> hidden_dims[-1]``.

    Each layer is ``activation(Linear(.))``; the output is the last hidden layer, so
    ``out_dim == hidden_dims[-1]`` (or ``in_dim`` when ``hidden_dims`` is empty, an identity map).
    The paper's feature extractors are ``MLP(x_dim, [600] * 4)``.

    Shapes: ``(..., in_dim) -> (..., out_dim)``.
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], activation: str = "relu"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
        if in_dim < 0 or any(h <= 0 for h in hidden_dims):
            raise ValueError(f"MLP sizes must be positive, got in_dim={in_dim}, hidden_dims={list(hidden_dims)}")
        layers: list[nn.Module] = []
        dim = in_dim
        for width in hidden_dims:
            layers += [nn.Linear(dim, width), ACTIVATIONS[activation]()]
            dim = width
        super().__init__(*layers)
        self.in_dim = in_dim
        self.out_dim = dim


class Identity(nn.Module):
    """The identity feature map ``phi(v) = v``; ``(..., D) -> (..., D)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.in_dim = self.out_dim = dim

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v


class NoFeatures(nn.Module):
    """A feature map that discards its input: ``(..., D) -> (..., 0)``.

    Useful when a model's recurrence should not see ``x_t`` (e.g. a linear-Gaussian state-space
    model whose state is ``z_t`` alone).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.in_dim = dim
        self.out_dim = 0

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v.new_zeros(v.shape[:-1] + (0,))


def flatten_leading(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor):
    """Apply a 2-D-only op (e.g. ``nn.LSTMCell``) to inputs with any leading dims.

    All inputs are broadcast over their leading dims, flattened to ``(N, D_i)``, passed to
    ``fn`` and the (tensor or tuple of tensors) result is reshaped back.
    """
    leading = [t.shape[:-1] for t in inputs]
    if len(leading[0]) == 1 and all(shape == leading[0] for shape in leading[1:]):
        return fn(*inputs)  # already (N, D_i): the per-step hot path
    batch_shape = broadcast_leading(*leading)
    flat = [t.expand(batch_shape + t.shape[-1:]).reshape(-1, t.shape[-1]) for t in inputs]
    out = fn(*flat)
    if isinstance(out, tuple):
        return tuple(o.reshape(batch_shape + o.shape[-1:]) for o in out)
    return out.reshape(batch_shape + out.shape[-1:])
