"""Priors ``p(z_t | h_{t-1})`` over the per-step latent ``z_t``.

Interface: ``prior(h)`` with ``h`` of shape ``(..., H)`` returns a Pyro distribution with batch
shape ``h.shape[:-1]`` and event shape ``(Z,)``; ``prior.z_dim`` gives ``Z``.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from .heads import GaussianHead, StepIndependent
from .nn import full_precision, positive_scale


class StandardNormalPrior(nn.Module):
    """``p(z_t) = N(0, I)``, independent of the past (STORN).

    ``h: (..., H) -> Normal`` with batch shape ``(...)`` and event shape ``(Z,)``.
    """

    def __init__(self, z_dim: int):
        super().__init__()
        self.z_dim = z_dim

    def forward(self, h: torch.Tensor):
        loc = full_precision(h.new_zeros(h.shape[:-1] + (self.z_dim,)))
        return dist.Normal(loc, torch.ones_like(loc)).to_event(1)


class ConditionalGaussianPrior(GaussianHead):
    """``p(z_t | h_{t-1}) = N(mu_0(h), diag sigma_0(h)^2)`` (VRNN).

    ``mu_0`` and ``sigma_0`` are linear heads on a shared MLP of ``h``; ``sigma_0 = softplus + floor``
    (a :class:`~pyro_vrnn.heads.GaussianHead` over ``h``).
    ``h: (..., H) -> Normal`` with batch shape ``(...)`` and event shape ``(Z,)``.
    """

    def __init__(self, h_dim: int, z_dim: int, hidden_dims=(64,), activation="relu", scale_floor=1e-3):
        super().__init__(h_dim, z_dim, hidden_dims, activation, scale_floor=scale_floor)
        self.z_dim = z_dim


class LinearGaussianPrior(nn.Module):
    """``p(z_t | h_{t-1}) = N(A h + b, diag s^2)`` with a learnable ``s = softplus(.) + floor``.

    With an identity recurrence (``h_{t-1} = z_{t-1}``) this is the transition of a
    linear-Gaussian state-space model. ``h: (..., H) -> Normal`` with event shape ``(Z,)``.
    """

    def __init__(self, h_dim: int, z_dim: int, scale_floor: float = 1e-4):
        super().__init__()
        self.z_dim = z_dim
        self.scale_floor = scale_floor
        self.linear = nn.Linear(h_dim, z_dim)
        self.raw_scale = nn.Parameter(torch.zeros(z_dim))

    @property
    def scale(self) -> torch.Tensor:
        return positive_scale(self.raw_scale, self.scale_floor)

    def forward(self, h: torch.Tensor):
        loc = full_precision(self.linear(h))
        return dist.Normal(loc, self.scale.expand(loc.shape)).to_event(1)


class GatedTransitionPrior(nn.Module):
    """The Deep Markov Model's gated transition ``p(z_t | z_{t-1}) = N(mu(z_{t-1}), diag sigma(z_{t-1})^2)``
    (Krishnan et al. 2017; Pyro's ``examples/dmm.py``)::

        g = sigmoid(W_2 relu(W_1 z)),   m = W_4 relu(W_3 z)
        mu = (1 - g) * (A z + b) + g * m,   sigma = softplus(W_s relu(m)) + floor

    ``A`` starts as the identity. ``h = z_{t-1}: (..., Z) -> Normal`` with event shape ``(Z,)``.
    """

    def __init__(self, z_dim: int, transition_dim: int = 200, scale_floor: float = 1e-3):
        super().__init__()
        self.z_dim, self.scale_floor = z_dim, scale_floor
        self.gate = nn.Sequential(nn.Linear(z_dim, transition_dim), nn.ReLU(), nn.Linear(transition_dim, z_dim))
        self.proposed_mean = nn.Sequential(nn.Linear(z_dim, transition_dim), nn.ReLU(),
                                           nn.Linear(transition_dim, z_dim))
        self.loc = nn.Linear(z_dim, z_dim)
        self.raw_scale = nn.Linear(z_dim, z_dim)
        with torch.no_grad():
            self.loc.weight.copy_(torch.eye(z_dim))
            self.loc.bias.zero_()

    def forward(self, h: torch.Tensor):
        gate = torch.sigmoid(self.gate(h))
        proposed = self.proposed_mean(h)
        loc = full_precision((1 - gate) * self.loc(h) + gate * proposed)
        scale = positive_scale(full_precision(self.raw_scale(torch.relu(proposed))), self.scale_floor)
        return StepIndependent(dist.Normal(loc, scale), 1)
