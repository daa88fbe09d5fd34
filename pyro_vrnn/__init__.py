"""pyro-vrnn: recurrent latent-variable models of sequences (VRNN, STORN, RNN) as Pyro programs.

The pieces, in the order the arrows point: components (:mod:`~pyro_vrnn.nn`,
:mod:`~pyro_vrnn.priors`, :mod:`~pyro_vrnn.emissions`, :mod:`~pyro_vrnn.transitions`,
:mod:`~pyro_vrnn.guides`) -> models (:mod:`~pyro_vrnn.models`) -> inference
(:mod:`~pyro_vrnn.training`, :mod:`~pyro_vrnn.importance`).
"""

from .emissions import BernoulliEmission, GaussianEmission, GMMEmission, HandwritingEmission, LinearGaussianEmission
from .guides import FilteringGuide, SmoothingGuide, STORNGuide
from .importance import ImportanceEstimate, importance_estimate, importance_log_likelihood, importance_log_weights
from .infer import FIVO, SMCEstimate, smc_estimate, smc_log_likelihood
from .models import DMM, RNN, STORN, VRNN, SequenceModel
from .nn import MLP, Identity, NoFeatures
from .priors import ConditionalGaussianPrior, GatedTransitionPrior, LinearGaussianPrior, StandardNormalPrior
from .training import KLAnnealing, Trainer, fit
from .transitions import GRUTransition, IdentityTransition, LSTMTransition

__version__ = "0.1.0"

__all__ = [
    "BernoulliEmission", "ConditionalGaussianPrior", "DMM", "GatedTransitionPrior", "FilteringGuide", "GaussianEmission", "GMMEmission",
    "GRUTransition", "HandwritingEmission", "Identity", "IdentityTransition", "ImportanceEstimate",
    "LinearGaussianEmission", "LinearGaussianPrior", "LSTMTransition", "MLP", "NoFeatures", "RNN",
    "SequenceModel", "SmoothingGuide", "StandardNormalPrior", "STORN", "STORNGuide", "VRNN",
    "KLAnnealing", "Trainer", "fit", "importance_estimate", "importance_log_likelihood", "importance_log_weights",
    "FIVO", "SMCEstimate", "smc_estimate", "smc_log_likelihood",
]
