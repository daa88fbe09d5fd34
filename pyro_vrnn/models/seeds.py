"""The seed models as configurations of :class:`~pyro_vrnn.models.base.SequenceModel`: the VRNN
(Chung et al. 2015), STORN (Bayer & Osendorfer 2014), the RNN baselines, Pyro's Deep Markov Model and
the SRNN (Fraccaro et al. 2016).

Each is a constructor that picks components (by name from :mod:`pyro_vrnn.components.registry`, or
as modules) and, where the paper's equations differ from the base's, overrides small one-step methods
(STORN: ``model_step``; the DMM, whose prior and guide read different initial latents: its one-step
methods; SRNN: the state, prior, emission, guide context and posterior), never the loops.
"""

from __future__ import annotations

import pyro
import pyro.poutine as poutine
import torch
from torch import nn

from ..components.guides import CombinerGuide, ResidualGuide
from ..components.nn import MLP, Identity, broadcast_cat
from ..components.priors import ConditionalGaussianPrior, GatedTransitionPrior
from ..components.registry import Sizes, build
from ..components.transitions import IdentityTransition
from .base import SequenceModel, _masked


def _positive(label, value):
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{label} must be a positive integer, got {value}")
    return int(value)


def _latent_parts(x_dim, z_dim, h_dim, emission, prior, guide, transition, phi_x, phi_z, feature_dims, hidden_dims,
                  activation, num_components, rnn_dim, emission_reads_z=True):
    """Build the named components of a latent model around ``phi_x``/``phi_z`` of the given widths."""
    x_dim, z_dim, h_dim = _positive("x_dim", x_dim), _positive("z_dim", z_dim), _positive("h_dim", h_dim)
    phi_x = phi_x if phi_x is not None else MLP(x_dim, tuple(feature_dims), activation)
    phi_z = phi_z if phi_z is not None else MLP(z_dim, tuple(feature_dims), activation)
    transition = build("transition", transition, phi_x.out_dim + phi_z.out_dim, h_dim)
    h_dim = transition.hidden_dim
    sizes = Sizes(x_dim=x_dim, h_dim=h_dim, z_dim=z_dim, x_features=phi_x.out_dim,
                  in_dim=(phi_z.out_dim if emission_reads_z else 0) + h_dim, rnn_dim=rnn_dim,
                  hidden_dims=tuple(hidden_dims), activation=activation, num_components=num_components)
    return dict(phi_x=phi_x, phi_z=phi_z, transition=transition, prior=build("prior", prior, sizes),
                posterior=build("guide", guide, sizes), emission=build("emission", emission, sizes))


class VRNN(SequenceModel):
    """Variational RNN (Chung et al. 2015).

    ``p(z_t | h_{t-1}) = N(mu_0(h), sigma_0(h)^2)``, ``p(x_t | z_t, h_{t-1})`` from
    ``[phi_z(z_t), h_{t-1}]``, ``h_t = LSTM([phi_x(x_t), phi_z(z_t)], h_{t-1})`` and the filtering guide
    ``q(z_t | x_t, h_{t-1})``. Every piece can be replaced: ``prior="standard"`` (or any prior
    module), ``guide="smoothing"`` / ``"storn"`` (or any guide component), ``transition="gru"``,
    ``emission="gmm"`` / ``"bernoulli"`` / ``"handwriting"`` (or any emission module).
    With ``prior="standard"`` it is the VRNN paper's VRNN-I (only the prior changes; its encoder,
    decoder and recurrence are the VRNN's).

    Sizes: ``feature_dims`` are the hidden widths of ``phi_x`` and ``phi_z`` (the paper: four layers
    of 600), ``hidden_dims`` those of the prior, guide and emission heads.
    """

    def __init__(self, x_dim: int, z_dim: int, h_dim: int, emission="normal", *, prior="conditional",
                 guide="filtering", transition="lstm", phi_x=None, phi_z=None, feature_dims=(64,), hidden_dims=(64,),
                 activation="relu", num_components: int = 20, rnn_dim: int | None = None, name: str | None = None):
        parts = _latent_parts(x_dim, z_dim, h_dim, emission, prior, guide, transition, phi_x, phi_z, feature_dims,
                              hidden_dims, activation, num_components, rnn_dim)
        super().__init__(x_dim, name=name, **parts)


class STORN(SequenceModel):
    """Stochastic recurrent network (Bayer & Osendorfer 2014).

    ``z_t ~ N(0, I)``; the generating RNN takes ``x_{t-1}`` and ``z_t``,
    ``h_t = f([phi_x(x_{t-1}), phi_z(z_t)], h_{t-1})`` (``x_0 = 0``), and emits ``p(x_t | h_t)``; the
    recognition model ``q(z_t | x_{<=t})`` is its own RNN over ``x`` (variance the square of the
    net's output). The model state is ``(h_{t-1}, phi_x(x_{t-1}))``; only :meth:`model_step` differs
    from the VRNN's. Same keyword overrides as :class:`VRNN`; the guide must not read the model's
    state (``"storn"`` or a component with ``uses_model_state = False``).
    """

    def __init__(self, x_dim: int, z_dim: int, h_dim: int, emission="normal", *, prior="standard",
                 guide="storn", transition="lstm", phi_x=None, phi_z=None, feature_dims=(64,), hidden_dims=(64,),
                 activation="relu", num_components: int = 20, rnn_dim: int | None = None, name: str | None = None):
        parts = _latent_parts(x_dim, z_dim, h_dim, emission, prior, guide, transition, phi_x, phi_z, feature_dims,
                              hidden_dims, activation, num_components, rnn_dim, emission_reads_z=False)
        if parts["posterior"].uses_model_state:
            raise ValueError("STORN's guide must not read the model's state (its state carries x_{t-1}); "
                             "use guide='storn' or a component with uses_model_state = False")
        super().__init__(x_dim, name=name, **parts)

    def initial_state(self, batch_shape, like):
        """``(h_0, phi_x(x_0))`` with ``h_0 = 0`` and ``x_0 = 0``."""
        x_0 = like.new_zeros(tuple(batch_shape) + (self.x_dim,))
        return self.transition.initial_state(batch_shape, like), self.phi_x(x_0)

    def prior_dist(self, state):
        """``p(z_t) = N(0, I)`` (the prior component, shaped like the batch)."""
        return self.prior(self.transition.output(state[0]))

    def model_step(self, t: int, state, x_t=None, mask_t=None, annealing_factor=1.0):
        """``z_t ~ N(0, I)``, ``h_t = f([phi_x(x_{t-1}), phi_z(z_t)], h_{t-1})``, ``x_t ~ p(x_t | h_t)``."""
        h_prev, x_prev_feature = state
        with poutine.scale(scale=annealing_factor):
            z_t = pyro.sample(f"z_{t}", _masked(self.prior_dist(state), mask_t))
        h_t = self.next_state(h_prev, x_prev_feature, self.phi_z(z_t))
        x_t = pyro.sample(f"x_{t}", _masked(self.emission(self.transition.output(h_t)), mask_t), obs=x_t)
        return (h_t, self.phi_x(x_t)), x_t


class RNN(SequenceModel):
    """The deterministic baseline: ``p(x_t | h_{t-1})`` and ``h_t = LSTM(phi_x(x_t), h_{t-1})``.

    No latents: :meth:`guide` samples nothing and the log-likelihood is exact.
    """

    def __init__(self, x_dim: int, h_dim: int, emission="normal", *, transition="lstm", phi_x=None,
                 feature_dims=(64,), hidden_dims=(64,), activation="relu", num_components: int = 20,
                 name: str | None = None):
        x_dim, h_dim = _positive("x_dim", x_dim), _positive("h_dim", h_dim)
        phi_x = phi_x if phi_x is not None else MLP(x_dim, tuple(feature_dims), activation)
        transition = build("transition", transition, phi_x.out_dim, h_dim)
        sizes = Sizes(x_dim=x_dim, h_dim=transition.hidden_dim, in_dim=transition.hidden_dim,
                      hidden_dims=tuple(hidden_dims), activation=activation, num_components=num_components)
        super().__init__(x_dim, phi_x=phi_x, transition=transition, emission=build("emission", emission, sizes),
                         name=name)


class DMM(SequenceModel):
    """Pyro's Deep Markov Model (Krishnan et al. 2017) as ``examples/dmm.py`` defines it, from the
    library's components (its optional IAF left out)::

        p(z_t | z_{t-1})          GatedTransitionPrior (the example's GatedTransition), z_0 learned
        p(x_t | z_t)              an emission reading z_t alone: Bernoulli on music (the example's Emitter:
                                  two ReLU layers of ``emission_dims``, then sigmoid probabilities), else Normal
        q(z_t | z_{t-1}, x_{t:T}) CombinerGuide: a ReLU RNN over the reversed sequence (h_0 learned) and
                                  (tanh(W z_{t-1} + b) + a_t) / 2, z_{t-1} = z_q_0 (learned) at the first step

    The example's defaults: z 100, ``emission_dims`` (100, 100), ``transition_dim`` 200, ``rnn_dim``
    600: 725,488 parameters at ``x_dim`` 88. The state is ``(z_{t-1} as the prior reads it, z_{t-1} as
    the guide reads it)``: both are the sampled ``z_{t-1}`` after the first step and differ only at it
    (``z_0`` and ``z_q_0``). Where it differs from the example: every scale is ``softplus + floor``
    (``scale_floor``, default 1e-3; the example's unfloored softplus underflows to 0 and gives NaNs;
    ``scale_floor=0`` is the example's formula, under which tests/test_dmm.py holds the loss and gradients
    equal to an independent plain-Pyro reference written from the example's published description).
    """

    def __init__(self, x_dim: int, z_dim: int = 100, emission="bernoulli", *, transition_dim: int = 200,
                 emission_dims=(100, 100), rnn_dim: int = 600, activation="relu", scale_floor: float = 1e-3,
                 name: str | None = None):
        x_dim, z_dim = _positive("x_dim", x_dim), _positive("z_dim", z_dim)
        sizes = Sizes(x_dim=x_dim, h_dim=z_dim, z_dim=z_dim, in_dim=z_dim, hidden_dims=tuple(emission_dims),
                      activation=activation)
        emission = build("emission", emission, sizes)
        super().__init__(x_dim, phi_x=Identity(x_dim), phi_z=Identity(z_dim), transition=IdentityTransition(z_dim),
                         prior=GatedTransitionPrior(z_dim, _positive("transition_dim", transition_dim), scale_floor),
                         emission=emission,
                         posterior=CombinerGuide(x_dim, z_dim, _positive("rnn_dim", rnn_dim), scale_floor),
                         name=name)
        self.z_0 = nn.Parameter(torch.zeros(z_dim))
        self.z_q_0 = nn.Parameter(torch.zeros(z_dim))

    def _check_sizes(self):  # the recurrence reads z_t alone
        if getattr(self.emission, "x_dim", self.x_dim) != self.x_dim:
            raise ValueError(f"emission models x_dim={self.emission.x_dim} but the model has x_dim={self.x_dim}")

    def initial_state(self, batch_shape, like):
        """``(z_0, z_q_0)``: the ``z_{t-1}`` the prior and the guide read at the first step (learned)."""
        shape = tuple(batch_shape) + (self.z_dim,)
        return self.z_0.expand(shape), self.z_q_0.expand(shape)

    def prior_dist(self, state):
        """``p(z_t | z_{t-1})``."""
        return self.prior(state[0])

    def emission_dist(self, state, z_feature):
        """``p(x_t | z_t)``."""
        return self.emission(z_feature)

    def posterior_dist(self, state, context_t):
        """``q(z_t | z_{t-1}, x_{t:T})`` (``context_t`` is the backward RNN's ``a_t``)."""
        return self.posterior(context_t, state[1])

    def next_state(self, state, x_feature, z_feature):
        """``z_t`` for both: the DMM is first-order Markov in ``z``."""
        return z_feature, z_feature


class SRNN(SequenceModel):
    """Stochastic RNN (Fraccaro et al. 2016, "Sequential neural models with stochastic layers")::

        d_t = f(d_{t-1}, phi_x(x_{t-1}))              the transition, a deterministic forward RNN
                                                      (d_0 = 0, x_0 = 0)
        p(z_t | z_{t-1}, d_t)   = N(mu_p, sigma_p^2)   a Gaussian head over [d_t, z_{t-1}]    (z_0 = 0)
        p(x_t | z_t, d_t)                             the emission over [z_t, d_t]
        q(z_t | z_{t-1}, a_t)   = N(mu_p + mu_res, sigma_q^2)   ResidualGuide ("Resq"),
                                  a_t = g(a_{t+1}, [d_t, x_t])  a backward RNN

    The state at step ``t`` is ``(D_t, z_{t-1})``: the transition's state whose output is ``d_t``
    (``d_t`` reads ``x_{<t}`` only) and the last latent. The loops are the base's; the one-step
    methods :meth:`initial_state`, :meth:`prior_dist`, :meth:`emission_dist`, :meth:`next_state`,
    :meth:`encode` (``d_{1:T}`` then ``a_{1:T}``) and :meth:`posterior_dist` (the prior's mean plus the
    residual) are the paper's equations. The guide runs the model's recurrence (``d_t``, ``z_{t-1}``).
    On a window of a longer sequence (``--train-window``) ``d`` continues from the carried state, but
    ``a_t`` reads ``[d, x]`` up to the window's end only.

    Sizes: ``h_dim`` is ``d``'s width, ``rnn_dim`` ``a``'s (default ``h_dim``), ``feature_dims`` those
    of ``phi_x``, ``hidden_dims`` those of the prior, guide and emission heads.
    """

    def __init__(self, x_dim: int, z_dim: int, h_dim: int, emission="normal", *, transition="lstm", phi_x=None,
                 feature_dims=(64,), hidden_dims=(64,), activation="relu", num_components: int = 20,
                 rnn_dim: int | None = None, name: str | None = None):
        x_dim, z_dim, h_dim = _positive("x_dim", x_dim), _positive("z_dim", z_dim), _positive("h_dim", h_dim)
        phi_x = phi_x if phi_x is not None else MLP(x_dim, tuple(feature_dims), activation)
        transition = build("transition", transition, phi_x.out_dim, h_dim)
        h_dim = transition.hidden_dim
        sizes = Sizes(x_dim=x_dim, h_dim=h_dim, z_dim=z_dim, in_dim=z_dim + h_dim, hidden_dims=tuple(hidden_dims),
                      activation=activation, num_components=num_components)
        super().__init__(x_dim, phi_x=phi_x, phi_z=Identity(z_dim), transition=transition,
                         prior=ConditionalGaussianPrior(h_dim + z_dim, z_dim, tuple(hidden_dims), activation),
                         emission=build("emission", emission, sizes),
                         posterior=ResidualGuide(h_dim + x_dim, z_dim, rnn_dim or h_dim, tuple(hidden_dims),
                                                 activation), name=name)

    def _check_sizes(self):  # the recurrence reads phi_x(x_{t-1}) alone
        if self.transition.input_dim != self.phi_x.out_dim:
            raise ValueError(f"transition expects {self.transition.input_dim} input features but phi_x gives "
                             f"{self.phi_x.out_dim}")
        if getattr(self.emission, "x_dim", self.x_dim) != self.x_dim:
            raise ValueError(f"emission models x_dim={self.emission.x_dim} but the model has x_dim={self.x_dim}")

    def initial_state(self, batch_shape, like):
        """``(D_1, z_0)``: ``d_1 = f(d_0 = 0, phi_x(x_0 = 0))`` and ``z_0 = 0``."""
        x_0 = like.new_zeros(tuple(batch_shape) + (self.x_dim,))
        d_1 = self.transition(self.phi_x(x_0), self.transition.initial_state(batch_shape, like))
        return d_1, like.new_zeros(tuple(batch_shape) + (self.z_dim,))

    def prior_dist(self, state):
        """``p(z_t | z_{t-1}, d_t)``."""
        d_state, z_prev = state
        return self.prior(broadcast_cat([self.transition.output(d_state), z_prev]))

    def emission_dist(self, state, z_feature):
        """``p(x_t | z_t, d_t)`` from ``[z_t, d_t]``."""
        return self.emission(broadcast_cat([z_feature, self.transition.output(state[0])]))

    def next_state(self, state, x_feature, z_feature):
        """``(D_{t+1}, z_t)`` with ``d_{t+1} = f(d_t, phi_x(x_t))``."""
        return self.transition(x_feature, state[0]), z_feature

    def encode(self, x, mask=None, initial_state=None):
        """``phi_x(x)`` and ``a_t = g(a_{t+1}, [d_t, x_t])`` for all steps, ``d_t`` run from ``initial_state``."""
        x_features = self.phi_x(x)
        batch_size, num_steps = x.shape[:2]
        d_state = self._start(initial_state, batch_size, x)[0]
        stepper = getattr(self.transition, "stepper", None)
        step = stepper(x_features) if stepper is not None else \
            (lambda t, _, s: self.transition(x_features[:, t], s))
        ds = []
        for t in range(num_steps):
            ds.append(self.transition.output(d_state))
            if t + 1 < num_steps:
                d_state = step(t, None, d_state)
        d = torch.stack(ds, 1)
        return x_features, self.posterior.encode(x, torch.cat([d, x], -1), mask)

    def posterior_dist(self, state, context_t):
        """``q(z_t | z_{t-1}, a_t)``: mean ``mu_p(d_t, z_{t-1}) + mu_res(a_t, z_{t-1})`` ("Resq")."""
        return self.posterior(context_t, state[1], self.prior_dist(state).mean)
