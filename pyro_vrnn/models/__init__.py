"""Models: :class:`SequenceModel` (:mod:`~pyro_vrnn.models.base`, one method per equation and the
``model``/``guide`` loops over them), the seed configurations (:mod:`~pyro_vrnn.models.seeds`: VRNN,
STORN, RNN, DMM), generation from a model (:mod:`~pyro_vrnn.models.predictive`) and named models
built from JSON specs (:mod:`~pyro_vrnn.models.zoo`).

Imports only :mod:`pyro_vrnn.components`.
"""

from .base import SequenceModel
from .seeds import DMM, RNN, SRNN, STORN, VRNN

__all__ = ["DMM", "RNN", "SRNN", "STORN", "SequenceModel", "VRNN"]
