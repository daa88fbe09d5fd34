"""Inference machinery that lives apart from the Pyro programs: the fast ELBO engine
(:mod:`~pyro_vrnn.infer.engine`), sequential Monte Carlo (:mod:`~pyro_vrnn.infer.smc`) and the FIVO
objective (:mod:`~pyro_vrnn.infer.fivo`)."""

from .engine import SequenceELBO, sequence_log_weights, supported_model
from .fivo import FIVO
from .smc import SMCEstimate, smc_estimate, smc_log_likelihood

__all__ = ["FIVO", "SMCEstimate", "SequenceELBO", "sequence_log_weights", "smc_estimate", "smc_log_likelihood",
           "supported_model"]
