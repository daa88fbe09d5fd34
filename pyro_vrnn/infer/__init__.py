"""Inference machinery that lives apart from the Pyro programs: the fast ELBO engine
(:mod:`~pyro_vrnn.infer.engine`)."""

from .engine import SequenceELBO, sequence_log_weights, supported_model

__all__ = ["SequenceELBO", "sequence_log_weights", "supported_model"]
