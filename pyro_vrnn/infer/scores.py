"""Per-step scores: how surprising each observation is given the past, ``log p(x_t | x_{<t})``.

A filtering model gives at every step the one-step predictive density of the new observation. The
particle filter of :mod:`pyro_vrnn.infer.smc` already computes it: with normalized weights
``W_{t-1}^k`` and incremental weights ``w_t^k``,

    log p_hat(x_t | x_{<t}) = log sum_k W_{t-1}^k w_t^k

(the log of the step's mean incremental weight). :func:`score` reports these numbers (no second
filter) with the step's effective sample size. They are **estimates** (SMC, ``K`` particles): their
product over steps is unbiased for ``p(x)``; each log is consistent as ``K`` grows, biased low by
``O(1/K)``. For a model without latents (the RNN) they are exact: ``log p(x_t | h_{t-1})``.
Low scores (large surprise) are what an anomaly detector thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .smc import smc_estimate


@dataclass
class StepScores:
    """What :func:`score` returns, per sequence ``b`` and step ``t`` (``(B, T)`` tensors, float64).

    ``log_prob``: the estimate of ``log p(x_t | x_{<t})``, the mean over the ``R`` replicate filters
    of ``log p_hat_r(x_t | x_{<t})`` (``R = 1``: the one filter's); NaN on padded steps. Its sum over a
    sequence's real steps is the mean over replicates of ``log p_hat_r(x)`` (``R = 1``:
    :func:`~pyro_vrnn.infer.smc_estimate`'s ``log_likelihood`` with the same particles and seed).
    ``log_prob_se``: its Monte-Carlo standard error, ``sd_r / sqrt(R)`` over the replicates (NaN when
    ``R = 1``, 0 when exact). ``ess``: the effective sample size after weighting step ``t`` (mean over
    replicates; NaN on padded steps). ``mask``: the real steps. ``label``: what the numbers are.
    """

    log_prob: torch.Tensor
    log_prob_se: torch.Tensor
    ess: torch.Tensor
    mask: torch.Tensor
    num_particles: int
    num_replicates: int
    exact: bool
    label: str


def score(model, x: torch.Tensor, mask: torch.Tensor | None = None, num_particles: int = 100, *,
          num_replicates: int = 1, seed=None, proposal: str = "guide", resampling: str = "systematic",
          ess_threshold: float = 0.5, chunk_size: int | None = None) -> StepScores:
    """Per-step scores ``log p(x_t | x_{<t})`` of ``x: (B, T, X)`` (``mask: (B, T)`` bool) under ``model``.

    The SMC estimate of :func:`~pyro_vrnn.infer.smc_estimate` (its arguments, the same seeds: sequence
    ``b`` uses ``seed + b``), step by step: see the module docstring and :class:`StepScores`.
    Exact (one particle) for a model without latents.
    """
    est = smc_estimate(model, x, mask, num_particles, proposal, resampling, ess_threshold,
                       num_replicates=num_replicates, seed=seed, chunk_size=chunk_size)
    steps = est.replicate_step_log_likelihoods                                # (R, B, T)
    real = torch.ones(steps.shape[1:], dtype=torch.bool, device=steps.device) if mask is None else mask.bool()
    log_prob = steps.mean(0).masked_fill(~real, math.nan)
    if est.exact:
        se = torch.zeros_like(log_prob)
    elif est.num_replicates > 1:
        se = steps.std(0) / math.sqrt(est.num_replicates)
    else:
        se = torch.full_like(log_prob, math.nan)
    label = ("exact log p(x_t | x_{<t}) (no latents)" if est.exact else
             "estimate of log p(x_t | x_{<t}), the log of the step's mean incremental weight "
             + est.label[len("estimate "):])
    return StepScores(log_prob=log_prob, log_prob_se=se.masked_fill(~real, math.nan), ess=est.ess, mask=real,
                      num_particles=est.num_particles, num_replicates=est.num_replicates, exact=est.exact,
                      label=label)
