"""Inference machinery that lives apart from the Pyro programs: the fast ELBO engine
(:mod:`~pyro_vrnn.infer.engine`), importance sampling (:mod:`~pyro_vrnn.infer.importance`),
sequential Monte Carlo (:mod:`~pyro_vrnn.infer.smc`) and its per-step scores
(:mod:`~pyro_vrnn.infer.scores`) and the FIVO objective
(:mod:`~pyro_vrnn.infer.fivo`). Imports :mod:`pyro_vrnn.models` and :mod:`pyro_vrnn.components`."""

from .engine import SequenceELBO, sequence_log_weights, supported_model
from .fivo import FIVO
from .importance import (ImportanceEstimate, importance_estimate, importance_log_likelihood, importance_log_weights)
from .scores import StepScores, score
from .smc import SMCEstimate, smc_estimate, smc_log_likelihood

__all__ = ["FIVO", "ImportanceEstimate", "SMCEstimate", "SequenceELBO", "StepScores", "importance_estimate",
           "importance_log_likelihood", "importance_log_weights", "sequence_log_weights", "smc_estimate",
           "score", "smc_log_likelihood", "supported_model"]
