"""A plain-PyTorch VRNN training loss, the reference our Pyro program is timed against.

It runs the very networks (and weights) of a :class:`pyro_vrnn.VRNN` with the default components
(conditional Gaussian prior, filtering guide, Gaussian emission, LSTM or GRU recurrence) and
computes the single-sample ``Trace_ELBO`` surrogate by hand::

    loss = -( sum_t log p(x_t | z_t, h_{t-1}) + log p(z_t | h_{t-1}) - log q(z_t | x_t, h_{t-1}) ),
    z_t = mu_q + sigma_q * eps_t   (reparameterized; eps_t ~ N(0, I) drawn in the guide's order)

summed over the batch. With the same torch seed it draws the same noise as the Pyro guide, so
loss and gradients equal ``Trace_ELBO().loss_and_grads(vrnn.model, vrnn.guide, x)`` to float
rounding (checked in ``tests/test_performance_paths.py``).

Two ways of writing it:

- ``loop="per_step"`` (default): the textbook VRNN loop, every network called once per step,
  only ``phi_x(x)`` hoisted out of the loop (it does not depend on the recurrence);
- ``loop="hoisted"``: a hand-tuned reference that also evaluates the prior and the emission for
  all steps in one batched call after the loop (they depend on ``h_{t-1}`` and ``z_t`` only).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from pyro_vrnn.components.emissions import GaussianEmission
from pyro_vrnn.components.guides import FilteringGuide
from pyro_vrnn.components.priors import ConditionalGaussianPrior
from pyro_vrnn.components.transitions import GRUTransition, LSTMTransition

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def normal_log_prob(value, loc, scale):
    """``log N(value | loc, diag scale^2)`` summed over the last dim."""
    return (-0.5 * ((value - loc) / scale).square() - scale.log() - _HALF_LOG_2PI).sum(-1)


def _gaussian(head, hidden):
    return head.loc(hidden), F.softplus(head.raw_scale(hidden)) + head.scale_floor


class TorchVRNNLoss:
    """``loss(x, noise=None)``: the plain-PyTorch VRNN loss with the weights of ``vrnn``.

    ``x``: ``(B, T, X)``; ``noise``: optional ``(T, B, Z)`` fixed ``eps`` (else drawn per step).
    """

    def __init__(self, vrnn, loop: str = "per_step"):
        if not (isinstance(vrnn.prior, ConditionalGaussianPrior) and isinstance(vrnn.posterior, FilteringGuide)
                and isinstance(vrnn.emission, GaussianEmission)
                and isinstance(vrnn.transition, (LSTMTransition, GRUTransition))):
            raise ValueError("the reference covers the default VRNN: conditional prior, filtering guide, "
                             "Gaussian emission, LSTM or GRU")
        if loop not in ("per_step", "hoisted"):
            raise ValueError(f"loop must be 'per_step' or 'hoisted', got {loop!r}")
        self.m, self.loop = vrnn, loop
        self.lstm = isinstance(vrnn.transition, LSTMTransition)

    def __call__(self, x, noise=None):
        m = self.m
        batch, steps, _ = x.shape
        hidden_dim = m.transition.hidden_dim
        x_steps = x.unbind(1)
        xf_steps = m.phi_x(x).unbind(1)
        h = x.new_zeros(batch, hidden_dim)
        c = x.new_zeros(batch, hidden_dim)
        total = x.new_zeros(())
        hs, zs, zfs = [], [], []
        for t in range(steps):
            q_loc, q_scale = _gaussian(m.posterior.head, m.posterior.head.net(torch.cat([xf_steps[t], h], -1)))
            eps = noise[t] if noise is not None else torch.empty_like(q_loc).normal_()
            z = q_loc + q_scale * eps
            zf = m.phi_z(z)
            total = total - normal_log_prob(z, q_loc, q_scale).sum()
            if self.loop == "per_step":
                p_loc, p_scale = _gaussian(m.prior, m.prior.net(h))
                e_loc, e_scale = _gaussian(m.emission, m.emission.net(torch.cat([zf, h], -1)))
                total = total + normal_log_prob(z, p_loc, p_scale).sum() + normal_log_prob(x_steps[t], e_loc,
                                                                                            e_scale).sum()
            else:
                hs.append(h)
                zs.append(z)
                zfs.append(zf)
            if t + 1 < steps:
                u = torch.cat([xf_steps[t], zf], -1)
                if self.lstm:
                    h, c = m.transition.cell(u, (h, c))
                else:
                    h = m.transition.cell(u, h)
        if self.loop == "hoisted":
            h_all, z_all, zf_all = torch.stack(hs), torch.stack(zs), torch.stack(zfs)  # (T, B, .)
            p_loc, p_scale = _gaussian(m.prior, m.prior.net(h_all))
            e_loc, e_scale = _gaussian(m.emission, m.emission.net(torch.cat([zf_all, h_all], -1)))
            total = total + normal_log_prob(z_all, p_loc, p_scale).sum() + normal_log_prob(
                x.transpose(0, 1), e_loc, e_scale).sum()
        return -total


@torch.no_grad()
def torch_generate(vrnn, num_sequences: int, num_steps: int) -> torch.Tensor:
    """Plain-PyTorch ancestral sampling ``x ~ p(x)`` with the weights of ``vrnn`` (default components).

    Draws ``z_t`` then ``x_t`` at every step in the order ``vrnn.generate`` does, so the same torch
    seed gives the same samples.
    """
    TorchVRNNLoss(vrnn)  # checks the components
    m = vrnn
    ref = next(m.parameters())
    h = ref.new_zeros(num_sequences, m.transition.hidden_dim)
    c = torch.zeros_like(h)
    lstm = isinstance(m.transition, LSTMTransition)
    xs = []
    for t in range(num_steps):
        p_loc, p_scale = _gaussian(m.prior, m.prior.net(h))
        z = p_loc + p_scale * torch.empty_like(p_loc).normal_()
        zf = m.phi_z(z)
        e_loc, e_scale = _gaussian(m.emission, m.emission.net(torch.cat([zf, h], -1)))
        x = e_loc + e_scale * torch.empty_like(e_loc).normal_()
        xs.append(x)
        if t + 1 < num_steps:
            u = torch.cat([m.phi_x(x), zf], -1)
            if lstm:
                h, c = m.transition.cell(u, (h, c))
            else:
                h = m.transition.cell(u, h)
    return torch.stack(xs, dim=1)
