"""pyro-vrnn: recurrent latent-variable models of sequences (VRNN, STORN, RNN) as Pyro programs.

The layers, in the order the arrows point (each imports only the ones before it):
:mod:`~pyro_vrnn.data` -> :mod:`~pyro_vrnn.components` (networks, priors, emissions, transitions,
guides) -> :mod:`~pyro_vrnn.models` (``SequenceModel`` and the seed models) -> :mod:`~pyro_vrnn.infer`
(the fast ELBO, importance sampling, SMC, FIVO) -> :mod:`~pyro_vrnn.train` (trainer, schedules,
checkpoints, run folders) -> :mod:`~pyro_vrnn.report` (evaluation, sampling, plots, the comparison
table) -> :mod:`~pyro_vrnn.cli` (one module per command). ``docs/architecture.md`` says more.
"""

from .components.emissions import (BernoulliEmission, GaussianEmission, GMMEmission, HandwritingEmission,
                                   LinearGaussianEmission, AutoregressiveBernoulliEmission)
from .components.guides import FilteringGuide, ResidualGuide, SmoothingGuide, STORNGuide
from .components.nn import MLP, Identity, NoFeatures
from .components.priors import (ConditionalGaussianPrior, GatedTransitionPrior, LinearGaussianPrior,
                                StandardNormalPrior)
from .components.transitions import GRUTransition, IdentityTransition, LSTMTransition
from .infer import FIVO, SMCEstimate, StepScores, score, smc_estimate, smc_log_likelihood
from .infer.importance import (ImportanceEstimate, importance_estimate, importance_log_likelihood,
                               importance_log_weights)
from .models import DMM, RNN, SRNN, STORN, VRNN, SequenceModel
from .models.predictive import Forecast, forecast
from .train.trainer import KLAnnealing, Trainer, fit
from .version import __version__

__all__ = [
    "AutoregressiveBernoulliEmission",
    "BernoulliEmission", "ConditionalGaussianPrior", "DMM", "GatedTransitionPrior", "FilteringGuide", "GaussianEmission", "GMMEmission",
    "GRUTransition", "HandwritingEmission", "Identity", "IdentityTransition", "ImportanceEstimate",
    "LinearGaussianEmission", "LinearGaussianPrior", "LSTMTransition", "MLP", "NoFeatures", "ResidualGuide", "RNN",
    "SequenceModel", "SmoothingGuide", "SRNN", "StandardNormalPrior", "STORN", "STORNGuide", "VRNN",
    "KLAnnealing", "Trainer", "fit", "importance_estimate", "importance_log_likelihood", "importance_log_weights",
    "FIVO", "SMCEstimate", "smc_estimate", "smc_log_likelihood", "StepScores", "score",
    "Forecast", "forecast",
]
