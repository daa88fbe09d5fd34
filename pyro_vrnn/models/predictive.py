"""Drawing ``x`` from a model: the prior predictive, reconstructions under the guide, primed continuations.

Three ways to sample a :class:`~pyro_vrnn.models.SequenceModel`, all built on its own Pyro programs
(no second copy of the recurrence):

- **prior predictive** ``x ~ p(x)``: ``model.model(None, num_steps=T, num_sequences=B)`` is the
  generative program, so ``pyro.infer.Predictive(model.model, num_samples=S)(None, num_steps=T)``
  returns ``S`` draws of every site ``z_{t}`` (``(S, B, Z)``) and ``x_{t}`` (``(S, B, X)``);
- **reconstruction** (:func:`reconstruct`): ``z ~ q(z | x)`` from the guide, then
  ``x'_t ~ p(x_t | z_{<=t}, x_{<t})`` given the *true* past ``x_{<t}`` (teacher forcing);
- **primed generation** (:func:`generate`): the prefix's latents from the guide, the continuation's
  from the prior, optionally at a sampling ``temperature`` (:func:`tempered_sample`);
- **forecasts** (:func:`forecast`): ``S`` primed continuations of each sequence of a padded batch,
  each from the sequence's own last real step, with their mean and quantiles (:class:`Forecast`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.torch_distribution import MaskedDistribution
from pyro.poutine.messenger import Messenger

from ..components.distributions import AutoregressiveBernoulli, BivariateGaussianMixturePen

__all__ = ["Forecast", "PrimedSampling", "forecast", "generate", "reconstruct", "tempered_sample"]


# ---------------------------------------------------------------------------- temperature
#: the highest sampling temperature: noise a thousand times the model's own is already no sample of it,
#: and far above, ``tau * sigma`` leaves float32's range (non-finite samples)
MAX_TEMPERATURE = 1000.0


def _check_temperature(temperature) -> float:
    """``temperature`` as a float in ``[0, MAX_TEMPERATURE]``, else a ``ValueError`` naming it."""
    try:
        value = float(temperature)
    except (TypeError, ValueError, OverflowError):
        value = float("nan")
    if isinstance(temperature, bool) or not math.isfinite(value) or not 0 <= value <= MAX_TEMPERATURE:
        raise ValueError(f"temperature (--temperature) must be a finite number from 0 to {MAX_TEMPERATURE:g} "
                         f"(1: the model's own noise), got {temperature!r}")
    return value


def _tempered(fn, tau: float) -> torch.Tensor:
    if isinstance(fn, (MaskedDistribution, torch.distributions.Independent)):
        return _tempered(fn.base_dist, tau)  # neither changes the shape of a draw
    if isinstance(fn, torch.distributions.Normal):
        return fn.loc.clone() if tau == 0 else fn.loc + tau * fn.scale * torch.randn_like(fn.loc)
    if isinstance(fn, torch.distributions.Bernoulli):
        if tau == 0:
            return (fn.logits > 0).to(fn.logits.dtype)
        return torch.bernoulli(torch.sigmoid(fn.logits / tau))
    if isinstance(fn, torch.distributions.Categorical):
        if tau == 0:
            return fn.logits.argmax(-1)
        return torch.distributions.Categorical(logits=fn.logits / tau).sample()
    if isinstance(fn, torch.distributions.MixtureSameFamily):
        component = _tempered(fn.mixture_distribution, tau)  # (batch)
        draws = _tempered(fn.component_distribution, tau)  # (batch, K, event)
        event_dims = len(fn.event_shape)
        index = component.reshape(component.shape + (1,) * (1 + event_dims))
        index = index.expand(component.shape + (1,) + draws.shape[draws.dim() - event_dims:])
        return draws.gather(-1 - event_dims, index).squeeze(-1 - event_dims)
    if isinstance(fn, BivariateGaussianMixturePen):
        if tau == 0:
            component = fn.logits.argmax(-1)
        else:
            component = torch.distributions.Categorical(logits=fn.logits / tau).sample()
        loc = fn.loc.gather(-2, component[..., None, None].expand(component.shape + (1, 2))).squeeze(-2)
        scale = fn.scale.gather(-2, component[..., None, None].expand(component.shape + (1, 2))).squeeze(-2)
        rho = fn.rho.gather(-1, component[..., None]).squeeze(-1)
        eps = tau * torch.randn_like(loc)
        dx = loc[..., 0] + scale[..., 0] * eps[..., 0]
        dy = loc[..., 1] + scale[..., 1] * (rho * eps[..., 0] + (1 - rho.square()).clamp_min(0).sqrt() * eps[..., 1])
        pen = (fn.pen_logits > 0).to(loc.dtype) if tau == 0 else torch.bernoulli(torch.sigmoid(fn.pen_logits / tau))
        return torch.stack([dx, dy, pen], dim=-1)
    if isinstance(fn, AutoregressiveBernoulli):
        return fn.tempered_sample(tau)
    if isinstance(fn, pyro.distributions.Delta):
        return fn.v.clone()
    raise ValueError(f"temperature {tau} is defined for Normal, Bernoulli, Categorical, MixtureSameFamily, "
                     f"BivariateGaussianMixturePen and AutoregressiveBernoulli sites (possibly masked or Independent), not for "
                     f"{type(fn).__name__}; use temperature=1.0")


def tempered_sample(fn, temperature: float = 1.0) -> torch.Tensor:
    """One draw from ``fn`` at ``temperature`` ``tau >= 0``, of shape ``fn.batch_shape + fn.event_shape``.

    ``tau = 1`` is ``fn()`` itself (the same random numbers as ``pyro.sample``). Otherwise the
    Gaussian noise is scaled by ``tau`` (``N(mu, (tau sigma)^2)``) and discrete choices are drawn
    from ``softmax(logits / tau)``: mixture components, Bernoulli bits (notes, the pen bit). So
    ``tau = 0`` gives the Gaussian mean; for a mixture (GMM, handwriting) the mean of the *most
    likely component*, not the mixture mean (which for a multimodal step is a blur between modes);
    for a Bernoulli the more likely value (probability thresholded at 1/2, so data stay binary).
    Raises ``ValueError`` for other distributions when ``tau != 1``.
    """
    tau = _check_temperature(temperature)
    if tau == 1:
        return fn()
    value = _tempered(fn, tau)
    expected = fn.batch_shape + fn.event_shape
    if value.shape != expected:
        raise ValueError(f"a tempered draw of {type(fn).__name__} has shape {tuple(value.shape)}, expected "
                         f"{tuple(expected)}; use temperature=1.0")
    return value


class PrimedSampling(Messenger):
    """A handler for generation: every unobserved sample site draws at ``temperature``
    (:func:`tempered_sample`), and a site named in ``given`` takes the given value instead.

    ``given`` maps a site name to ``(value, mask)``: ``value`` of the site's shape and ``mask`` of its
    batch shape (or ``None`` for all rows); rows where ``mask`` is False still draw. Sites already
    valued (observed, replayed, conditioned) and a plate's subsample sites are left alone.
    """

    def __init__(self, temperature: float = 1.0, given: dict | None = None):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.given = dict(given or {})

    def _pyro_sample(self, msg):
        if msg["is_observed"] or msg["value"] is not None or not isinstance(msg["fn"], torch.distributions.Distribution):
            return  # valued already, or not a distribution over values (a plate's subsample site)
        value, mask = self.given.get(msg["name"], (None, None))
        if value is not None and (mask is None or bool(mask.all())):
            msg["value"] = value
        else:
            draw = tempered_sample(msg["fn"], self.temperature)
            if value is not None:
                draw = torch.where(mask.reshape(mask.shape + (1,) * len(msg["fn"].event_shape)), value, draw)
            msg["value"] = draw
        msg["done"] = True


# ---------------------------------------------------------------------------- reconstruction
def _positive_int(label, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{label} must be a positive int, got {value!r}")
    return value


@torch.no_grad()
def reconstruct(model, x: torch.Tensor, mask: torch.Tensor | None = None, num_samples: int = 1) -> torch.Tensor:
    """Reconstructions of ``x``: ``(S, B, T, X)`` draws ``x'_t ~ p(x_t | z_{<=t}, x_{<t})`` with ``z ~ q(z | x)``.

    Teacher forcing: each ``x'_t`` is drawn from the emission given the guide's ``z`` and the *true*
    past ``x_{<t}`` (the recurrence reads the data, never the reconstruction), so it shows what the
    model makes of ``x`` one step at a time, not a free-running sequence. Built on ``poutine``:
    the guide is traced inside a ``pyro.plate`` of ``S`` samples (dim -2), the model is replayed on
    that trace with ``x`` observed, and each observed site's emission distribution (an observed
    site returns its observation, so it is drawn here) is sampled. For a model without latents
    these are one-step-ahead predictions. Steps where ``mask`` is False hold draws to ignore.
    """
    num_samples = _positive_int("num_samples", num_samples)
    x, mask = model.check_inputs(x, mask)
    with poutine.block(), pyro.plate("reconstructions", num_samples, dim=-2):
        guide_trace = poutine.trace(model.guide).get_trace(x, mask)
        model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x, mask)
    emissions = [model_trace.nodes[f"x_{t}"]["fn"] for t in range(x.shape[1])]
    return torch.stack([fn.sample() for fn in emissions], dim=-2)


# ---------------------------------------------------------------------------- generation
def _prefix_rows(model, prefix, prefix_mask, num_sequences):
    """``prefix`` as ``(num_sequences, P, X)`` (a single ``(P, X)`` or ``(1, P, X)`` prefix is repeated)."""
    if not isinstance(prefix, torch.Tensor):
        raise ValueError(f"prefix must be a torch.Tensor of shape (P, {model.x_dim}) or (B, P, {model.x_dim}), "
                         f"got {type(prefix).__name__}")
    if prefix.dim() == 2:
        prefix = prefix.unsqueeze(0)
        if isinstance(prefix_mask, torch.Tensor) and prefix_mask.dim() == 1:
            prefix_mask = prefix_mask.unsqueeze(0)
    if prefix.dim() == 3 and prefix.shape[0] != num_sequences:
        if prefix.shape[0] != 1:
            raise ValueError(f"prefix has {prefix.shape[0]} sequences but num_sequences={num_sequences}; give one "
                             f"prefix (continued num_sequences times) or num_sequences prefixes")
        prefix = prefix.expand(num_sequences, -1, -1).contiguous()
        if isinstance(prefix_mask, torch.Tensor) and prefix_mask.dim() == 2 and prefix_mask.shape[0] == 1:
            prefix_mask = prefix_mask.expand(num_sequences, -1).contiguous()
    try:
        return model.check_inputs(prefix, prefix_mask)
    except ValueError as error:
        raise ValueError(f"prefix: {error}") from None


@torch.no_grad()
def generate(model, num_sequences: int, num_steps: int, prefix: torch.Tensor | None = None,
             prefix_mask: torch.Tensor | None = None, temperature: float = 1.0, return_latents: bool = False):
    """Ancestral samples of ``model``, optionally continuing a prefix; see
    :meth:`SequenceModel.generate <pyro_vrnn.models.SequenceModel.generate>`.

    Without a prefix this runs ``model.model(None, num_steps, num_sequences)``. With a prefix
    ``(B, P, X)`` (``B`` is 1 or ``num_sequences``), it traces ``model.guide`` on the prefix, then runs
    ``model.model(None, num_steps=P + num_steps)`` under :class:`PrimedSampling`, which gives the
    sites ``x_{t}`` and ``z_{t}`` of row ``i``'s real prefix steps (``t < L_i``) the prefix and the
    guide's draws: the recurrence filters the prefix with the guide's latents (teacher forcing),
    and every later ``z_t`` comes from the prior. Returns ``x`` ``(N, P + num_steps, X)``, or
    ``(x, z)`` with ``z`` ``(N, P + num_steps, Z)`` (``Z = 0`` without latents).
    """
    num_sequences = _positive_int("num_sequences", num_sequences)
    num_steps = _positive_int("num_steps", num_steps)
    temperature = _check_temperature(temperature)
    if prefix is None and prefix_mask is not None:
        raise ValueError("prefix_mask was given without a prefix")
    given, prefix_steps = {}, 0
    with poutine.block():
        if prefix is not None:
            prefix, prefix_mask = _prefix_rows(model, prefix, prefix_mask, num_sequences)
            prefix_steps = prefix.shape[1]
            with PrimedSampling(temperature):
                guide_trace = poutine.trace(model.guide).get_trace(prefix, prefix_mask)
            masks = prefix_mask.unbind(1) if prefix_mask is not None else (None,) * prefix_steps
            for t in range(prefix_steps):
                given[f"x_{t}"] = (prefix[:, t], masks[t])
                if f"z_{t}" in guide_trace.nodes:
                    given[f"z_{t}"] = (guide_trace.nodes[f"z_{t}"]["value"], masks[t])
        total = prefix_steps + num_steps
        program = poutine.trace(model.model) if return_latents else model.model
        # plain ancestral sampling needs no handler: pyro.sample draws fn() as PrimedSampling would at tau = 1
        with PrimedSampling(temperature, given) if given or temperature != 1 else contextlib.nullcontext():
            x = program(None, num_steps=total, num_sequences=num_sequences)
    if not return_latents:
        return x
    if not model.has_latents:
        return x, x.new_zeros(num_sequences, total, 0)
    return x, torch.stack([program.trace.nodes[f"z_{t}"]["value"] for t in range(total)], dim=-2)


# ---------------------------------------------------------------------------- forecasts
@dataclass
class Forecast:
    """``S`` draws from the posterior predictive of each sequence's next ``H`` steps.

    ``samples`` ``(S, B, H, X)``: draw ``s`` of ``x_{L_b + h}`` for sequence ``b`` (``L_b`` real
    steps), ``h = 0 .. H-1``. :attr:`mean` and :meth:`quantile` summarize over the draws (``(B, H, X)``);
    both are Monte-Carlo estimates from ``S`` draws.
    """

    samples: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        return self.samples.mean(0)

    def quantile(self, q: float) -> torch.Tensor:
        """The ``q``-quantile of the draws (linear interpolation between order statistics), ``(B, H, X)``."""
        return torch.quantile(self.samples, float(q), dim=0)


@torch.no_grad()
def forecast(model, x: torch.Tensor, mask: torch.Tensor | None = None, horizon: int = 1, num_samples: int = 100,
             temperature: float = 1.0) -> Forecast:
    """Posterior-predictive continuations of ``x: (B, T, X)`` (``mask: (B, T)``, real steps first):
    ``x_{L_b + 1 .. L_b + horizon} ~ p(. | x_{1:L_b})``, ``num_samples`` draws per sequence.

    Each draw is :func:`generate` with the sequence as prefix: ``z_{1:L_b} ~ q(z | x_{1:L_b})`` from
    the guide (exact posterior predictive when the guide is the exact posterior), then ``z_t`` and
    ``x_t`` from the model. The ``S x B`` continuations run as one batch; a shorter sequence's
    continuation starts at its own last real step. Returns a :class:`Forecast` (model units: a run's
    data are normalized, see :func:`pyro_vrnn.report.forecasting.forecast_run` for data units).
    """
    horizon = _positive_int("horizon", horizon)
    num_samples = _positive_int("num_samples", num_samples)
    x, mask = model.check_inputs(x, mask)
    batch_size, num_steps = x.shape[:2]
    lengths = mask.sum(1) if mask is not None else torch.full((batch_size,), num_steps, device=x.device)
    prefix = x.repeat(num_samples, 1, 1)                                       # row s * B + b
    prefix_mask = None if mask is None else mask.repeat(num_samples, 1)
    drawn = generate(model, num_samples * batch_size, horizon, prefix=prefix, prefix_mask=prefix_mask,
                     temperature=temperature)                                  # (S B, T + H, X)
    steps = lengths.repeat(num_samples).unsqueeze(1) + torch.arange(horizon, device=x.device)  # (S B, H)
    future = drawn.gather(1, steps.unsqueeze(-1).expand(-1, -1, drawn.shape[-1]))
    return Forecast(samples=future.reshape(num_samples, batch_size, horizon, drawn.shape[-1]))
