"""The pieces a model is built from, one equation each, all accepting extra leading batch dims.

- :mod:`~pyro_vrnn.components.nn`: feature networks ``phi_x``, ``phi_z`` (``MLP``, ``Identity``, ``NoFeatures``);
- :mod:`~pyro_vrnn.components.heads`: ``GaussianHead`` (loc and floored softplus scale), ``StepIndependent``;
- :mod:`~pyro_vrnn.components.priors`: ``p(z_t | h_{t-1})``;
- :mod:`~pyro_vrnn.components.emissions`: ``p(x_t | z_t, h_{t-1})``;
- :mod:`~pyro_vrnn.components.distributions`: the handwriting emission's bivariate mixture with a pen bit, an autoregressive density over binary keys;
- :mod:`~pyro_vrnn.components.transitions`: ``h_t = f(phi_x(x_t), phi_z(z_t), h_{t-1})``;
- :mod:`~pyro_vrnn.components.guides`: ``q(z_t | ...)``;
- :mod:`~pyro_vrnn.components.registry`: the names by which models and the command line pick them.

Nothing here imports the models, inference or training.
"""

from .distributions import AutoregressiveBernoulli
from .emissions import (BernoulliEmission, GaussianEmission, GMMEmission, HandwritingEmission,
                        LinearGaussianEmission, AutoregressiveBernoulliEmission)
from .guides import FilteringGuide, ResidualGuide, SmoothingGuide, STORNGuide
from .nn import MLP, Identity, NoFeatures
from .priors import (ConditionalGaussianPrior, GatedTransitionPrior, LinearGaussianPrior, StandardNormalPrior)
from .transitions import GRUTransition, IdentityTransition, LSTMTransition

__all__ = [
    "AutoregressiveBernoulli", "AutoregressiveBernoulliEmission",
    "BernoulliEmission", "ConditionalGaussianPrior", "FilteringGuide", "GatedTransitionPrior", "GaussianEmission",
    "GMMEmission", "GRUTransition", "HandwritingEmission", "Identity", "IdentityTransition", "LinearGaussianEmission",
    "LinearGaussianPrior", "LSTMTransition", "MLP", "NoFeatures", "ResidualGuide", "SmoothingGuide", "StandardNormalPrior",
    "STORNGuide",
]
