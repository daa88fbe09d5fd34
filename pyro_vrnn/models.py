"""Recurrent latent-variable models as Pyro ``model``/``guide`` pairs.

One generic base, :class:`SequenceModel`, holds the time loop; a model is a choice of components:

    prior       p(z_t | h_{t-1})                        (absent for the RNN baseline)
    emission    p(x_t | z_t, h_{t-1})   from  u_t = [phi_z(z_t), h_{t-1}]
    recurrence  h_t = f([phi_x(x_t), phi_z(z_t)], h_{t-1})
    guide       q(z_t | ...)            e.g. q(z_t | x_t, h_{t-1})

The joint is ``p(x, z) = prod_t p(z_t | h_{t-1}) p(x_t | z_t, h_{t-1})`` and the five seed models
are short configurations:

=============  ===========================  =====================  ====================
model          prior                        guide                  emission
=============  ===========================  =====================  ====================
RNN-Normal     none                         none                   diagonal Gaussian
RNN-GMM        none                         none                   Gaussian mixture
STORN          N(0, I)                      q(z_t | x_{<=t})       diagonal Gaussian
VRNN-Normal    N(mu_0(h), sigma_0(h)^2)     q(z_t | x_t, h_{t-1})  diagonal Gaussian
VRNN-GMM       N(mu_0(h), sigma_0(h)^2)     q(z_t | x_t, h_{t-1})  Gaussian mixture
=============  ===========================  =====================  ====================

Tensors are batch-first: ``x`` is ``(batch, time, x_dim)`` and ``mask`` a ``(batch, time)`` bool
tensor, True on real steps. Padded steps are masked (never truncated), so a padded batch gives,
sequence by sequence, the same log-likelihood as each sequence alone.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from typing import Callable, NamedTuple

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.nn import PyroModule
from pyro.poutine.util import is_validation_enabled
from torch import nn

from .distributions import BivariateGaussianMixturePen
from .emissions import make_emission
from .guides import FilteringGuide, SmoothingGuide, StepIndependent, STORNGuide, independent_log_prob
from .nn import MLP, broadcast_cat, broadcast_leading
from .priors import ConditionalGaussianPrior, StandardNormalPrior
from .transitions import make_transition

_NAME_COUNTER = itertools.count()


def _unique_pyro_name(base: str) -> str:
    """A name for ``pyro.module`` that no other live or past instance uses in this process.

    Pyro's global parameter store keys parameters by name: two models under one name would
    silently share (or shadow) each other's parameters.
    """
    store = pyro.get_param_store()
    while True:
        name = f"{base}_{next(_NAME_COUNTER)}"
        prefix = name + "$$$"
        if not any(key.startswith(prefix) for key in store.keys()):
            return name


def _masked(fn, mask_t):
    if type(fn) is dist.Independent:  # a free same-shape expand under pyro.plate (see StepIndependent)
        fn = StepIndependent(fn.base_dist, fn.reinterpreted_batch_ndims, validate_args=fn._validate_args)
    return fn if mask_t is None else fn.mask(mask_t)


class _GuideCache(NamedTuple):
    """What :meth:`SequenceModel.guide` leaves for the model call that follows it (one use).

    ``x`` (checked by identity), ``x_features = phi_x(x)`` of shape ``(B, T, F_x)`` and, when the
    guide ran the model's recurrence, ``steps[t] = (z_t, phi_z(z_t), state_t)`` (``state_t`` is
    ``None`` at the last step); else ``steps`` is ``None``.
    """

    x: torch.Tensor
    x_features: torch.Tensor
    steps: list | None


_UNSPLITTABLE: set[type] = set()  # component types whose distributions _split_steps does not know


def _split_steps(fn, num_steps: int):
    """Split a distribution of batch shape ``(T, ...)`` into ``T`` distributions of batch shape ``(...)``.

    Each parameter is ``unbind``-ed once (its backward is one ``stack``; indexing ``[t]`` per step
    would cost ``O(T^2)`` in the backward pass). Knows the distributions the library's components
    return (Normal, Bernoulli, Categorical, MixtureSameFamily, Independent, the handwriting
    density); returns ``None`` for any other, and the caller evaluates that component step by step.
    """
    if fn.batch_shape[:1] != (num_steps,):
        return None
    kind = type(fn)
    va = {"validate_args": fn._validate_args}
    if kind in (dist.Independent, StepIndependent):
        bases = _split_steps(fn.base_dist, num_steps)
        return None if bases is None else [StepIndependent(b, fn.reinterpreted_batch_ndims, **va) for b in bases]
    if kind is torch.distributions.Independent:
        bases = _split_steps(fn.base_dist, num_steps)
        return None if bases is None else [kind(b, fn.reinterpreted_batch_ndims, **va) for b in bases]
    if kind in (dist.Normal, torch.distributions.Normal):
        return [kind(loc, scale, **va) for loc, scale in zip(fn.loc.unbind(0), fn.scale.unbind(0))]
    if kind in (dist.Bernoulli, torch.distributions.Bernoulli, dist.Categorical, torch.distributions.Categorical):
        key = "logits" if "logits" in fn.__dict__ else "probs"
        return [kind(**{key: p}, **va) for p in getattr(fn, key).unbind(0)]
    if kind in (dist.MixtureSameFamily, torch.distributions.MixtureSameFamily):
        mixing = _split_steps(fn.mixture_distribution, num_steps)
        components = _split_steps(fn.component_distribution, num_steps)
        if mixing is None or components is None:
            return None
        return [kind(m, c, **va) for m, c in zip(mixing, components)]
    if kind is BivariateGaussianMixturePen:
        parts = (fn.logits, fn.loc, fn.scale, fn.rho, fn.pen_logits)
        return [kind(*step, **va) for step in zip(*(p.unbind(0) for p in parts))]
    return None


class _BatchedLogProb:
    """``fn.log_prob(value)`` for a ``(T, ...)``-batched ``fn``, computed on first use, handed out by step."""

    def __init__(self, fn, value):
        self.fn, self.value, self.steps = fn, value, None

    def step(self, t: int) -> torch.Tensor:
        if self.steps is None:
            fn, value = self.fn, self.value
            log_prob = independent_log_prob(fn, value) if isinstance(fn, dist.Independent) else fn.log_prob(value)
            self.steps = log_prob.unbind(0)
            self.fn = self.value = None
        return self.steps[t]


def _annealed(annealing_factor):
    """``poutine.scale`` around latent sites for KL annealing (a no-op at 1)."""
    if isinstance(annealing_factor, (int, float)) and annealing_factor == 1.0:
        return contextlib.nullcontext()
    return poutine.scale(scale=annealing_factor)


class SequenceModel(PyroModule):
    """The generic recurrent (latent-variable) sequence model; see the module docstring.

    Args:
        x_dim: observation size ``X``.
        phi_x: feature extractor ``(..., X) -> (..., F_x)`` with attribute ``out_dim``.
        transition: recurrence (see :mod:`pyro_vrnn.transitions`) taking ``F_x + F_z`` inputs.
        emission: ``u: (..., F_z + H) -> distribution over x_t`` (see :mod:`pyro_vrnn.emissions`).
        phi_z: feature extractor ``(..., Z) -> (..., F_z)``; ``None`` for a model without latents.
        prior: ``h: (..., H) -> distribution over z_t``; ``None`` for a model without latents.
        posterior: the guide component (see :mod:`pyro_vrnn.guides`); ``None`` without latents.
        name: prefix of the parameters in Pyro's parameter store (made unique per instance).

    Attributes:
        reuse_guide_states: when True (default) the model reuses the recurrent states the guide
            computed for the very same ``x`` and latent samples (the values replayed by SVI), instead
            of running the recurrence a second time. The result equals recomputation exactly; with
            any other guide, or values the model samples itself, it recomputes.
    """

    def __init__(self, x_dim: int, *, phi_x: nn.Module, transition: nn.Module, emission: nn.Module,
                 phi_z: nn.Module | None = None, prior: nn.Module | None = None,
                 posterior: nn.Module | None = None, name: str | None = None):
        super().__init__(name=_unique_pyro_name(name or type(self).__name__.lower()))
        if (prior is None) != (posterior is None) or (prior is None) != (phi_z is None):
            raise ValueError("a model with latents needs phi_z, prior and posterior; a model without needs none")
        self.x_dim = int(x_dim)
        self.z_dim = int(prior.z_dim) if prior is not None else 0
        self.phi_x = phi_x
        self.phi_z = phi_z
        self.transition = transition
        self.prior = prior
        self.emission = emission
        self.posterior = posterior
        self.reuse_guide_states = True
        self._state_cache = None
        self._check_sizes()

    def __getstate__(self):  # the guide's one-use cache holds autograd graph tensors: never copy it
        state = dict(super().__getstate__())
        state["_state_cache"] = None
        return state

    def __setstate__(self, state):  # copies must not share parameter-store names
        super().__setstate__(state)
        self._pyro_name = _unique_pyro_name(type(self).__name__.lower())
        self._state_cache = None

    # ------------------------------------------------------------------ checks
    def _check_sizes(self):
        expected = getattr(self.phi_x, "out_dim", None)
        if expected is not None and self.phi_z is not None:
            expected += getattr(self.phi_z, "out_dim", 0)
        got = getattr(self.transition, "input_dim", None)
        if expected is not None and got is not None and expected != got:
            raise ValueError(f"transition expects {got} input features but phi_x/phi_z give {expected}")
        if getattr(self.emission, "x_dim", self.x_dim) != self.x_dim:
            raise ValueError(f"emission models x_dim={self.emission.x_dim} but the model has x_dim={self.x_dim}")

    @property
    def has_latents(self) -> bool:
        return self.prior is not None

    def _reference_tensor(self) -> torch.Tensor:
        for p in self.parameters():
            return p
        return torch.zeros(())

    def check_inputs(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """Validate ``x: (B, T, X)`` and ``mask: (B, T)`` bool; raise ``ValueError`` saying what was expected."""
        ref = self._reference_tensor()
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor of shape (batch, time, {self.x_dim}), got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(f"x must have shape (batch, time, {self.x_dim}), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.x_dim:
            raise ValueError(f"x has {x.shape[-1]} features per step, but the model has x_dim={self.x_dim}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x must have at least one sequence and one step, got shape {tuple(x.shape)}")
        if x.dtype != ref.dtype:
            raise ValueError(f"x has dtype {x.dtype} but the model's parameters are {ref.dtype}; "
                             f"convert with x.to({ref.dtype}) or model.to({x.dtype})")
        if x.device != ref.device:
            raise ValueError(f"x is on {x.device} but the model is on {ref.device}; move one with .to(device)")
        if mask is not None:
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise ValueError(f"mask must be a bool tensor of shape {tuple(x.shape[:2])}, "
                                 f"got {getattr(mask, 'dtype', type(mask).__name__)}")
            if mask.shape != x.shape[:2]:
                raise ValueError(f"mask must have shape (batch, time) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
            if mask.device != x.device:
                raise ValueError(f"mask is on {mask.device} but x is on {x.device}")
            if is_validation_enabled() and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
                raise ValueError("mask must mark a prefix of each sequence (real steps first, padding after)")
        return x, mask

    # ------------------------------------------------------------------ one step
    def next_state(self, state, x_feature_t: torch.Tensor, z_feature_t: torch.Tensor | None):
        """``h_t = f([phi_x(x_t), phi_z(z_t)], h_{t-1})``."""
        return self.transition(broadcast_cat([x_feature_t, z_feature_t]), state)

    def _recurrence(self, x_features: torch.Tensor):
        """``step(t, z_feature_t, state) -> state_t`` equal to ``next_state(state, x_features[:, t], z_feature_t)``.

        The transition's own ``stepper`` when it offers one (it runs the work that depends on
        ``x`` alone once for all steps), unless a subclass overrides :meth:`next_state`.
        """
        stepper = getattr(self.transition, "stepper", None)
        if stepper is not None and type(self).next_state is SequenceModel.next_state:
            return stepper(x_features)
        feature_steps = x_features.unbind(1)
        return lambda t, z_feature, state: self.next_state(state, feature_steps[t], z_feature)

    # ------------------------------------------------------------------ Pyro programs
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None, annealing_factor: float = 1.0):
        """The generative model ``p(x, z)``; samples ``z_{t}`` and observes ``x_{t}``."""
        x, mask = self.check_inputs(x, mask)
        self._program(x, mask, x.shape[0], x.shape[1], annealing_factor)

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None, annealing_factor: float = 1.0):
        """The variational distribution ``q(z | x)``; samples every ``z_{t}`` the model samples."""
        x, mask = self.check_inputs(x, mask)
        pyro.module(self._pyro_name, self)
        self._state_cache = None
        if not self.has_latents:
            return
        batch_size, num_steps = x.shape[:2]
        x_features = self.phi_x(x)
        contexts = self.posterior.encode(x, x_features, mask).unbind(1)
        uses_state = self.posterior.uses_model_state
        posterior = self.posterior.stepper() if hasattr(self.posterior, "stepper") else self.posterior
        recurrence = self._recurrence(x_features) if uses_state else None
        mask_steps = mask.unbind(1) if mask is not None else (None,) * num_steps
        state = self.transition.initial_state((batch_size,), x) if uses_state else None
        cache = []
        with pyro.plate("sequences", batch_size, dim=-1):
            for t in pyro.markov(range(num_steps)):
                h = self.transition.output(state) if uses_state else None
                with _annealed(annealing_factor):
                    z = pyro.sample(f"z_{t}", _masked(posterior(contexts[t], h), mask_steps[t]))
                if uses_state:
                    z_feature = self.phi_z(z)
                    state = recurrence(t, z_feature, state) if t + 1 < num_steps else None
                    cache.append((z, z_feature, state))
        if self.reuse_guide_states:
            self._state_cache = _GuideCache(x, x_features, cache if uses_state else None)

    def _take_state_cache(self, x) -> _GuideCache | None:
        cache, self._state_cache = self._state_cache, None
        if cache is None or x is None or cache.x is not x or not self.reuse_guide_states:
            return None
        return cache

    def _replayed_step_distributions(self, initial_state, steps, x, observed):
        """``p(z_t | h_{t-1})`` and ``p(x_t | z_t, h_{t-1})`` for every step, each from one batched call.

        ``steps`` are the guide's ``(z_t, phi_z(z_t), state_t)``: while the model replays those
        ``z_t``, its ``h_{t-1}`` are the guide's, known before the loop, and neither the prior nor
        the emission depends on the recurrence any more. Inputs are stacked to ``(T, ..., B, D)``,
        each network runs once, and its distribution is split back into ``T`` per-step ones
        (values equal the per-step evaluation to float rounding). The log-densities of the values
        the sites will score -- the guide's ``z_t`` and the observed ``x_t`` (``observed = x.unbind(1)``,
        by identity) -- are likewise computed for all steps in one call, when first asked for.
        Returns ``(priors, emissions)``, either ``None`` where the component's distribution type
        cannot be split.
        """
        num_steps = len(steps)
        hs = [self.transition.output(initial_state)] + [self.transition.output(s[2]) for s in steps[:-1]]
        z_features = [s[1] for s in steps]
        zs = [s[0] for s in steps]
        shape = broadcast_leading(*(v.shape[:-1] for v in hs + z_features + zs))
        h_all = torch.stack([h.expand(shape + h.shape[-1:]) for h in hs])
        x_all = x.transpose(0, 1)  # (T, B, X), a view, aligned with the batch shape (T, ..., B)
        x_all = x_all.reshape(x_all.shape[:1] + (1,) * (len(shape) - 1) + x_all.shape[1:])
        out = []
        for name, inputs, keys, values in (
                ("prior", lambda: h_all, zs, lambda: torch.stack([z.expand(shape + z.shape[-1:]) for z in zs])),
                ("emission", lambda: broadcast_cat([torch.stack([f.expand(shape + f.shape[-1:]) for f in z_features]),
                                                    h_all]), observed, lambda: x_all)):
            component = getattr(self, name)
            split = None
            if type(component) not in _UNSPLITTABLE:
                batched = component(inputs())
                split = _split_steps(batched, num_steps)
                if split is None:
                    _UNSPLITTABLE.add(type(component))
                elif all(type(d) is StepIndependent for d in split):
                    log_probs = _BatchedLogProb(batched, values())
                    for t, d in enumerate(split):
                        d.precomputed = (keys[t], functools.partial(log_probs.step, t))
            out.append(split)
        return tuple(out)

    def _program(self, x, mask, batch_size: int, num_steps: int, annealing_factor=1.0):
        """The generative loop shared by :meth:`model` (``x`` observed) and :meth:`generate` (``x=None``)."""
        pyro.module(self._pyro_name, self)
        like = x if x is not None else self._reference_tensor()
        cache = self._take_state_cache(x)
        observed = x.unbind(1) if x is not None else (None,) * num_steps
        # phi_x(x) of the guide call just before, for this very x, or computed here
        x_features = (cache.x_features if cache is not None else self.phi_x(x)) if x is not None else None
        recurrence = None  # built on first use: while the model replays the guide, it reuses its states
        mask_steps = mask.unbind(1) if mask is not None else (None,) * num_steps
        state = self.transition.initial_state((batch_size,), like)
        # the guide's steps stay valid while every z_t so far is the guide's own sample (replayed).
        # Batching the prior and emission over time pays when autograd keeps every step's tensors
        # anyway (training); without grad (evaluation, importance sampling with many particles) the
        # (T, ..., B, D) intermediates only add memory traffic and step-by-step is faster.
        steps = cache.steps if cache is not None and self.has_latents else None
        batched = steps and torch.is_grad_enabled()
        priors, emissions = self._replayed_step_distributions(state, steps, x, observed) if batched else (None, None)
        samples = []
        with pyro.plate("sequences", batch_size, dim=-1):
            for t in pyro.markov(range(num_steps)):
                h = self.transition.output(state)
                z_feature = None
                cached = None
                if self.has_latents:
                    prior_t = priors[t] if priors is not None else self.prior(h)
                    with _annealed(annealing_factor):
                        z = pyro.sample(f"z_{t}", _masked(prior_t, mask_steps[t]))
                    if steps is not None and steps[t][0] is z:
                        cached = steps[t]
                        z_feature = cached[1]
                    else:
                        steps = priors = emissions = None
                        z_feature = self.phi_z(z)
                emission_t = emissions[t] if emissions is not None else self.emission(broadcast_cat([z_feature, h]))
                x_t = pyro.sample(f"x_{t}", _masked(emission_t, mask_steps[t]), obs=observed[t])
                if x is None:
                    samples.append(x_t)
                if t + 1 < num_steps:
                    if cached is not None:
                        state = cached[2]
                    elif x_features is None:
                        state = self.next_state(state, self.phi_x(x_t), z_feature)
                    else:
                        recurrence = recurrence or self._recurrence(x_features)
                        state = recurrence(t, z_feature, state)
        return torch.stack(samples, dim=-2) if x is None else None

    @torch.no_grad()
    def generate(self, num_sequences: int, num_steps: int) -> torch.Tensor:
        """Ancestral samples ``x ~ p(x)``: a ``(num_sequences, num_steps, x_dim)`` tensor."""
        if num_sequences < 1 or num_steps < 1:
            raise ValueError(f"num_sequences and num_steps must be >= 1, got {num_sequences}, {num_steps}")
        with poutine.block():
            return self._program(None, None, int(num_sequences), int(num_steps))

    def extra_repr(self) -> str:
        return f"x_dim={self.x_dim}, z_dim={self.z_dim}, pyro_name={self._pyro_name!r}"


# ---------------------------------------------------------------------------- seed configurations
def _feature_net(in_dim, feature_dims, activation):
    return MLP(in_dim, feature_dims, activation)


# Named priors and guides, built from the sizes of the model they join (``d`` holds x_dim, z_dim,
# h_dim, the feature width of phi_x, rnn_dim, hidden_dims and activation).
PRIOR_BUILDERS: dict[str, Callable[[dict], nn.Module]] = {
    "conditional": lambda d: ConditionalGaussianPrior(d["h_dim"], d["z_dim"], d["hidden_dims"], d["activation"]),
    "standard": lambda d: StandardNormalPrior(d["z_dim"]),
}
GUIDE_BUILDERS: dict[str, Callable[[dict], nn.Module]] = {
    "filtering": lambda d: FilteringGuide(d["x_features"], d["h_dim"], d["z_dim"], d["hidden_dims"],
                                          d["activation"]),
    "smoothing": lambda d: SmoothingGuide(d["x_features"], d["h_dim"], d["z_dim"], d["rnn_dim"] or d["h_dim"],
                                          d["hidden_dims"], d["activation"]),
    "storn": lambda d: STORNGuide(d["x_dim"], d["z_dim"], d["rnn_dim"] or d["h_dim"], d["hidden_dims"],
                                  d["activation"]),
}


def _resolve(component, builders: dict[str, Callable[[dict], nn.Module]], sizes: dict, what: str):
    if isinstance(component, str):
        if component not in builders:
            raise ValueError(f"unknown {what} {component!r}; expected one of {sorted(builders)} or a module")
        return builders[component](sizes)
    return component


def _latent_components(x_dim, z_dim, h_dim, emission, prior, guide, transition, phi_x, phi_z, feature_dims,
                       hidden_dims, activation, num_components, rnn_dim):
    for label, value in (("x_dim", x_dim), ("z_dim", z_dim), ("h_dim", h_dim)):
        if int(value) < 1:
            raise ValueError(f"{label} must be a positive integer, got {value}")
    phi_x = phi_x if phi_x is not None else _feature_net(x_dim, feature_dims, activation)
    phi_z = phi_z if phi_z is not None else _feature_net(z_dim, feature_dims, activation)
    if isinstance(transition, str):
        transition = make_transition(transition, phi_x.out_dim + phi_z.out_dim, h_dim)
    h_dim = transition.hidden_dim
    sizes = dict(x_dim=x_dim, z_dim=z_dim, h_dim=h_dim, x_features=phi_x.out_dim, rnn_dim=rnn_dim,
                 hidden_dims=hidden_dims, activation=activation)
    prior = _resolve(prior, PRIOR_BUILDERS, sizes, "prior")
    posterior = _resolve(guide, GUIDE_BUILDERS, sizes, "guide")
    if isinstance(emission, str):
        emission = make_emission(emission, phi_z.out_dim + h_dim, x_dim, hidden_dims=hidden_dims,
                                 activation=activation, num_components=num_components)
    return dict(phi_x=phi_x, phi_z=phi_z, transition=transition, prior=prior, posterior=posterior,
                emission=emission)


class VRNN(SequenceModel):
    """Variational RNN (Chung et al. 2015).

    ``p(z_t | h_{t-1}) = N(mu_0(h), sigma_0(h)^2)``, ``p(x_t | z_t, h_{t-1})`` from
    ``[phi_z(z_t), h_{t-1}]``, ``h_t = LSTM([phi_x(x_t), phi_z(z_t)], h_{t-1})`` and the filtering guide
    ``q(z_t | x_t, h_{t-1})``. Every piece can be replaced: ``prior="standard"`` (or any prior
    module), ``guide="smoothing"`` / ``"storn"`` (or any guide component), ``transition="gru"``,
    ``emission="gmm"`` / ``"bernoulli"`` / ``"handwriting"`` (or any emission module).

    Sizes: ``feature_dims`` are the hidden widths of ``phi_x`` and ``phi_z`` (the paper: four layers
    of 600), ``hidden_dims`` those of the prior, guide and emission heads.
    """

    default_prior = "conditional"
    default_guide = "filtering"

    def __init__(self, x_dim: int, z_dim: int, h_dim: int, emission="normal", *, prior=None, guide=None,
                 transition="lstm", phi_x=None, phi_z=None, feature_dims=(64,), hidden_dims=(64,),
                 activation="relu", num_components: int = 20, rnn_dim: int | None = None, name: str | None = None):
        parts = _latent_components(x_dim, z_dim, h_dim, emission, prior or self.default_prior,
                                   guide or self.default_guide, transition, phi_x, phi_z, tuple(feature_dims),
                                   tuple(hidden_dims), activation, num_components, rnn_dim)
        super().__init__(x_dim, name=name, **parts)


class STORN(VRNN):
    """Stochastic recurrent network (Bayer & Osendorfer 2014).

    ``z_t ~ N(0, I)`` independently of the past; the generating RNN sees ``z_t`` and ``x_{t-1}``
    (through ``h_{t-1}``); the recognition model ``q(z_t | x_{<=t})`` is its own RNN over ``x`` with
    the variance the square of the net's output. Same keyword overrides as :class:`VRNN`.
    """

    default_prior = "standard"
    default_guide = "storn"


class RNN(SequenceModel):
    """The deterministic baseline: ``h_t = LSTM(phi_x(x_t), h_{t-1})`` and ``p(x_t | h_{t-1})``.

    No latents: :meth:`guide` samples nothing, the ELBO equals the exact log-likelihood.
    """

    def __init__(self, x_dim: int, h_dim: int, emission="normal", *, transition="lstm", phi_x=None,
                 feature_dims=(64,), hidden_dims=(64,), activation="relu", num_components: int = 20,
                 name: str | None = None):
        for label, value in (("x_dim", x_dim), ("h_dim", h_dim)):
            if int(value) < 1:
                raise ValueError(f"{label} must be a positive integer, got {value}")
        phi_x = phi_x if phi_x is not None else _feature_net(x_dim, tuple(feature_dims), activation)
        if isinstance(transition, str):
            transition = make_transition(transition, phi_x.out_dim, h_dim)
        if isinstance(emission, str):
            emission = make_emission(emission, transition.hidden_dim, x_dim, hidden_dims=tuple(hidden_dims),
                                     activation=activation, num_components=num_components)
        super().__init__(x_dim, phi_x=phi_x, transition=transition, emission=emission, name=name)
