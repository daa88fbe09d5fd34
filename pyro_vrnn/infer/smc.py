"""Sequential Monte Carlo: a particle filter's estimate of ``p(x)`` for any :class:`~pyro_vrnn.models.SequenceModel`.

Per sequence, ``K`` particles. At step ``t`` each particle ``k`` proposes ``z_t^k ~ r(z_t | .)`` — the
guide component ``q(z_t | c_t, h_{t-1}^k)`` (``proposal="guide"``, with the context ``c`` from
:meth:`~pyro_vrnn.models.SequenceModel.encode`) or the prior ``p(z_t | h_{t-1}^k)`` (``"prior"``, the
bootstrap filter) — and is weighted by::

    log w_t^k = log p(z_t^k | h_{t-1}^k) + log p(x_t | z_t^k, h_{t-1}^k) - log r(z_t^k | .)
    log p_hat(x_t | x_{<t}) = logsumexp_k (log W_{t-1}^k + log w_t^k),   W_{t-1} normalized
    log p_hat(x) = sum_t log p_hat(x_t | x_{<t})

When the effective sample size ``ESS_t = (sum_k W_t^k)^2 / sum_k (W_t^k)^2`` falls below
``ess_threshold * K``, every particle takes the whole state of an ancestor drawn with probabilities
``W_t`` (:func:`resample_indices`, :func:`resample_state`) and the weights become uniform.
``p_hat(x)`` is unbiased (Doucet & Johansen 2009, "A tutorial on particle filtering and smoothing",
sec. 3.5 and 4); its log is a lower bound in expectation, tighter than importance sampling's with
the same ``K`` on long sequences, where whole-sequence weights degenerate.
``ess_threshold=0`` never resamples: it is then importance sampling with the sequential proposal.

**Where the model's equations come from.** The proposal is the model's one-step method
(``posterior_dist`` or ``prior_dist``); ``p(z_t | .)``, ``p(x_t | .)`` and the next state come from
running the model's own per-step Pyro program, ``model_step``, under ``poutine.trace`` with the
proposed ``z_t`` given to its latent site (as ``poutine.replay`` gives a guide's). So STORN, whose
``model_step`` differs (``z_t`` enters the recurrence before the emission), and any subclass that
overrides one-step methods, are filtered without a second copy of their equations. The proposal
reads the model's state as ``model_step`` leaves it: that is the guide's ``h_{t-1}`` whenever the
model's loop is the base's or ``q`` does not read the model's state (STORN; guaranteed by its
constructor). The weights are correct for any proposal, since ``log r`` is the proposal's own.

**Vectorized and masked.** Every tensor carries leading dims ``(R, K, B)``: replicates (``R``
independent filters, for a Monte-Carlo standard error), particles, sequences. A padded step neither
weights nor resamples; a sequence is never resampled after its last real step (nothing follows);
each sequence decides for itself. Log-weights are float64 and combined with ``logsumexp``.

**Seeds.** Sequence ``b``'s proposal noise and resampling uniforms come from its own generator
(seed ``seed_b``), drawn in the same order whatever else is in the batch: a padded batch gives each
sequence the estimate it gets alone with the same seed, to float rounding (for Normal proposals —
every proposal of the library; another distribution draws from torch's global generator).

**Why not** ``pyro.infer.SMCFilter``: it keeps one set of particle weights for the whole batch
(no per-sequence weights, ESS, resampling decisions or masks), normalizes the weights at each step
and so drops the evidence ``p_hat(x)``, computes weights without autograd (no FIVO) and draws its
systematic uniforms (``smcfilter._systematic_sample``) from the global generator (no per-sequence
seeds). Its ``init``/``step`` protocol is what :meth:`model_step` already is; we reuse Pyro's
trace, ``compute_log_prob`` and plates for the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pyro
import pyro.poutine as poutine
import torch
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from ..components.heads import unwrap_normal
from ..models import SequenceModel
from .engine import _tree_map, expanded
from .memory import check_memory, smc_bytes

PROPOSALS = ("guide", "prior")
RESAMPLING = ("systematic", "stratified", "multinomial")


@dataclass
class SMCEstimate:
    """Per-sequence results of :func:`smc_estimate`: an **estimate (SMC)** of ``log p(x)``.

    ``log_likelihood`` ``(B,)``: ``log (1/R) sum_r p_hat_r(x)``, the log of the mean of the ``R``
    replicate estimates (each from ``K`` particles; with ``R = 1`` the single filter's estimate), so
    that ``exp`` of it is unbiased for ``p(x)``. ``log_likelihood_se`` ``(B,)``: its Monte-Carlo
    standard error by the delta method, ``sd_r(p_hat_r) / (sqrt(R) mean_r p_hat_r)``, from the spread of
    the ``R`` independent replicates; NaN when ``R = 1`` (one filter carries no trustworthy spread of
    its own: the genealogy-based estimator of Lee & Whiteley 2018 assumes multinomial resampling at
    every step and degenerates once the particles share one ancestor, as on long sequences).
    ``replicate_log_likelihoods`` ``(R, B)``: each filter's ``log p_hat_r(x)``;
    ``replicate_step_log_likelihoods`` ``(R, B, T)``: each filter's ``log p_hat_r(x_t | x_{<t})``, the
    log of its step-``t`` mean incremental weight (0 on padded steps; sums over steps to
    ``replicate_log_likelihoods``). :func:`~pyro_vrnn.infer.scores.score` reports them.

    Per step, ``(B, T)`` and averaged over replicates: ``step_log_likelihood`` ``log p_hat(x_t | x_{<t})``
    (0 on padded steps; sums to the mean over replicates of ``log p_hat_r(x)``), ``ess`` the
    effective sample size after weighting step ``t`` (NaN on padded steps), ``resampled`` the
    fraction of replicates that resampled after step ``t``. ``num_resampling_events`` ``(B,)``: per
    sequence, the number of steps after which the particles were resampled (mean over replicates).
    ``num_steps`` ``(B,)``: real steps per sequence. ``exact``: a model without latents, whose
    estimate is its exact log-likelihood (one particle).
    """

    log_likelihood: torch.Tensor
    log_likelihood_se: torch.Tensor
    replicate_log_likelihoods: torch.Tensor
    replicate_step_log_likelihoods: torch.Tensor
    step_log_likelihood: torch.Tensor
    ess: torch.Tensor
    resampled: torch.Tensor
    num_resampling_events: torch.Tensor
    num_steps: torch.Tensor
    num_particles: int
    num_replicates: int
    proposal: str
    resampling: str
    ess_threshold: float
    exact: bool

    @property
    def label(self) -> str:
        """What ``log_likelihood`` is, in words: ``"estimate (SMC, K=100, guide proposal, ...)"`` or exact."""
        if self.exact:
            return "exact (no latents)"
        return (f"estimate (SMC, K={self.num_particles}, {self.proposal} proposal, {self.resampling} resampling "
                f"when ESS < {self.ess_threshold:g} K" + (f", mean of {self.num_replicates} filters" if
                                                         self.num_replicates > 1 else "") + ")")

    @property
    def log_likelihood_per_step(self) -> torch.Tensor:
        return self.log_likelihood / self.num_steps

    @property
    def ess_mean(self) -> torch.Tensor:
        """``(B,)``: the ESS averaged over each sequence's real steps."""
        return self.ess.nan_to_num(0.0).sum(1) / self.num_steps

    @property
    def ess_min(self) -> torch.Tensor:
        """``(B,)``: the smallest ESS over each sequence's real steps."""
        return self.ess.nan_to_num(math.inf).min(1).values


# ---------------------------------------------------------------------------- randomness per sequence
class SequenceNoise:
    """Sequence ``b``'s randomness from its own ``torch.Generator`` (seeded ``seeds[b]``).

    ``proposal_sample(fn, leading)`` draws ``z ~ fn`` with batch shape ``leading = (R, K, B)`` as
    ``loc + scale * eps`` (reparameterized) when ``fn`` is a Normal (possibly ``Independent``), where
    ``eps[..., b, :]`` comes from generator ``b``; ``uniforms(num_replicates, n)`` gives ``(R, B, n)``
    uniforms, column ``b`` from generator ``b``.
    """

    def __init__(self, seeds: Sequence[int], device):
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def proposal_sample(self, fn, leading) -> torch.Tensor:
        fn = expanded(fn, leading)
        parts = unwrap_normal(fn)
        if parts is None:  # not a Normal: torch's global generator (seeded from the caller's RNG state)
            return fn.rsample() if fn.has_rsample else fn.sample()
        loc, scale, _ = parts
        row = leading[:-1] + loc.shape[len(leading):]
        eps = torch.stack([torch.randn(row, generator=g, dtype=loc.dtype, device=loc.device)
                           for g in self.generators], dim=len(leading) - 1)
        return loc + scale * eps

    def uniforms(self, num_replicates: int, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.rand((num_replicates, n), generator=g, dtype=torch.float64, device=like.device)
                            for g in self.generators], dim=1)


def sequence_seeds(seed, batch_size: int) -> list[int]:
    """Per-sequence seeds: ``seed + b`` for an int, the list itself for a sequence of ints, and
    for ``None`` a base drawn from torch's global generator (so ``pyro.set_rng_seed`` fixes them)."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, ()).item())
    if isinstance(seed, (int,)) and not isinstance(seed, bool):
        return [seed + b for b in range(batch_size)]
    seeds = [int(s) for s in seed]
    if len(seeds) != batch_size:
        raise ValueError(f"seed must be an int or one seed per sequence ({batch_size}), got {len(seeds)} seeds")
    return seeds


# ---------------------------------------------------------------------------- resampling
def resample_indices(log_weights: torch.Tensor, uniforms: torch.Tensor, scheme: str = "systematic") -> torch.Tensor:
    """Ancestor indices ``a`` ``(R, K, B)`` drawn with probabilities ``softmax_k(log_weights)``.

    ``log_weights``: ``(R, K, B)``; ``uniforms``: ``(R, B, 1)`` for ``"systematic"`` (positions
    ``(u + k) / K``), ``(R, B, K)`` for ``"stratified"`` (``(u_k + k) / K``) and ``"multinomial"``
    (``u_k``). Each position picks the first particle whose cumulative weight exceeds it (inverse-CDF;
    the systematic scheme is ``pyro.infer.smcfilter._systematic_sample``'s, with given uniforms).
    """
    num_particles = log_weights.shape[1]
    cdf = torch.softmax(log_weights.double(), dim=1).movedim(1, -1).cumsum(-1)  # (R, B, K)
    steps = torch.arange(num_particles, dtype=torch.float64, device=cdf.device)
    if scheme == "systematic" or scheme == "stratified":
        positions = (uniforms + steps) / num_particles
    elif scheme == "multinomial":
        positions = uniforms
    else:
        raise ValueError(f"resampling must be one of {RESAMPLING}, got {scheme!r}")
    ancestors = torch.searchsorted(cdf.contiguous(), positions.contiguous(), right=True)
    return ancestors.clamp_(max=num_particles - 1).movedim(-1, 1)


def resample_state(state, ancestors: torch.Tensor):
    """Every particle takes its ancestor's whole state: leaf ``(R, K, B, D)`` -> ``leaf[r, a[r, k, b], b]``.

    ``state``: a tensor or nested tuples of tensors; ``ancestors``: ``(R, K, B)``. A leaf with fewer
    dims (``(B, D)``, e.g. STORN's ``phi_x(x_{t-1})``, the same for every particle) is left as is.
    """
    def gather(leaf):
        if leaf.dim() < ancestors.dim() + 1:
            return leaf
        leaf = leaf.expand(ancestors.shape + leaf.shape[-1:])
        return leaf.gather(1, ancestors.unsqueeze(-1).expand(leaf.shape))

    return _tree_map(gather, state)


# ---------------------------------------------------------------------------- the filter
class _ProposedLatent(Messenger):
    """Gives the one latent site of a model step the proposed value (as ``poutine.replay`` gives a guide's)."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def _pyro_sample(self, msg):
        if msg["is_observed"] or site_is_subsample(msg):
            return
        if self.value is None:
            raise ValueError(f"model_step sampled latent site {msg['name']!r} beyond the one SMC proposes for "
                             f"(SMC needs exactly one latent site per step, none without latents)")
        msg["value"], msg["done"], self.value = self.value, True, None


def _step_log_joint(trace) -> torch.Tensor:
    """``sum`` of the masked, scaled log-densities of a model step's sites (float64)."""
    trace.compute_log_prob()
    total = 0.0
    for site in trace.nodes.values():
        if site["type"] == "sample" and not site_is_subsample(site):
            total = total + site["log_prob"].double()
    return total


@dataclass
class FilterResult:
    """What :func:`particle_filter` returns, per replicate and sequence (``R`` replicates, ``B`` sequences)."""

    log_z: torch.Tensor          # (R, B): log p_hat(x)
    step_log_z: torch.Tensor     # (R, B, T): log p_hat(x_t | x_{<t}), 0 on padded steps
    ess: torch.Tensor            # (R, B, T): ESS after weighting step t
    resampled: torch.Tensor      # (R, B, T) bool: resampled after step t
    state: object = None         # the particles' states after the last step, leaves (R, K, B, D), or
                                 # (B, D) where no latent reaches them (the same for every particle)
    log_w: torch.Tensor = None   # (R, K, B): their log-weights (not normalized)


def particle_filter(model: SequenceModel, x: torch.Tensor, mask: torch.Tensor | None, *, num_particles: int,
                    num_replicates: int = 1, proposal: str = "guide", resampling: str = "systematic",
                    ess_threshold: float = 0.5, noise: SequenceNoise, annealing_factor=1.0,
                    initial_state=None) -> FilterResult:
    """Run ``R x K`` particles over checked ``x: (B, T, X)``; see the module docstring.

    ``initial_state``: the particles' states to start from, leaves ``(K, B, D)`` (or ``(B, D)``, the
    same for every particle), equally weighted: a window of a longer sequence starting from the
    particles the previous window ended in, resampled (:func:`carry_particles`). The guide's context
    (:meth:`~pyro_vrnn.models.SequenceModel.encode`) is computed on ``x`` alone (a smoothing guide reads
    the window's future only; the SRNN's ``a_t`` reads ``d`` run from ``d_1``): a proposal, whose weights
    are correct whatever it reads.

    Differentiable (reparameterized proposals; the ancestor draws are not, and contribute no
    gradient term): FIVO trains on ``log_z``. ``annealing_factor`` scales the latent terms
    ``log p(z_t | .) - log r(z_t | .)`` as the Pyro programs' sites are scaled.
    """
    batch_size, num_steps = x.shape[:2]
    leading = (num_replicates, num_particles, batch_size)
    if mask is not None:  # padding may hold anything (NaN included): it must not reach the states
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
    masks = mask.unbind(1) if mask is not None else (None,) * num_steps
    # resampling after a sequence's last real step changes nothing: only resample if a real step follows
    follows = torch.ones(batch_size, num_steps, dtype=torch.bool, device=x.device) if mask is None else \
        torch.cat([mask[:, 1:], mask.new_zeros(batch_size, 1)], 1)
    follows[:, -1] = False
    follows = follows.unbind(1)
    xs = x.unbind(1)
    contexts = model.encode(x, mask)[1].unbind(1) if model.has_latents and proposal == "guide" else None
    # a leaf starts shared by the particles ((B, D)) and gains their dims once it depends on a latent:
    # the SRNN's d_t and an RNN's h_t (x alone) are computed once per sequence, as in the Pyro programs
    state = model.initial_state((batch_size,), x) if initial_state is None else \
        _tree_map(lambda leaf: leaf if leaf.dim() < 3 else leaf.expand(leading + leaf.shape[-1:]), initial_state)
    log_w = torch.zeros(leading, dtype=torch.float64, device=x.device)
    num_uniforms = 1 if resampling == "systematic" else num_particles
    step_log_z, ess, resampled = [], [], []
    plates = [pyro.plate("smc_replicates", num_replicates, dim=-3), pyro.plate("smc_particles", num_particles, dim=-2),
              pyro.plate("sequences", batch_size, dim=-1)]
    with poutine.block(), plates[0], plates[1], plates[2]:
        for t in range(num_steps):
            z = log_r = None
            if model.has_latents:
                r = model.posterior_dist(state, contexts[t]) if contexts is not None else model.prior_dist(state)
                z = noise.proposal_sample(r, leading)
                log_r = r.log_prob(z).double()
            with poutine.trace() as tracer, _ProposedLatent(z) as proposed:
                state, _ = model.model_step(t, state, xs[t], masks[t], annealing_factor)
            if proposed.value is not None:
                raise ValueError("model_step sampled no latent site, but the model has latents")
            log_inc = _step_log_joint(tracer.trace)
            if log_r is not None:
                log_inc = log_inc - (log_r if annealing_factor == 1.0 else annealing_factor * log_r)
            if masks[t] is not None:
                log_inc = torch.where(masks[t], log_inc, log_inc.new_zeros(()))
            new_log_w = log_w + log_inc
            total = new_log_w.logsumexp(1)                                          # (R, B)
            step_log_z.append(total - log_w.logsumexp(1))
            ess_t = (2 * total - (2 * new_log_w).logsumexp(1)).exp()
            ess.append(ess_t)
            log_w = new_log_w
            uniforms = noise.uniforms(num_replicates, num_uniforms, x)  # every step: streams stay aligned
            now = (ess_t < ess_threshold * num_particles) & follows[t]
            resampled.append(now)
            if model.has_latents and bool(now.any()):
                identity = torch.arange(num_particles, device=x.device).view(1, -1, 1)
                ancestors = torch.where(now.unsqueeze(1), resample_indices(log_w, uniforms, resampling), identity)
                state = resample_state(state, ancestors)
                log_w = torch.where(now.unsqueeze(1), log_w.new_zeros(()), log_w)
    step_log_z = torch.stack(step_log_z, -1)
    return FilterResult(log_z=step_log_z.sum(-1), step_log_z=step_log_z, ess=torch.stack(ess, -1),
                        resampled=torch.stack(resampled, -1), state=state, log_w=log_w)


def carry_particles(result: FilterResult, uniforms: torch.Tensor, resampling: str = "systematic"):
    """The particles a window hands to the next: every particle takes the final state of an ancestor
    drawn with probabilities ``softmax_k(log_w)`` (the filter's weights after its last step), so the
    next window starts from ``K`` equally weighted particles; leaves ``(K, B, D)`` of the first
    replicate (``(B, D)`` for a leaf the same for every particle), detached (truncated backpropagation
    through time).

    ``uniforms``: ``(1, B, 1)`` (systematic) or ``(1, B, K)``, as :func:`resample_indices` takes them.
    """
    ancestors = resample_indices(result.log_w[:1].detach(), uniforms, resampling)
    first = _tree_map(lambda leaf: leaf[:1] if leaf.dim() == 4 else leaf, result.state)
    return _tree_map(lambda leaf: leaf.detach()[0] if leaf.dim() == 4 else leaf.detach(),
                     resample_state(first, ancestors))


def _check_options(model, num_particles, num_replicates, proposal, resampling, ess_threshold):
    """Raise ``ValueError`` naming the bad argument (``model=None``: options only)."""
    if model is not None and not isinstance(model, SequenceModel):
        raise ValueError(f"SMC runs a SequenceModel's one-step methods; got {type(model).__name__} "
                         f"(pass the model itself, e.g. vrnn, not vrnn.model)")
    for label, value in (("num_particles", num_particles), ("num_replicates", num_replicates)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    if proposal not in PROPOSALS:
        raise ValueError(f"proposal must be one of {PROPOSALS}, got {proposal!r}")
    if resampling not in RESAMPLING:
        raise ValueError(f"resampling must be one of {RESAMPLING}, got {resampling!r}")
    if not 0.0 <= float(ess_threshold) <= 1.0:
        raise ValueError(f"ess_threshold must be in [0, 1] (a fraction of num_particles), got {ess_threshold!r}")


def smc_estimate(model: SequenceModel, x: torch.Tensor, mask: torch.Tensor | None = None, num_particles: int = 100,
                 proposal: str = "guide", resampling: str = "systematic", ess_threshold: float = 0.5, *,
                 num_replicates: int = 1, seed=None, chunk_size: int | None = None, max_memory=None) -> SMCEstimate:
    """The SMC estimate of ``log p(x)`` per sequence, with its per-step figures (:class:`SMCEstimate`).

    Args:
        model: any :class:`~pyro_vrnn.models.SequenceModel` (VRNN, VRNN-I, STORN, RNN, ...).
        x, mask: ``(B, T, X)`` and a ``(B, T)`` bool prefix mask (padded steps are ignored).
        num_particles: ``K``. proposal: ``"guide"`` (the guide component, ``q(z_t | c_t, h_{t-1})``)
            or ``"prior"`` (bootstrap). resampling: ``"systematic"``, ``"stratified"`` or
            ``"multinomial"``, when ``ESS < ess_threshold * K`` (0: never, i.e. sequential importance
            sampling; 1: whenever the weights are not uniform).
        num_replicates: ``R`` independent filters, run together; their spread gives ``log_likelihood_se``.
        seed: sequence ``b`` uses seed ``seed + b`` (an int), ``seed[b]`` (one int per sequence), or
            (``None``) a base drawn from torch's global generator.
        chunk_size: sequences run together (default all); bounds memory (``O(R K chunk)`` per step,
            nothing is kept over time) and does not change the result.
        max_memory: bytes the filter may hold (default: the memory available now); work that needs
            more (:func:`~pyro_vrnn.infer.memory.smc_bytes`, e.g. ``num_particles=10**9``) is a
            ``ValueError`` naming ``num_particles`` before anything runs.

    A model without latents gets one particle and its exact log-likelihood.
    """
    _check_options(model, num_particles, num_replicates, proposal, resampling, ess_threshold)
    x, mask = model.check_inputs(x, mask)
    batch_size, num_steps = x.shape[:2]
    chunk_size = batch_size if chunk_size is None else int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not model.has_latents:
        num_particles = num_replicates = 1
    check_memory(smc_bytes(model, min(chunk_size, batch_size), num_steps, num_particles, num_replicates),
                 f"SMC of {min(chunk_size, batch_size)} sequence(s) x {num_steps} steps"
                 + (f" x {num_replicates} replicates" if num_replicates > 1 else ""),
                 f"num_particles={num_particles} (--particles)", max_memory=max_memory, device=x.device,
                 knobs=", chunk_size (the sequences run together; --batch-size) or num_replicates")
    seeds = sequence_seeds(seed, batch_size)
    parts = []
    with torch.no_grad():
        for start in range(0, batch_size, chunk_size):
            rows = slice(start, start + chunk_size)
            parts.append(particle_filter(
                model, x[rows], None if mask is None else mask[rows], num_particles=num_particles,
                num_replicates=num_replicates, proposal=proposal, resampling=resampling,
                ess_threshold=ess_threshold, noise=SequenceNoise(seeds[rows], x.device)))
    log_z = torch.cat([p.log_z for p in parts], 1)                       # (R, B)
    step_log_z = torch.cat([p.step_log_z for p in parts], 1)             # (R, B, T)
    real = torch.ones(batch_size, num_steps, dtype=torch.bool, device=x.device) if mask is None else mask
    ess = torch.cat([p.ess for p in parts], 1).mean(0).masked_fill(~real, math.nan)
    resampled = torch.cat([p.resampled for p in parts], 1).double().mean(0)
    log_mean = log_z.logsumexp(0) - math.log(num_replicates)
    if num_replicates > 1:  # delta method on p_hat_r / max_r p_hat_r
        ratio = (log_z - log_z.max(0).values).exp()
        se = ratio.std(0) / (ratio.mean(0) * math.sqrt(num_replicates))
    else:
        se = torch.full_like(log_mean, 0.0 if not model.has_latents else math.nan)
    return SMCEstimate(
        log_likelihood=log_mean, log_likelihood_se=se, replicate_log_likelihoods=log_z,
        replicate_step_log_likelihoods=step_log_z, step_log_likelihood=step_log_z.mean(0), ess=ess, resampled=resampled,
        num_resampling_events=resampled.sum(1), num_steps=real.sum(1).double(), num_particles=num_particles,
        num_replicates=num_replicates, proposal=proposal, resampling=resampling, ess_threshold=float(ess_threshold),
        exact=not model.has_latents)


def smc_log_likelihood(model: SequenceModel, x: torch.Tensor, mask: torch.Tensor | None = None,
                       num_particles: int = 100, proposal: str = "guide", resampling: str = "systematic",
                       ess_threshold: float = 0.5, **kwargs) -> torch.Tensor:
    """:func:`smc_estimate`'s ``log_likelihood`` alone: a ``(batch,)`` float64 tensor."""
    return smc_estimate(model, x, mask, num_particles, proposal, resampling, ess_threshold, **kwargs).log_likelihood
