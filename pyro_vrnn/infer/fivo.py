"""FIVO: the filtering variational objective (Maddison et al. 2017), a training loss for a
:class:`~pyro_vrnn.models.SequenceModel`.

The bound is the log of the SMC estimate of :mod:`~pyro_vrnn.infer.smc`, with ``K`` particles
proposed by the model's own guide component::

    FIVO(x) = E[ log p_hat_K(x) ] <= log p(x),     loss = - sum_sequences log p_hat_K(x)

With ``K = 1`` it is the ELBO; without resampling (``ess_threshold=0``) it is the IWAE bound.

**Windows** (``--train-window N``): on a window of a longer sequence the filter starts from the
``K`` particles the previous window ended in (``initial_state``, leaves ``(K, B, D)``), resampled by
their final weights and detached (:meth:`FIVO.window_end_state`), so an update costs a window's
filter; the bound per window is ``log p_hat(x_window | particles)``, and the sum over the windows is
the whole sequence's FIVO with resampling forced at the window ends. With one window it is the FIVO
of the whole sequence.
Gradients flow through the reparameterized proposals, the weights and the states each particle
carries (also through resampled ones, whose ancestors' states are gathered); the ancestor draws are
discrete and their score-function terms are dropped, as Maddison et al. (sec. 4) do: the gradient
is biased but of low variance.
"""

from __future__ import annotations

import warnings

import torch
from pyro.infer import ELBO
from pyro.infer.util import torch_item
from pyro.util import warn_if_nan

from ..models import SequenceModel
from .smc import SequenceNoise, _check_options, carry_particles, particle_filter, sequence_seeds


class FIVO(ELBO):
    """``loss`` / ``differentiable_loss`` / ``loss_and_grads`` like a Pyro ELBO, for
    ``(model.model, model.guide, x, mask, annealing_factor=1.0)`` of one :class:`SequenceModel`.

    Args:
        num_particles: ``K``, the particles of the filter (vectorized).
        ess_threshold, resampling: as in :func:`~pyro_vrnn.infer.smc.smc_estimate` (FIVO resamples
            when ``ESS < K / 2``, systematically).
        max_plate_nesting, vectorize_particles: accepted for the ELBO interface; the particles are
            always one vectorized batch.

    The proposal is the model's guide component ``q(z_t | c_t, h_{t-1})``, so the guide passed in
    must be the model's own ``guide``. ``annealing_factor`` other than 1 scales the latent terms of
    every weight, inside the log-mean-exp: that is not KL annealing (nor a bound), and is warned about.
    """

    def __init__(self, num_particles: int = 4, max_plate_nesting=float("inf"), vectorize_particles: bool = True,
                 *, ess_threshold: float = 0.5, resampling: str = "systematic", **kwargs):
        super().__init__(num_particles=num_particles, max_plate_nesting=max_plate_nesting,
                         vectorize_particles=vectorize_particles, **kwargs)
        self.ess_threshold, self.resampling = float(ess_threshold), resampling
        _check_options(None, num_particles, 1, "guide", resampling, ess_threshold)

    def _sequence_model(self, model, guide) -> SequenceModel:
        m = getattr(model, "__self__", None)
        if not isinstance(m, SequenceModel) or getattr(model, "__func__", None) is not type(m).model:
            raise ValueError(f"FIVO needs a SequenceModel's own model (e.g. vrnn.model), got {model!r}")
        if getattr(guide, "__self__", None) is not m or getattr(guide, "__func__", None) is not type(m).guide:
            raise ValueError(f"FIVO proposes from the model's own guide component (posterior_dist); the guide "
                             f"must be that model's guide (e.g. vrnn.guide), got {guide!r}")
        return m

    def differentiable_loss(self, model, guide, x, mask=None, annealing_factor=1.0, initial_state=None):
        """``- sum_b log p_hat_K(x_b)``, differentiable in the model's and guide's parameters
        (``initial_state``: the particles a window starts from, see the module docstring)."""
        m = self._sequence_model(model, guide)
        if annealing_factor != 1.0:
            warnings.warn("KL annealing with the fivo objective scales log p(z) - log q(z) inside the SMC "
                          "weights: that is not KL annealing (nor a bound); use annealing_factor=1 "
                          "(--kl-anneal-steps 0) with fivo", UserWarning)
        m.register_parameters()
        result = self._filter(m, x, mask, annealing_factor, initial_state)
        loss = -result.log_z.sum()
        warn_if_nan(loss, "loss")
        return loss

    def _filter(self, m, x, mask, annealing_factor, initial_state):
        x, mask = m.check_inputs(x, mask)
        noise = SequenceNoise(sequence_seeds(None, x.shape[0]), x.device)
        return particle_filter(m, x, mask, num_particles=self.num_particles, proposal="guide",
                               resampling=self.resampling, ess_threshold=self.ess_threshold, noise=noise,
                               annealing_factor=annealing_factor, initial_state=initial_state)

    @torch.no_grad()
    def window_end_state(self, model, guide, x, mask=None, annealing_factor=1.0, initial_state=None):
        """The particles a window hands to the next: the filter run on the window ``x`` from
        ``initial_state`` (after the update, without gradients), then every particle resampled by the
        final weights (:func:`~pyro_vrnn.infer.smc.carry_particles`); leaves ``(K, B, D)``, detached."""
        m = self._sequence_model(model, guide)
        result = self._filter(m, x, mask, annealing_factor, initial_state)
        shape = (1, x.shape[0], 1 if self.resampling == "systematic" else self.num_particles)
        uniforms = torch.rand(shape, dtype=torch.float64, device=x.device)
        return carry_particles(result, uniforms, self.resampling)

    def _get_trace(self, model, guide, args, kwargs):
        raise NotImplementedError("FIVO runs the particle filter of pyro_vrnn.infer.smc, not per-particle "
                                  "model/guide traces")

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return torch_item(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward(retain_graph=self.retain_graph)
        return torch_item(loss)
