"""Importance-sampled marginal log-likelihood, per sequence.

For each sequence ``x`` and particles ``z^k ~ q(z | x)``, ``k = 1..K``::

    log p(x) ~= log (1/K) sum_k p(x, z^k) / q(z^k | x)        (the "≈" column)
    ELBO     ~= (1/K) sum_k log p(x, z^k) / q(z^k | x)        (the ">=" column)

Works for any model/guide pair whose sites live in a ``pyro.plate`` over sequences at ``dim=-1``
(our site names ``z_{t}``/``x_{t}``, or any others): particles are vectorized in a plate at
``dim=-2`` and processed in chunks of at most ``chunk_size`` particles, so memory stays bounded.
Log-weights are accumulated in float64 and combined with ``logsumexp``, so they never overflow.
(Pyro's ``vectorized_importance_weights`` sums over the batch and cannot give per-sequence values.)

Chunking does not change the result: for guides whose latent sites are (masked, independent)
Normals, each particle draws its noise from its own generator, seeded from the global RNG, so
the same seed gives the same estimate whatever ``chunk_size`` is (up to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.poutine as poutine
import torch
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from ..components.heads import unwrap_normal
from .engine import OutOfScope, expanded, sequence_log_weights, supported_model
from .memory import check_memory, importance_bytes


@dataclass
class ImportanceEstimate:
    """Per-sequence results of importance sampling; every field is a ``(batch,)`` tensor
    (float64) except ``num_particles``.

    ``log_likelihood`` and ``elbo`` are per sequence; ``*_se`` their Monte-Carlo standard
    errors; ``ess`` the effective sample size ``(sum w)^2 / sum w^2``; ``num_steps`` the number of
    real (unmasked) steps of each sequence, for per-step figures.
    """

    log_likelihood: torch.Tensor
    log_likelihood_se: torch.Tensor
    elbo: torch.Tensor
    elbo_se: torch.Tensor
    ess: torch.Tensor
    num_steps: torch.Tensor
    num_particles: int

    @property
    def log_likelihood_per_step(self) -> torch.Tensor:
        return self.log_likelihood / self.num_steps

    @property
    def elbo_per_step(self) -> torch.Tensor:
        return self.elbo / self.num_steps


class PerParticleNoise:
    """Each particle's Gaussian noise from that particle's own generator (one object per chunk).

    ``normal(fn, particle_dim)`` draws a value of the (masked, independent) Normal ``fn`` of shape
    ``(k, ..., B, Z)`` (the particle dim at ``particle_dim``, negative, counted without the event
    dims) as ``loc + scale * eps`` where row ``i`` of ``eps`` comes from ``generators[i]``; ``None``
    for any other distribution. Each generator draws a block of rows at once, for this site and the
    next ones of the same shape (a guide's ``z_t`` all share one); the block's size depends on the
    row's shape only, never on ``k``, so a particle's noise is the same whatever chunk it runs in.
    """

    def __init__(self, generators, block_numel: int = 1 << 14):  # floats per particle and block (64 KiB)
        self.generators = generators
        self.block_numel = int(block_numel)
        self._blocks = {}  # (row shape, dtype, device) -> [(k, n, *row) noise, rows used]

    def _noise(self, row_shape, like):
        key = (row_shape, like.dtype, like.device)
        block = self._blocks.get(key)
        if block is None or block[1] == block[0].shape[1]:
            rows = max(1, self.block_numel // max(1, row_shape.numel()))
            noise = torch.stack([torch.randn((rows,) + row_shape, generator=g, dtype=like.dtype, device=like.device)
                                 for g in self.generators])
            block = self._blocks[key] = [noise, 0]
        eps = block[0][:, block[1]]
        block[1] += 1
        return eps

    def normal(self, fn, particle_dim: int):
        params = unwrap_normal(fn)
        if params is None:
            return None
        loc, scale, shape = params
        pdim = len(shape) + particle_dim - len(fn.event_shape)
        if pdim < 0 or shape[pdim] != len(self.generators):
            return None
        eps = self._noise(shape[:pdim] + shape[pdim + 1:], loc).movedim(0, pdim)
        return loc + scale * eps

    def draw(self, fn, leading):
        """For :func:`~pyro_vrnn.infer.sequence_log_weights`: ``fn`` expanded to ``leading = (k, B)``."""
        fn = expanded(fn, leading)
        value = self.normal(fn, -2)
        return value if value is not None else fn.sample()


class _PerParticleNoiseMessenger(Messenger):
    """Draws the latent sites of a Pyro program from a :class:`PerParticleNoise` (particle plate at ``particle_dim``)."""

    def __init__(self, noise: PerParticleNoise, particle_dim: int):
        super().__init__()
        self.noise, self.particle_dim = noise, particle_dim

    def _pyro_sample(self, msg):
        if msg["is_observed"] or msg["value"] is not None:
            return
        value = self.noise.normal(msg["fn"], self.particle_dim)
        if value is not None:
            msg["value"] = value


def _site_log_probs(trace, batch_size: int, num_particles: int, sample_only: bool, device) -> torch.Tensor:
    """Sum of masked, scaled log-densities of the trace's sites, per (particle, sequence)."""
    total = torch.zeros(num_particles, batch_size, dtype=torch.float64, device=device)
    trace.compute_log_prob()
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site) or (sample_only and site["is_observed"]):
            continue
        lp = site["log_prob"]
        if lp.dim() > 2 or (lp.dim() >= 1 and lp.shape[-1] not in (1, batch_size)):
            raise ValueError(f"site {name!r} has log_prob shape {tuple(lp.shape)}; per-sequence weights need "
                             f"sites in a plate over {batch_size} sequences at dim=-1 and no other plates")
        total = total + lp.double()
    return total


def importance_log_weights(model, guide, x, mask=None, num_particles: int = 100, chunk_size: int | None = None,
                           max_memory=None, **kwargs):
    """Log importance weights ``log p(x, z^k) - log q(z^k | x)`` as a ``(K, batch)`` float64 tensor.

    Particles run in chunks of at most ``chunk_size`` (default: all at once). If the guide samples
    nothing (a model without latents) every weight equals ``log p(x)`` and one particle is run.
    For a :class:`~pyro_vrnn.models.SequenceModel`'s own model and guide the weights come from
    :func:`~pyro_vrnn.infer.sequence_log_weights` (one pass of the recurrence, the same noise);
    any other pair (and, as for :class:`~pyro_vrnn.infer.SequenceELBO`, a guide without ``rsample``)
    runs as traced Pyro programs. Returns ``(log_weights, has_latents)``.

    ``max_memory``: bytes the work may hold (default: the memory available now); work that needs
    more (:func:`~pyro_vrnn.infer.memory.importance_bytes`: the ``K x B`` weights, and for a
    SequenceModel a chunk's traces) is a ``ValueError`` naming ``num_particles``/``chunk_size``
    before anything runs.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a (batch, time, x_dim) tensor, got {type(x).__name__}")
    if num_particles < 1:
        raise ValueError(f"num_particles must be >= 1, got {num_particles}")
    chunk_given = chunk_size is not None
    chunk_size = num_particles if chunk_size is None else int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.device == x.device \
            and mask.shape == x.shape[:2]:  # select, then score: padding (NaN included) reaches no guide of any kind
        x = torch.where(mask.unsqueeze(-1), x, x.new_zeros(()))  # (a bad mask is refused by the checks below)
    base_seed = int(torch.randint(0, 2**62, ()).item())
    engine = supported_model(model, guide, (x, mask), kwargs)
    _check_importance_memory(engine, x, num_particles, chunk_size, chunk_given, max_memory)
    if engine is not None:
        try:
            return _engine_log_weights(engine, x, mask, num_particles, chunk_size, base_seed, kwargs)
        except OutOfScope:  # as SequenceELBO (no rsample, other x-features): the traced programs, same seeds
            pass
    return _traced_log_weights(model, guide, x, mask, num_particles, chunk_size, base_seed, kwargs)


def _check_importance_memory(engine, x, num_particles, chunk_size, chunk_given, max_memory):
    """Refuse, before anything runs, importance sampling that cannot fit in ``max_memory`` bytes."""
    batch_size, steps = x.shape[0], (x.shape[1] if x.dim() > 1 else 1)
    if engine is not None and not engine.has_latents:
        num_particles = chunk_size = 1
    what = f"importance sampling of {batch_size} sequence(s) x {steps} steps"
    needed = (importance_bytes(engine, batch_size, steps, num_particles, chunk_size) if engine is not None
              else 16 * num_particles * batch_size)
    if chunk_given and engine is not None and importance_bytes(engine, batch_size, steps, num_particles, 1) < needed / 2:
        culprit = f"chunk_size={chunk_size} (--chunk-size)"  # the chunk's traces, not the weights, are too large
    else:
        culprit = f"num_particles={num_particles} (--particles)"
    check_memory(needed, what, culprit, max_memory=max_memory, device=x.device,
                 knobs=", the particles run together (chunk_size, --chunk-size) or the sequences (--batch-size)")


def _engine_log_weights(engine, x, mask, num_particles, chunk_size, base_seed, kwargs):
    """:func:`importance_log_weights` from :func:`~pyro_vrnn.infer.sequence_log_weights` (one pass)."""
    x, mask = engine.check_inputs(x, mask)
    engine.register_parameters()  # as the programs would: parameters in Pyro's store
    if not engine.has_latents:
        num_particles = chunk_size = 1
    chunks = []
    with torch.no_grad():
        for start in range(0, num_particles, chunk_size):
            k = min(chunk_size, num_particles - start)
            generators = [torch.Generator(device=x.device).manual_seed(base_seed + start + i) for i in range(k)]
            chunks.append(sequence_log_weights(engine, x, mask, (k,), draw=PerParticleNoise(generators).draw,
                                               dtype=torch.float64, **kwargs))
    return torch.cat(chunks, dim=0), engine.has_latents


def _traced_log_weights(model, guide, x, mask, num_particles, chunk_size, base_seed, kwargs):
    """:func:`importance_log_weights` from traces of the Pyro programs (any model/guide pair)."""
    batch_size, device = x.shape[0], x.device
    chunks = []
    with torch.no_grad():
        start = 0
        while start < num_particles:
            k = min(chunk_size, num_particles - start)
            generators = [torch.Generator(device=device).manual_seed(base_seed + start + i) for i in range(k)]
            noise = PerParticleNoise(generators)
            particles = pyro.plate("importance_particles", k, dim=-2)
            with _PerParticleNoiseMessenger(noise, particle_dim=-2), particles:
                guide_trace = poutine.trace(guide).get_trace(x, mask, **kwargs)
            with particles:
                model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x, mask, **kwargs)
            log_p = _site_log_probs(model_trace, batch_size, k, sample_only=False, device=device)
            log_q = _site_log_probs(guide_trace, batch_size, k, sample_only=True, device=device)
            chunks.append(log_p - log_q)
            has_latents = any(s["type"] == "sample" and not s["is_observed"] and not site_is_subsample(s)
                              for s in guide_trace.nodes.values())
            if not has_latents:
                return chunks[0][:1], False
            start += k
    return torch.cat(chunks, dim=0), True


def importance_estimate(model, guide, x, mask=None, num_particles: int = 100, chunk_size: int | None = None,
                        max_memory=None, **kwargs) -> ImportanceEstimate:
    """Per-sequence log-likelihood, ELBO, their standard errors and the effective sample size
    (``max_memory``: see :func:`importance_log_weights`)."""
    log_w, has_latents = importance_log_weights(model, guide, x, mask, num_particles, chunk_size, max_memory,
                                                **kwargs)
    k = log_w.shape[0]
    log_mean_w = torch.logsumexp(log_w, 0) - math.log(k)
    # delta method: se(log mean w) = sd(w) / (sqrt(K) mean(w)), computed on w / max(w)
    w = (log_w - log_w.max(0).values).exp()
    ll_se = w.std(0, unbiased=False) / (w.mean(0) * math.sqrt(k)) if k > 1 else torch.zeros_like(log_mean_w)
    elbo_se = log_w.std(0, unbiased=False) / math.sqrt(k) if k > 1 else torch.zeros_like(log_mean_w)
    ess = (2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)).exp()
    steps = mask.sum(1) if mask is not None else torch.full((x.shape[0],), x.shape[1], device=x.device)
    return ImportanceEstimate(log_likelihood=log_mean_w, log_likelihood_se=ll_se, elbo=log_w.mean(0),
                              elbo_se=elbo_se, ess=ess,
                              num_steps=steps.double(), num_particles=num_particles if has_latents else 1)


def importance_log_likelihood(model, guide, x, mask=None, num_particles: int = 100, chunk_size: int | None = None,
                              **kwargs) -> torch.Tensor:
    """Per-sequence ``log (1/K) sum_k p(x, z^k) / q(z^k | x)``, a ``(batch,)`` float64 tensor.

    ``model`` and ``guide`` are Pyro programs called as ``fn(x, mask, **kwargs)`` (e.g.
    ``vrnn.model``, ``vrnn.guide``, or any guide sampling the same sites). For a model without
    latents it is the exact log-likelihood.
    """
    return importance_estimate(model, guide, x, mask, num_particles, chunk_size, **kwargs).log_likelihood
