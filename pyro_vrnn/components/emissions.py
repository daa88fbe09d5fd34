"""Emissions ``p(x_t | z_t, h_{t-1})``.

An emission sees the decoder input ``u = [phi_z(z_t), h_{t-1}]`` (just ``h_{t-1}`` for a model
without latents) and returns a distribution over ``x_t``.

Interface: ``emission(u)`` with ``u`` of shape ``(..., in_dim)`` returns a Pyro distribution with
batch shape ``u.shape[:-1]`` and event shape ``(X,)``; ``emission.x_dim`` gives ``X``.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from .distributions import AutoregressiveBernoulli, BivariateGaussianMixturePen
from .heads import GaussianHead
from .nn import ACTIVATIONS, MLP, full_precision, positive_scale


class GaussianEmission(GaussianHead):
    """``p(x_t | .) = N(mu(u), diag sigma(u)^2)``, ``sigma = softplus + floor``
    (a :class:`~pyro_vrnn.heads.GaussianHead` over ``u``).

    ``u: (..., in_dim) -> Normal`` with event shape ``(X,)``.
    """

    def __init__(self, in_dim: int, x_dim: int, hidden_dims=(64,), activation="relu", scale_floor=1e-3):
        super().__init__(in_dim, x_dim, hidden_dims, activation, scale_floor=scale_floor)
        self.x_dim = x_dim


class GMMEmission(nn.Module):
    """``p(x_t | .) = sum_k pi_k(u) N(mu_k(u), diag sigma_k(u)^2)`` with ``K`` diagonal components.

    The log-density is a ``logsumexp`` over components (``MixtureSameFamily``).
    ``u: (..., in_dim) -> MixtureSameFamily`` with event shape ``(X,)``.
    """

    def __init__(self, in_dim: int, x_dim: int, num_components: int = 20, hidden_dims=(64,), activation="relu",
                 scale_floor=1e-3):
        super().__init__()
        if num_components < 1:
            raise ValueError(f"num_components must be >= 1, got {num_components}")
        self.x_dim, self.num_components, self.scale_floor = x_dim, num_components, scale_floor
        self.net = MLP(in_dim, hidden_dims, activation)
        self.logits = nn.Linear(self.net.out_dim, num_components)
        self.loc = nn.Linear(self.net.out_dim, num_components * x_dim)
        self.raw_scale = nn.Linear(self.net.out_dim, num_components * x_dim)

    def forward(self, u: torch.Tensor):
        hidden = self.net(u)
        shape = hidden.shape[:-1] + (self.num_components, self.x_dim)
        loc = full_precision(self.loc(hidden)).reshape(shape)
        scale = positive_scale(full_precision(self.raw_scale(hidden)), self.scale_floor).reshape(shape)
        mixing = dist.Categorical(logits=full_precision(self.logits(hidden)))
        return dist.MixtureSameFamily(mixing, dist.Normal(loc, scale).to_event(1))


class BernoulliEmission(nn.Module):
    """``p(x_t | .) = prod_d Bernoulli(x_{t,d} | sigmoid(l_d(u)))``, for binary piano rolls.

    ``u: (..., in_dim) -> Bernoulli(logits)`` with event shape ``(X,)``.
    """

    def __init__(self, in_dim: int, x_dim: int, hidden_dims=(64,), activation="relu"):
        super().__init__()
        self.x_dim = x_dim
        self.net = MLP(in_dim, hidden_dims, activation)
        self.logits = nn.Linear(self.net.out_dim, x_dim)

    def forward(self, u: torch.Tensor):
        return dist.Bernoulli(logits=full_precision(self.logits(self.net(u)))).to_event(1)


class AutoregressiveBernoulliEmission(nn.Module):
    """Binary ``x_t`` with the keys of one step modelled jointly, autoregressively (as RNN-NADE does,
    Boulanger-Lewandowski et al. 2012), its biases set by ``u``:

    ``p(x_t | .) = prod_d Bernoulli(x_{t,d} | sigmoid(l_d))``, ``l = b(u) + V' act(c(u) + W' x_t) + A' x_t``

    with ``W', V'`` MADE-masked and ``A'`` strictly lower triangular (so ``l_d`` sees ``x_{t,<d}`` only),
    shared across steps; ``b``, ``c`` linear in an MLP of ``u``. ``H`` (``made_dim``) defaults to the MLP's
    last width. With ``W = A = 0`` it is the Bernoulli emission. ``u: (..., in_dim) ->``
    :class:`~pyro_vrnn.components.distributions.AutoregressiveBernoulli` with event shape ``(X,)``.
    """

    def __init__(self, in_dim: int, x_dim: int, hidden_dims=(64,), activation="relu", made_dim: int | None = None):
        super().__init__()
        self.x_dim = x_dim
        self.net = MLP(in_dim, hidden_dims, activation)
        self.made_dim = int(made_dim or (hidden_dims[-1] if len(hidden_dims) else 64))
        self.activation = ACTIVATIONS[activation]()
        self.bias = nn.Linear(self.net.out_dim, x_dim)
        self.hidden_bias = nn.Linear(self.net.out_dim, self.made_dim)
        self.in_weight = nn.Parameter(torch.empty(self.made_dim, x_dim).uniform_(-1, 1) / x_dim ** 0.5)
        self.out_weight = nn.Parameter(torch.empty(x_dim, self.made_dim).uniform_(-1, 1) / self.made_dim ** 0.5)
        self.direct_weight = nn.Parameter(torch.zeros(x_dim, x_dim))

    def forward(self, u: torch.Tensor):
        hidden = self.net(u)
        return AutoregressiveBernoulli(full_precision(self.bias(hidden)), full_precision(self.hidden_bias(hidden)),
                                       self.in_weight, self.out_weight, self.direct_weight, self.activation)


class HandwritingEmission(nn.Module):
    """Graves' handwriting density on ``x_t = (dx, dy, pen_lifted)``.

    A mixture of ``M`` bivariate Gaussians with correlation ``rho = tanh(.)`` on the offsets, times
    a Bernoulli pen bit. ``u: (..., in_dim) -> BivariateGaussianMixturePen`` with event shape ``(3,)``.
    """

    def __init__(self, in_dim: int, x_dim: int = 3, num_components: int = 20, hidden_dims=(64,),
                 activation="relu", scale_floor=1e-3):
        super().__init__()
        if x_dim != 3:
            raise ValueError(f"the handwriting emission models (dx, dy, pen_lifted): x_dim must be 3, got {x_dim}")
        self.x_dim, self.num_components, self.scale_floor = 3, num_components, scale_floor
        self.net = MLP(in_dim, hidden_dims, activation)
        self.head = nn.Linear(self.net.out_dim, 6 * num_components + 1)

    def forward(self, u: torch.Tensor):
        m = self.num_components
        out = full_precision(self.head(self.net(u)))
        logits, loc, raw_scale, raw_rho, pen_logits = out.split([m, 2 * m, 2 * m, m, 1], dim=-1)
        shape = out.shape[:-1] + (m, 2)
        rho = torch.tanh(raw_rho) * (1 - 1e-4)
        return BivariateGaussianMixturePen(
            logits, loc.reshape(shape), positive_scale(raw_scale, self.scale_floor).reshape(shape), rho,
            pen_logits.squeeze(-1),
        )


class LinearGaussianEmission(nn.Module):
    """``p(x_t | .) = N(C u + d, diag r^2)`` with learnable ``r = softplus(.) + floor``.

    With ``u = [z_t, h_{t-1}]`` and zero weights on ``h`` this is the observation model of a
    linear-Gaussian state-space model. ``u: (..., in_dim) -> Normal`` with event shape ``(X,)``.
    """

    def __init__(self, in_dim: int, x_dim: int, scale_floor: float = 1e-4):
        super().__init__()
        self.x_dim, self.scale_floor = x_dim, scale_floor
        self.linear = nn.Linear(in_dim, x_dim)
        self.raw_scale = nn.Parameter(torch.zeros(x_dim))

    @property
    def scale(self) -> torch.Tensor:
        return positive_scale(self.raw_scale, self.scale_floor)

    def forward(self, u: torch.Tensor):
        loc = full_precision(self.linear(u))
        return dist.Normal(loc, self.scale.expand(loc.shape)).to_event(1)

