"""The library's names for its components, in one place.

Each table maps a name (as used by the constructors, :func:`pyro_vrnn.models.zoo.model_spec` and the command line) to a
builder that takes the sizes of the model the component joins:

=============  ==========================================================================
table          names
=============  ==========================================================================
PRIORS         ``conditional`` ``p(z_t | h_{t-1})`` (VRNN), ``standard`` ``N(0, I)`` (STORN)
GUIDES         ``filtering`` ``q(z_t | x_t, h_{t-1})``, ``smoothing`` ``q(z_t | h_{t-1}, x_{>=t})``,
               ``storn`` ``q(z_t | x_{<=t})``
EMISSIONS      ``normal``, ``gmm``, ``bernoulli``, ``autoregressive`` (binary, the keys of a step jointly), ``handwriting``
TRANSITIONS    ``lstm``, ``gru``
=============  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from .emissions import (AutoregressiveBernoulliEmission, BernoulliEmission, GaussianEmission, GMMEmission,
                        HandwritingEmission)
from .guides import FilteringGuide, SmoothingGuide, STORNGuide
from .priors import ConditionalGaussianPrior, StandardNormalPrior
from .transitions import GRUTransition, LSTMTransition


@dataclass(frozen=True)
class Sizes:
    """The sizes a named component is built from.

    ``x_features``/``z_features`` are the widths of ``phi_x``/``phi_z``; ``in_dim`` is the emission's
    input width; ``rnn_dim`` the width of a guide's own RNN (``None``: ``h_dim``).
    """

    x_dim: int
    h_dim: int
    z_dim: int = 0
    x_features: int = 0
    in_dim: int = 0
    rnn_dim: int | None = None
    hidden_dims: tuple = (64,)
    activation: str = "relu"
    num_components: int = 20


PRIORS: dict[str, Callable[[Sizes], nn.Module]] = {
    "conditional": lambda s: ConditionalGaussianPrior(s.h_dim, s.z_dim, s.hidden_dims, s.activation),
    "standard": lambda s: StandardNormalPrior(s.z_dim),
}
GUIDES: dict[str, Callable[[Sizes], nn.Module]] = {
    "filtering": lambda s: FilteringGuide(s.x_features, s.h_dim, s.z_dim, s.hidden_dims, s.activation),
    "smoothing": lambda s: SmoothingGuide(s.x_features, s.h_dim, s.z_dim, s.rnn_dim or s.h_dim, s.hidden_dims,
                                          s.activation),
    "storn": lambda s: STORNGuide(s.x_dim, s.z_dim, s.rnn_dim or s.h_dim, s.hidden_dims, s.activation),
}
EMISSIONS: dict[str, Callable[[Sizes], nn.Module]] = {
    "normal": lambda s: GaussianEmission(s.in_dim, s.x_dim, s.hidden_dims, s.activation),
    "gmm": lambda s: GMMEmission(s.in_dim, s.x_dim, s.num_components, s.hidden_dims, s.activation),
    "bernoulli": lambda s: BernoulliEmission(s.in_dim, s.x_dim, s.hidden_dims, s.activation),
    "autoregressive": lambda s: AutoregressiveBernoulliEmission(s.in_dim, s.x_dim, s.hidden_dims, s.activation),
    "handwriting": lambda s: HandwritingEmission(s.in_dim, s.x_dim, s.num_components, s.hidden_dims, s.activation),
}
TRANSITIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "lstm": LSTMTransition,
    "gru": GRUTransition,
}

TABLES = {"prior": PRIORS, "guide": GUIDES, "emission": EMISSIONS, "transition": TRANSITIONS}


def build(what: str, component, *args):
    """``TABLES[what][component](*args)`` for a name, ``component`` itself for a module.

    Raises ``ValueError`` naming the argument, the value and the names allowed.
    """
    if not isinstance(component, str):
        return component
    table = TABLES[what]
    if component not in table:
        raise ValueError(f"unknown {what} {component!r}; expected one of {', '.join(table)} or a module")
    return table[component](*args)

