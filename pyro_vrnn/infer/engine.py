"""The fast ELBO: ``Trace_ELBO``'s loss and gradients for a :class:`~pyro_vrnn.models.SequenceModel`'s own
``model``/``guide``, computed from the model's one-step functions in one pass.

Run as Pyro programs, the guide runs the recurrence ``h_t = f(phi_x(x_t), phi_z(z_t), h_{t-1})`` to
sample ``z_t ~ q(z_t | c_t, h_{t-1})``, and the model, replaying those ``z_t``, runs it a second time to
score them. :func:`sequence_log_weights` runs it once:

1. ``z_t ~ q(z_t | c_t, h_{t-1})`` step by step, drawn exactly as ``Trace_ELBO`` draws them (the same
   distribution objects, expanded to the same shape, ``rsample``-ed in the same order), so a given
   seed gives the same ``z``; ``h_t`` follows from the transition's ``stepper`` (its ``x`` share once
   for all steps);
2. ``p(z_t | h_{t-1})`` and ``p(x_t | z_t, h_{t-1})`` for all steps at once: ``prior_dist`` and
   ``emission_dist`` on the states stacked over time ``(T, ..., B, .)`` (one-step methods accept extra
   leading dims);
3. ``log p(x, z) - log q(z | x)`` per particle and sequence, masked and annealed as the sites are.

Nothing is kept between calls: every call computes from the parameters as they are. It applies only
where it is the same computation as the Pyro programs (:func:`supported_model`): the model and guide
are one :class:`SequenceModel`'s own, unwrapped (no Pyro handler around the call but a parameter
trace), with the library's loop (``model``, ``guide``, ``model_step``, ``guide_step`` not overridden;
one-step methods may be: the pass calls them, ``encode`` included, as the programs do), a
reparameterizable ``q`` and arguments ``(x, mask, annealing_factor)`` and optionally
``initial_state`` (a window of a longer sequence starting from a carried state). Where the pass
would compute something else than the programs (an overridden ``encode`` giving a guide that runs
the model's recurrence other x-features than the model's ``phi_x(x)``, a ``q`` without
``rsample``) it raises :class:`OutOfScope` before any gradient and the caller runs the programs.
Anything else runs ``Trace_ELBO`` itself. Tests hold the two equal in float64 on fixed noise.
"""

from __future__ import annotations

import torch
from pyro.infer import Trace_ELBO
from pyro.infer.util import torch_item
from pyro.poutine.runtime import _PYRO_STACK
from pyro.poutine.trace_messenger import TraceMessenger
from pyro.util import warn_if_nan

from ..models import SequenceModel


def _tree_map(fn, *trees):
    """``fn`` over the tensors of a state (a tensor, or nested tuples of tensors)."""
    if isinstance(trees[0], torch.Tensor):
        return fn(*trees)
    return type(trees[0])(_tree_map(fn, *leaves) for leaves in zip(*trees))


def _stack_states(states, leading):
    """Stack per-step states ``(..., B, D)`` over time to ``(T, *leading, D)``."""
    return _tree_map(lambda *leaves: torch.stack([s.expand(leading + s.shape[-1:]) for s in leaves]), *states)


def supported_model(model, guide, args, kwargs) -> SequenceModel | None:
    """The :class:`SequenceModel` whose own ``model``/``guide`` these are, when the engine's pass equals
    running them; else ``None``. See the module docstring for the conditions."""
    m = getattr(model, "__self__", None)
    if not isinstance(m, SequenceModel) or getattr(guide, "__self__", None) is not m:
        return None
    if getattr(model, "__func__", None) is not SequenceModel.model or \
            getattr(guide, "__func__", None) is not SequenceModel.guide:
        return None
    cls = type(m)
    if cls.model_step is not SequenceModel.model_step or cls.guide_step is not SequenceModel.guide_step:
        return None
    if any(not (isinstance(h, TraceMessenger) and h.param_only) for h in _PYRO_STACK):
        return None  # a handler (scale, condition, seed, a full trace ...) would see sites the engine has not
    if len(args) > 3 or set(kwargs) - {"x", "mask", "annealing_factor", "initial_state"}:
        return None
    return m


def _arguments(args, kwargs):
    names = ("x", "mask", "annealing_factor")
    values = dict(zip(names, args), **kwargs)
    return values["x"], values.get("mask"), values.get("annealing_factor", 1.0), values.get("initial_state")


def _recurrence(m: SequenceModel, x_features: torch.Tensor):
    """``step(t, z_feature_t, state)`` equal to ``m.next_state(state, x_features[:, t], z_feature_t)``:
    the transition's ``stepper`` when it has one and ``next_state`` is the base's."""
    stepper = getattr(m.transition, "stepper", None)
    if stepper is not None and type(m).next_state is SequenceModel.next_state:
        return stepper(x_features)
    steps = x_features.unbind(1)
    return lambda t, z_feature, state: m.next_state(state, steps[t], z_feature)


def _posterior(m: SequenceModel):
    """``(context_t, state) -> q(z_t | c_t, h_{t-1})``, the guide component's ``stepper`` where it has one."""
    if type(m).posterior_dist is not SequenceModel.posterior_dist:
        return lambda context_t, state: m.posterior_dist(state, context_t)
    head = m.posterior.stepper() if hasattr(m.posterior, "stepper") else m.posterior
    if not m.posterior.uses_model_state:
        return lambda context_t, state: head(context_t, None)
    return lambda context_t, state: head(context_t, m.transition.output(state))


def expanded(fn, leading):
    """``fn`` expanded to batch shape ``leading``, as a plate of that shape expands a site's distribution."""
    return fn if tuple(fn.batch_shape) == tuple(leading) else fn.expand(leading)


def rsample(fn, leading):
    """What ``pyro.sample`` under ``Trace_ELBO`` draws from ``fn`` inside plates of shape ``leading``."""
    return expanded(fn, leading).rsample()


class OutOfScope(Exception):
    """The one pass would compute something else than the Pyro programs: the caller runs them instead."""


class NotReparameterized(OutOfScope):
    """``q(z_t | .)`` has no ``rsample``: ``Trace_ELBO`` would add score-function terms the engine has not."""


def _features_and_contexts(m: SequenceModel, x, mask, initial_state=None):
    """``(x_features, contexts)``: the ``phi_x(x)`` the model's recurrence reads, ``(B, T, F)``, and the
    guide's per-step contexts from ``m.encode`` (overridable; ``None`` without latents). A guide that
    runs the model's recurrence reads ``encode``'s x-features instead: one pass serves both only if
    they are equal, which the base's ``encode`` guarantees and an override is checked for
    (:class:`OutOfScope` otherwise, before anything is drawn)."""
    if not m.has_latents:
        return m.phi_x(x), None
    guide_features, contexts = m.encode(x, mask) if initial_state is None else m.encode(x, mask, initial_state)
    if type(m).encode is SequenceModel.encode:
        return guide_features, contexts.unbind(1)
    features = m.phi_x(x)
    if m.posterior.uses_model_state and not torch.equal(features, guide_features):
        raise OutOfScope("an overridden encode gives the guide other x-features than the model's phi_x(x)")
    return features, contexts.unbind(1)


def _masked_sum(log_prob: torch.Tensor, mask: torch.Tensor | None, dtype) -> torch.Tensor:
    """Sum over time (dim 0) of ``(T, ..., B)`` per-step terms, padded steps zeroed (``mask``: ``(B, T)``)."""
    if mask is not None:
        log_prob = torch.where(mask.t().reshape(mask.shape[1:2] + (1,) * (log_prob.dim() - 2) + mask.shape[:1]),
                               log_prob, log_prob.new_zeros(()))
    return log_prob.to(dtype).sum(0)


def sequence_log_weights(m: SequenceModel, x: torch.Tensor, mask: torch.Tensor | None = None,
                         particles: tuple = (), annealing_factor=1.0, draw=rsample,
                         dtype: torch.dtype | None = None, initial_state=None) -> torch.Tensor:
    """``beta (log p(z | .) - log q(z | x)) + log p(x | z)`` per particle and sequence: ``(*particles, B)``.

    ``z ~ q`` is drawn by ``draw(fn, leading)`` (default: as ``Trace_ELBO`` draws it) for ``leading =
    (*particles, B)``; ``beta`` is ``annealing_factor``; sums over time are taken in ``dtype``
    (default: the model's). ``initial_state``: the state to start from (default ``h_0``), as the
    programs' ``initial_state``. For a model without latents this is ``log p(x)``. Raises
    :class:`NotReparameterized` before drawing anything when ``q`` has no ``rsample``.
    """
    batch_size, num_steps = x.shape[:2]
    dtype = dtype or x.dtype
    leading = tuple(particles) + (batch_size,)
    x_features, contexts = _features_and_contexts(m, x, mask, initial_state)
    recurrence = _recurrence(m, x_features)
    state = m.initial_state((batch_size,), x) if initial_state is None else initial_state
    previous, zs, z_features = [], [], []
    log_q = []
    if m.has_latents:
        posterior = _posterior(m)
        reads_state = m.posterior.uses_model_state
        for t in range(num_steps):
            q = posterior(contexts[t], state)
            if t == 0 and not q.has_rsample:
                raise NotReparameterized(type(q).__name__)
            z = draw(q, leading)
            log_q.append(q.log_prob(z))
            zs.append(z)
            if reads_state:
                previous.append(state)
                z_feature = m.phi_z(z)
                z_features.append(z_feature)
                if t + 1 < num_steps:
                    state = recurrence(t, z_feature, state)
        if not reads_state:  # q never saw h: every z is known, run phi_z once and the recurrence after
            z_features = m.phi_z(torch.stack(zs)).unbind(0)
    if not previous:
        for t in range(num_steps):
            previous.append(state)
            if t + 1 < num_steps:
                state = recurrence(t, z_features[t] if z_features else None, state)
    if torch.is_grad_enabled():
        log_p_x, log_p_z = _batched_log_densities(m, x, previous, zs, z_features, leading)
    else:
        log_p_x, log_p_z = _per_step_log_densities(m, x, previous, zs, z_features, leading)
    total = _masked_sum(log_p_x, mask, dtype)
    if m.has_latents:
        log_q = torch.stack([lq.expand(leading) for lq in log_q])
        latent = _masked_sum(log_p_z, mask, dtype) - _masked_sum(log_q, mask, dtype)
        total = total + (latent * annealing_factor if not _is_one(annealing_factor) else latent)
    return total


@torch.no_grad()
def filtering_state(m: SequenceModel, x: torch.Tensor, mask: torch.Tensor | None = None, initial_state=None,
                    draw=rsample):
    """The model's state after the last step of ``x`` given ``z ~ q(z | x)``, detached: the guide's loop
    without Pyro (``z_t`` drawn as the guide's sites draw them, so a given seed gives the same ``z``),
    from ``initial_state`` (default ``h_0``). Equal to :meth:`~pyro_vrnn.models.SequenceModel.filtering_state`
    for a model the engine supports (:func:`supported_model`; tests/test_windows.py) at ~0.55x its cost
    (19-22 vs 35 ms: a window of 50 steps, batch 8, 88 keys, h 64, one CPU thread); what windowed
    training carries from one window to the next."""
    x, mask = m.check_inputs(x, mask)  # as the programs: the padding selected away before anything reads it
    batch_size, num_steps = x.shape[:2]
    x_features, contexts = _features_and_contexts(m, x, mask, initial_state)
    posterior = _posterior(m) if m.has_latents else None
    recurrence = _recurrence(m, x_features)
    state = m.initial_state((batch_size,), x) if initial_state is None else initial_state
    for t in range(num_steps):
        z_feature = m.phi_z(draw(posterior(contexts[t], state), (batch_size,))) if m.has_latents else None
        state = recurrence(t, z_feature, state)
    return _tree_map(torch.Tensor.detach, state)


def _batched_log_densities(m, x, previous, zs, z_features, leading):
    """``log p(x_t | z_t, h_{t-1})`` and ``log p(z_t | h_{t-1})`` as ``(T, *leading)``, each from one call
    on the states stacked over time. With autograd (training) this beats ``T`` small calls: the
    backward of each network runs once."""
    num_steps = x.shape[1]
    states = _stack_states(previous, leading)
    x_all = x.transpose(0, 1)  # (T, B, X), a view (a reshape would copy it)
    for _ in leading[:-1]:
        x_all = x_all.unsqueeze(1)
    z_feature_all = _stack_states(z_features, leading) if z_features else None
    log_p_x = m.emission_dist(states, z_feature_all).log_prob(x_all.expand((num_steps,) + leading + x.shape[-1:]))
    log_p_z = m.prior_dist(states).log_prob(torch.stack([z.expand(leading + z.shape[-1:]) for z in zs])) \
        if m.has_latents else None
    return log_p_x, log_p_z


def _per_step_log_densities(m, x, previous, zs, z_features, leading):
    """:func:`_batched_log_densities` step by step. Without autograd (importance sampling with many
    particles) stacking ``(T, K, B, H)`` states only adds memory traffic: measured on one CPU thread,
    K = 1000 in chunks of 100, batch 32, T 100, h 64: 9.2 s step by step against 11.7 s batched
    (``benchmarks/importance.py``)."""
    x_steps = x.unbind(1)
    log_p_x, log_p_z = [], []
    for t, state in enumerate(previous):
        z_feature = z_features[t] if z_features else None
        log_p_x.append(m.emission_dist(state, z_feature).log_prob(x_steps[t]).expand(leading))
        if m.has_latents:
            log_p_z.append(m.prior_dist(state).log_prob(zs[t]).expand(leading))
    return torch.stack(log_p_x), (torch.stack(log_p_z) if m.has_latents else None)


def _is_one(value) -> bool:
    return isinstance(value, (int, float)) and value == 1.0


class SequenceELBO(Trace_ELBO):
    """``Trace_ELBO`` (same arguments) that evaluates a :class:`SequenceModel`'s own model/guide in one
    pass (:func:`sequence_log_weights`) and runs ``Trace_ELBO`` itself for anything else.

    The loss, its gradients and the noise drawn for a given seed are ``Trace_ELBO``'s, with or without
    vectorized particles; see the module docstring for when the fast pass applies.
    """

    def _particle_elbos(self, m, args, kwargs):
        """Yield ``(elbo_particle, weight)`` tensors: one vectorized batch, or one per particle."""
        x, mask, annealing_factor, initial_state = _arguments(args, kwargs)
        x, mask = m.check_inputs(x, mask)
        m.register_parameters()
        if self.vectorize_particles:
            log_w = sequence_log_weights(m, x, mask, (self.num_particles,), annealing_factor,
                                         initial_state=initial_state)
            yield log_w.sum() / self.num_particles
        else:
            for _ in range(self.num_particles):
                yield sequence_log_weights(m, x, mask, (), annealing_factor,
                                           initial_state=initial_state).sum() / self.num_particles

    def _fast(self, model, guide, args, kwargs, backward: bool):
        m = supported_model(model, guide, args, kwargs)
        if m is None:
            return None
        loss = 0.0
        try:
            for elbo in self._particle_elbos(m, args, kwargs):
                if backward and elbo.requires_grad:
                    (-elbo).backward(retain_graph=self.retain_graph)
                loss = loss - (torch_item(elbo) if backward else elbo)
        except OutOfScope:
            return None
        return loss

    def loss(self, model, guide, *args, **kwargs):
        with torch.no_grad():
            loss = self._fast(model, guide, args, kwargs, backward=False)
        if loss is None:
            return super().loss(model, guide, *args, **kwargs)
        loss = torch_item(loss)
        warn_if_nan(loss, "loss")
        return loss

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = self._fast(model, guide, args, kwargs, backward=False)
        if loss is None:
            return super().differentiable_loss(model, guide, *args, **kwargs)
        warn_if_nan(loss, "loss")
        return loss

    def loss_and_grads(self, model, guide, *args, **kwargs):
        loss = self._fast(model, guide, args, kwargs, backward=True)
        if loss is None:
            return super().loss_and_grads(model, guide, *args, **kwargs)
        warn_if_nan(loss, "loss")
        return loss
