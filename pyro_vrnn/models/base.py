"""Recurrent latent-variable models as Pyro ``model``/``guide`` pairs.

One generic base, :class:`SequenceModel`, writes the VRNN's equations as one small method each::

    initial_state            h_0 = 0
    prior_dist(state)        p(z_t | h_{t-1})
    emission_dist(state, .)  p(x_t | z_t, h_{t-1})    from [phi_z(z_t), h_{t-1}]
    next_state(state, ...)   h_t = f([phi_x(x_t), phi_z(z_t)], h_{t-1})
    posterior_dist(state, .) q(z_t | c_t, h_{t-1})    c_t: the guide's encoding of x (e.g. phi_x(x_t))

``model_step``/``guide_step`` are one time step of each Pyro program, and ``model``/``guide`` loop over
them inside ``pyro.plate`` and ``pyro.markov``. The joint is
``p(x, z) = prod_t p(z_t | h_{t-1}) p(x_t | z_t, h_{t-1})``. The seed models are configurations:

=============  ===========================  =====================  =====================================
model          prior                        guide                  recurrence and emission
=============  ===========================  =====================  =====================================
RNN            none                         none                   h_t = f(phi_x(x_t), h_{t-1}); p(x_t | h_{t-1})
STORN          N(0, I)                      q(z_t | x_{<=t})       h_t = f(phi_x(x_{t-1}), phi_z(z_t), h_{t-1}); p(x_t | h_t)
VRNN-I         N(0, I)                      q(z_t | x_t, h_{t-1})  as the VRNN
VRNN           N(mu_0(h), sigma_0(h)^2)     q(z_t | x_t, h_{t-1})  h_t = f(phi_x(x_t), phi_z(z_t), h_{t-1}); p(x_t | z_t, h_{t-1})
SRNN           p(z_t | z_{t-1}, d_t)        q(z_t | z_{t-1}, a_t)  d_t = f(phi_x(x_{t-1}), d_{t-1}); p(x_t | z_t, d_t)
=============  ===========================  =====================  =====================================

Tensors are batch-first: ``x`` is ``(batch, time, x_dim)`` and ``mask`` a ``(batch, time)`` bool
tensor, True on real steps (a prefix of each row). Padded steps are masked (never truncated). Every
one-step method accepts extra leading dims (vectorized particles, or all time steps at once).
Fast training and evaluation live apart from these programs, in :mod:`pyro_vrnn.infer`.

**Windows of a long sequence.** ``model``/``guide`` take ``initial_state``: the state to start from
instead of ``h_0``, so that a window ``x[:, s:s + N]`` is the same program run from the state the
previous window ended in (:meth:`SequenceModel.filtering_state`: ``h`` after the window given latents
from the guide; :meth:`SequenceModel.final_state`: the model replayed on a guide trace). Site names
restart at ``z_0``/``x_0`` in every window: each window is its own program, one SVI step each.
"""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.poutine as poutine
import torch
from torch import nn

from ..components.nn import broadcast_cat
from .predictive import generate, reconstruct

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


def check_annealing_factor(annealing_factor) -> None:
    """The KL weight ``annealing_factor`` scales the latent sites' log-densities: a finite number >= 0
    (a one-element tensor too), else a ``ValueError`` naming it."""
    try:
        value = float(annealing_factor)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        value = math.nan
    if isinstance(annealing_factor, bool) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"annealing_factor (the KL weight; --kl-anneal-start) must be a finite number >= 0, "
                         f"got {annealing_factor!r}")


def _masked(fn, mask_t):
    return fn if mask_t is None else fn.mask(mask_t)


def _flatten(state, leaves: list):
    """The tensors of a state (a tensor, or nested tuples of tensors), in order."""
    if isinstance(state, (tuple, list)):
        for part in state:
            _flatten(part, leaves)
    else:
        leaves.append(state)


def _detached(state):
    """The state with every tensor detached from the graph (nested tuples kept)."""
    if isinstance(state, (tuple, list)):
        return type(state)(_detached(part) for part in state)
    return state.detach()


def _steps(tensor, num_steps):
    """``tensor.unbind(1)`` (one backward ``stack``, where indexing per step would cost ``O(T^2)``),
    or ``num_steps`` Nones."""
    return tensor.unbind(1) if tensor is not None else (None,) * num_steps


class SequenceModel(nn.Module):
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

    Calling the model, ``vrnn(x, mask)``, runs :meth:`model` (as for a ``PyroModule``), so
    ``pyro.infer.Predictive(vrnn, guide=vrnn.guide, ...)`` works.
    """

    def __init__(self, x_dim: int, *, phi_x: nn.Module, transition: nn.Module, emission: nn.Module,
                 phi_z: nn.Module | None = None, prior: nn.Module | None = None,
                 posterior: nn.Module | None = None, name: str | None = None):
        super().__init__()
        if (prior is None) != (posterior is None) or (prior is None) != (phi_z is None):
            raise ValueError("a model with latents needs phi_z, prior and posterior; a model without needs none")
        self._pyro_name = _unique_pyro_name(name or type(self).__name__.lower())
        self.x_dim = int(x_dim)
        self.z_dim = int(prior.z_dim) if prior is not None else 0
        self.phi_x = phi_x
        self.phi_z = phi_z
        self.transition = transition
        self.prior = prior
        self.emission = emission
        self.posterior = posterior
        self._check_sizes()

    def __getstate__(self):
        """``nn.Module``'s state, without the weak reference Pyro's parameter store hangs on each parameter
        it hands out (``p.unconstrained``, set again on the next access), which cannot be pickled."""
        for p in self.parameters():
            p.__dict__.pop("unconstrained", None)
        return super().__getstate__()

    def __setstate__(self, state):  # copies must not share parameter-store names
        super().__setstate__(state)
        self._pyro_name = _unique_pyro_name(type(self).__name__.lower())

    def register_parameters(self):
        """``pyro.module(pyro_name, self)`` with the store holding this module's *current* tensors.

        ``pyro.module`` keeps the first tensor it saw under each name: after ``m.emission = ...`` or
        ``m.load_state_dict(sd, assign=True)`` it would hand the optimizer the old tensors while the
        programs compute with the new ones. Entries under this model's prefix that are not its current
        parameters are dropped first, so the store (and what SVI steps) are always the module's own.
        """
        store = pyro.get_param_store()
        prefix = self._pyro_name + "$$$"
        current = {prefix + name: p for name, p in self.named_parameters()}
        stale = [key for key in store.keys() if key.startswith(prefix)
                 and (key not in current or store.param_name(current[key]) != key)]
        for key in stale:
            del store[key]
        pyro.module(self._pyro_name, self)

    @property
    def pyro_name(self) -> str:
        """The prefix of this model's parameters in Pyro's parameter store."""
        return self._pyro_name

    @property
    def has_latents(self) -> bool:
        return self.prior is not None

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

    def _reference_tensor(self) -> torch.Tensor:
        for p in self.parameters():
            return p
        return torch.zeros(())

    def check_inputs(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, check_finite: bool = True):
        """Validate ``x: (B, T, X)`` and ``mask: (B, T)`` bool; raise ``ValueError`` saying what is wrong.

        Always on, whatever Pyro's validation setting, because each protects a result: the mask must
        mark a prefix of each row (real steps first; the smoothing guide and the estimators rely on
        it), every row must have a real step, and the real steps of ``x`` must be finite (padding
        may hold anything). A few passes over the mask and one sum over ``x``, once per call
        (0.4 ms on the ``large`` benchmark batch, 128 x 50 x 200, against a 880 ms training step).
        Returns ``(x, mask)`` with the padded steps of ``x`` set to 0 (selected, not multiplied), so
        that what they held reaches neither a density nor a gradient: the mask then zeroes their
        log-probabilities, and ``0 * grad`` of a finite value is 0 where ``0 * grad`` of NaN is NaN.
        """
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
            problems = torch.stack([(mask[:, 1:] & ~mask[:, :-1]).any(1), ~mask[:, 0]]).any(0)
            if bool(problems.any()):
                row = int(problems.nonzero()[0, 0])
                what = "has no real step" if not bool(mask[row, 0]) else "is not a prefix (real steps first, padding after)"
                raise ValueError(f"mask row {row} {what}; each row of mask must be True on the first "
                                 f"length_i steps and False after, with length_i >= 1")
        # the sum is finite when every value is (NaN and inf propagate): one fast reduction when all
        # is well; only a non-finite sum (or an overflowing one) pays for locating the bad step
        if check_finite and not bool(x.sum().isfinite()):
            bad = ~torch.isfinite(x).all(-1)
            if mask is not None:
                bad &= mask
            if bool(bad.any()):
                row, step = (int(i) for i in bad.nonzero()[0])
                raise ValueError(f"x has a non-finite value (NaN or inf) at sequence {row}, step {step}; "
                                 f"only padded (masked) steps may hold non-finite values")
        if mask is not None:  # select, then score: padding (NaN, inf, anything) never reaches a network,
            x = torch.where(mask.unsqueeze(-1), x, x.new_zeros(()))  # a density or a gradient
        return x, mask

    # ------------------------------------------------------------------ one equation each
    def initial_state(self, batch_shape, like: torch.Tensor):
        """``h_0`` (the transition's zero state) for ``batch_shape`` sequences, dtype/device of ``like``."""
        return self.transition.initial_state(batch_shape, like)

    def prior_dist(self, state):
        """``p(z_t | h_{t-1})``: a distribution with event shape ``(Z,)``."""
        return self.prior(self.transition.output(state))

    def emission_dist(self, state, z_feature: torch.Tensor | None):
        """``p(x_t | z_t, h_{t-1})`` from ``[phi_z(z_t), h_{t-1}]`` (``h_{t-1}`` alone without latents)."""
        return self.emission(broadcast_cat([z_feature, self.transition.output(state)]))

    def next_state(self, state, x_feature: torch.Tensor, z_feature: torch.Tensor | None):
        """``h_t = f([phi_x(x_t), phi_z(z_t)], h_{t-1})``."""
        return self.transition(broadcast_cat([x_feature, z_feature]), state)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None, initial_state=None):
        """The guide's inputs for all steps at once: ``phi_x(x)`` ``(B, T, F_x)`` and the posterior's
        context ``c`` ``(B, T, C)`` (``phi_x(x_t)``, an RNN over ``x_{<=t}`` or ``x_{>=t}``, ...).
        ``initial_state``: the model's state the guide starts from (read by a model whose context
        depends on its deterministic states, the SRNN; ignored here)."""
        x_features = self.phi_x(x)
        return x_features, self.posterior.encode(x, x_features, mask)

    def posterior_dist(self, state, context_t: torch.Tensor):
        """``q(z_t | c_t, h_{t-1})`` (the guide component; ``h_{t-1}`` only if it reads the model's state)."""
        h = self.transition.output(state) if self.posterior.uses_model_state else None
        return self.posterior(context_t, h)

    # ------------------------------------------------------------------ one time step of each program
    def model_step(self, t: int, state, x_t=None, mask_t=None, annealing_factor=1.0):
        """``z_t ~ p(z_t | h_{t-1})``, ``x_t ~ p(x_t | z_t, h_{t-1})`` (observed if given), then ``h_t``.

        Returns ``(h_t, x_t)``. ``annealing_factor`` scales the latent site (KL annealing).
        """
        z_feature = None
        if self.has_latents:
            with poutine.scale(scale=annealing_factor):
                z_t = pyro.sample(f"z_{t}", _masked(self.prior_dist(state), mask_t))
            z_feature = self.phi_z(z_t)
        x_t = pyro.sample(f"x_{t}", _masked(self.emission_dist(state, z_feature), mask_t), obs=x_t)
        return self.next_state(state, self.phi_x(x_t), z_feature), x_t

    def guide_step(self, t: int, state, x_feature_t, context_t, mask_t=None, annealing_factor=1.0):
        """``z_t ~ q(z_t | c_t, h_{t-1})``, then ``h_t`` when ``q`` reads the model's state. Returns ``h_t``."""
        with poutine.scale(scale=annealing_factor):
            z_t = pyro.sample(f"z_{t}", _masked(self.posterior_dist(state, context_t), mask_t))
        if not self.posterior.uses_model_state:
            return state
        return self.next_state(state, x_feature_t, self.phi_z(z_t))

    # ------------------------------------------------------------------ the Pyro programs
    def model(self, x: torch.Tensor | None, mask: torch.Tensor | None = None, annealing_factor=1.0, *,
              num_steps: int | None = None, num_sequences: int = 1, initial_state=None) -> torch.Tensor:
        """The generative model ``p(x, z)``: samples ``z_{t}`` and observes ``x_{t}``.

        ``model(None, num_steps=T, num_sequences=B)`` samples ``x`` as well (so
        ``Predictive(vrnn.model, num_samples=S)(None, num_steps=T)`` is the prior predictive).
        ``initial_state``: the state to start from instead of :meth:`initial_state` (a window of a
        longer sequence starts from the state the previous window ended in, :meth:`final_state`);
        the sites are named from ``z_0``/``x_0`` whatever the window's place in the sequence.
        Returns ``x``: ``(B, T, X)``.
        """
        self.register_parameters()
        check_annealing_factor(annealing_factor)
        if x is None:
            batch_size, num_steps, like = self._generation_shape(num_sequences, num_steps)
        else:
            x, mask = self.check_inputs(x, mask)
            (batch_size, num_steps), like = x.shape[:2], x
        xs, masks = _steps(x, num_steps), _steps(mask, num_steps)
        state = self._start(initial_state, batch_size, like)
        sampled = []
        with pyro.plate("sequences", batch_size, dim=-1):
            for t in pyro.markov(range(num_steps)):
                state, x_t = self.model_step(t, state, xs[t], masks[t], annealing_factor)
                sampled.append(x_t)
        return x if x is not None else torch.stack(sampled, dim=-2)

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None, annealing_factor=1.0, *, initial_state=None):
        """The variational distribution ``q(z | x)``: samples every ``z_{t}`` the model samples.

        Returns the model's state after the last step given the sampled ``z`` when the guide runs the
        model's recurrence (its component reads ``h``), else ``None``.

        ``initial_state``: the model's state to start from, as in :meth:`model`. On a window of a longer
        sequence the guide's encoding (:meth:`encode`) sees the window only: a guide that reads the future
        (the smoothing guide, the DMM's) reads ``x_{t:end of window}``, not ``x_{t:T}``, and a guide's
        own RNN (STORN's) restarts at the window's first step; only the model's state is carried.
        """
        self.register_parameters()
        check_annealing_factor(annealing_factor)
        x, mask = self.check_inputs(x, mask)
        if not self.has_latents:
            return
        batch_size, num_steps = x.shape[:2]
        # an encode written before windows (x, mask) keeps working when no window state is given
        x_features, contexts = self.encode(x, mask) if initial_state is None else self.encode(x, mask, initial_state)
        x_features, contexts, masks = _steps(x_features, num_steps), _steps(contexts, num_steps), _steps(mask, num_steps)
        state = self._start(initial_state, batch_size, x)
        with pyro.plate("sequences", batch_size, dim=-1):
            for t in pyro.markov(range(num_steps)):
                state = self.guide_step(t, state, x_features[t], contexts[t], masks[t], annealing_factor)
        return state if self.posterior.uses_model_state else None

    def _start(self, initial_state, batch_size: int, like: torch.Tensor):
        """``initial_state`` if given (checked to hold ``batch_size`` sequences), else ``h_0``."""
        if initial_state is None:
            return self.initial_state((batch_size,), like)
        leaves = []
        _flatten(initial_state, leaves)
        for leaf in leaves:
            if not isinstance(leaf, torch.Tensor) or leaf.dim() < 2 or leaf.shape[-2] != batch_size:
                raise ValueError(f"initial_state must be a state of {batch_size} sequences (tensors of shape "
                                 f"(..., {batch_size}, D), as final_state returns), got "
                                 f"{getattr(leaf, 'shape', type(leaf).__name__)}")
        return initial_state

    @torch.no_grad()
    def final_state(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, initial_state=None, guide_trace=None):
        """The model's state after the last step of ``x: (B, T, X)``: the recurrence ``h_t`` run by
        :meth:`model_step` from ``initial_state`` (default ``h_0``) with each ``z_t`` replayed from
        ``guide_trace`` (a trace of :meth:`guide` on the same ``x``: the filtering state ``h_T`` given
        the guide's latents); without a trace ``z_t`` is drawn from the prior. No gradients: the state
        a window hands to the next is detached (truncated backpropagation through time).

        Rows whose real steps end inside ``x`` run on through their padding (masked sites): their state
        is not meant to be carried (a prefix mask has no real step after padding).
        """
        x, mask = self.check_inputs(x, mask)
        batch_size, num_steps = x.shape[:2]
        xs, masks = _steps(x, num_steps), _steps(mask, num_steps)
        state = self._start(initial_state, batch_size, x)
        with poutine.block(), poutine.replay(trace=guide_trace), pyro.plate("sequences", batch_size, dim=-1):
            for t in range(num_steps):
                state, _ = self.model_step(t, state, xs[t], masks[t])
        return _detached(state)

    @torch.no_grad()
    def filtering_state(self, x: torch.Tensor, mask: torch.Tensor | None = None, initial_state=None):
        """``h_T`` given ``z ~ q(z | x)``: the state after the last step of ``x`` (from ``initial_state``)
        with fresh latents from this model's guide, detached. Where the guide runs the model's
        recurrence and :meth:`encode`, :meth:`model_step` and :meth:`guide_step` are the base's (so the
        guide's recurrence reads the model's ``phi_x(x_t)``), the guide's return value is that state (one
        pass); otherwise :meth:`final_state` replays the model on the guide's trace. What a window of
        windowed training hands to the next (:meth:`~pyro_vrnn.train.trainer.Trainer.window_steps`)."""
        cls = type(self)
        if self.posterior is not None and self.posterior.uses_model_state and cls.encode is SequenceModel.encode \
                and cls.model_step is SequenceModel.model_step and cls.guide_step is SequenceModel.guide_step:
            with poutine.block():
                return _detached(self.guide(x, mask, initial_state=initial_state))
        guide_trace = poutine.trace(self.guide).get_trace(x, mask, initial_state=initial_state)
        return self.final_state(x, mask, initial_state=initial_state, guide_trace=guide_trace)

    def forward(self, x: torch.Tensor | None, mask: torch.Tensor | None = None, annealing_factor=1.0, **kwargs):
        """:meth:`model` (the generative program), as a ``PyroModule``'s ``forward`` is."""
        return self.model(x, mask, annealing_factor, **kwargs)

    def _generation_shape(self, num_sequences, num_steps):
        for label, value in (("num_sequences", num_sequences), ("num_steps", num_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive int when x is None (generation), got {value!r}")
        return num_sequences, num_steps, self._reference_tensor()

    def generate(self, num_sequences: int, num_steps: int, prefix: torch.Tensor | None = None,
                 prefix_mask: torch.Tensor | None = None, temperature: float = 1.0, return_latents: bool = False):
        """Ancestral samples ``x ~ p(x)``, or continuations of ``prefix``: ``(N, P + num_steps, X)``.

        Without a prefix (``P = 0``): ``z_t ~ p(z_t | h_{t-1})``, ``x_t ~ p(x_t | z_t, h_{t-1})``, ``h_t``.
        With ``prefix`` ``(P, X)`` or ``(B, P, X)`` (``B`` is 1, continued ``N`` times, or ``N``) and
        optionally ``prefix_mask`` ``(B, P)`` (row ``i`` real on its first ``L_i`` steps): the prefix's
        latents come from the guide, ``z_t ~ q(z_t | ...)`` for ``t < L_i``, the recurrence reads the
        prefix itself (the guide *filters* it), and from step ``L_i`` on ``z_t`` and ``x_t`` are drawn
        from the prior and the emission. ``num_steps`` does **not** count the prefix: the result has
        ``P + num_steps`` steps, row ``i`` being its ``L_i`` prefix steps (returned as given) followed by
        ``P - L_i + num_steps`` generated ones (``num_steps`` for a full-length prefix).

        ``temperature`` ``tau >= 0`` scales the sampling noise of every ``z`` and ``x`` drawn (the
        prefix's guide draws included): Gaussian noise by ``tau``, discrete choices (mixture
        components, Bernoulli bits) from ``softmax(logits / tau)``; ``tau = 0`` gives the means
        (a mixture: the mean of its most likely component; a Bernoulli: probability > 1/2), see
        :func:`~pyro_vrnn.predictive.tempered_sample`. With ``return_latents`` it returns ``(x, z)``,
        ``z`` of shape ``(N, P + num_steps, Z)`` (``Z = 0`` for a model without latents).
        Runs without gradients; implemented in :func:`pyro_vrnn.predictive.generate`.
        """
        return generate(self, num_sequences, num_steps, prefix=prefix, prefix_mask=prefix_mask,
                        temperature=temperature, return_latents=return_latents)

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None, num_samples: int = 1) -> torch.Tensor:
        """``(S, B, T, X)`` samples ``x'_t ~ p(x_t | z_{<=t}, x_{<t})`` with ``z ~ q(z | x)`` (``S = num_samples``).

        Teacher forcing: each step is drawn given the guide's latents and the *true* past
        ``x_{<t}``, never the earlier reconstructions; see :func:`pyro_vrnn.predictive.reconstruct`.
        """
        return reconstruct(self, x, mask, num_samples)

    def extra_repr(self) -> str:
        return f"x_dim={self.x_dim}, z_dim={self.z_dim}, pyro_name={self._pyro_name!r}"
