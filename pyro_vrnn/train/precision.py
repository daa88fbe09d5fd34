"""Mixed precision: the networks in bfloat16, the densities in float32, the sums in float64.

``precision="bf16"`` runs the forward passes under ``torch.autocast(device_type, torch.bfloat16)``:
matrix products and the recurrences' gate arithmetic run in bfloat16 (tensor cores on a GPU), while
every sample and log-density is computed in float32 on every device (each component casts its
distribution's parameters to float32, :func:`~pyro_vrnn.components.nn.full_precision`, so ``z``,
``log q``, ``log p(z)`` and ``log p(x | z)`` are float32; tested on the CPU) and the importance sampler adds the
per-site log-densities of each sequence in float64 before its ``logsumexp``
(:mod:`pyro_vrnn.importance`). The parameters, gradients and optimizer state stay float32.

- training: :class:`AutocastELBO` wraps an ELBO so that its forward pass runs under autocast and
  the backward pass outside it (PyTorch's rule for autocast); an ELBO without a
  ``differentiable_loss`` (``RenyiELBO``) runs ``loss_and_grads`` whole under autocast;
- evaluation: ``with autocast("bf16", device): evaluate_run(...)``.

It is meant for CUDA devices (tensor cores); a CPU runs it too, usually slower than float32.
"""

from __future__ import annotations

import contextlib

import torch
from pyro.infer import ELBO
from pyro.infer.util import torch_item

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """A context running its block at ``precision`` on ``device`` (``"fp32"``: unchanged)."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


class AutocastELBO(ELBO):
    """``elbo`` with its forward passes under bfloat16 autocast on ``device_type`` (``"cuda"``, ``"cpu"``).

    ``loss_and_grads`` returns the same quantity as the wrapped ELBO's (a float, the negative
    ELBO), computed by ``differentiable_loss`` under autocast, then differentiated outside it."""

    def __init__(self, elbo: ELBO, device_type: str):
        super().__init__(num_particles=elbo.num_particles, max_plate_nesting=elbo.max_plate_nesting,
                         vectorize_particles=elbo.vectorize_particles)
        self.elbo = elbo
        self.device_type = device_type

    def _autocast(self):
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def _get_trace(self, model, guide, args, kwargs):
        return self.elbo._get_trace(model, guide, args, kwargs)

    def loss(self, model, guide, *args, **kwargs) -> float:
        with self._autocast():
            return self.elbo.loss(model, guide, *args, **kwargs)

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        with self._autocast():
            return self.elbo.differentiable_loss(model, guide, *args, **kwargs)

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        if not hasattr(self.elbo, "differentiable_loss"):
            with self._autocast():
                return self.elbo.loss_and_grads(model, guide, *args, **kwargs)
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward()
        return torch_item(loss)
