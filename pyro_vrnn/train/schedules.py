"""Training that converges on purpose: early stopping and a learning-rate schedule, both driven by
the validation objective (negative ELBO per time step, lower is better).

- :class:`EarlyStopping` keeps the best validation loss seen and the step it was seen at, counts the
  validations since then that did not improve on it by more than ``min_delta``, and says stop once
  that count reaches ``patience`` (``patience = 0``: never stop, only track the best).
- :class:`PlateauSchedule` describes torch's ``ReduceLROnPlateau`` (``lr <- max(factor * lr, min_lr)``
  after ``patience`` validations without relative improvement ``threshold``) and builds it as Pyro's
  :class:`pyro.optim.ReduceLROnPlateau` around Pyro's own clipped Adam, so each parameter keeps its
  gradient clipping and its ``lrd`` decay; every parameter's scheduler sees the same validation
  losses, so all learning rates move together.

Both are plain state that :class:`~pyro_vrnn.training.Trainer` saves in its ``state_dict``, so a
resumed run stops, and lowers its learning rate, at exactly the step the uninterrupted run would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro.optim
from pyro.optim.clipped_adam import ClippedAdam as _ClippedAdamTorch


@dataclass
class EarlyStopping:
    """Stop after ``patience`` validations in a row that improve the best loss by no more than ``min_delta``.

    ``update(step, loss)`` records one validation and returns whether it is a new best;
    ``should_stop`` is then ``patience > 0 and bad_validations >= patience``.
    """

    patience: int = 0
    min_delta: float = 0.0
    best: float = math.inf
    best_step: int | None = None
    bad_validations: int = 0

    def __post_init__(self):
        if not int(self.patience) >= 0:
            raise ValueError(f"early-stopping patience must be >= 0 validations, got {self.patience}")
        if not float(self.min_delta) >= 0:
            raise ValueError(f"early-stopping min_delta must be >= 0, got {self.min_delta}")

    def update(self, step: int, loss: float) -> bool:
        """Record the validation ``loss`` at ``step``; ``True`` if it is the best so far."""
        if math.isfinite(loss) and loss < self.best - self.min_delta:
            self.best, self.best_step, self.bad_validations = float(loss), int(step), 0
            return True
        self.bad_validations += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_validations >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.best_step = None if state["best_step"] is None else int(state["best_step"])
        self.bad_validations = int(state["bad_validations"])


@dataclass(frozen=True)
class PlateauSchedule:
    """``lr <- max(factor * lr, min_lr)`` once ``patience`` validations in a row have not improved
    the best validation loss by a relative ``threshold`` (torch's ``ReduceLROnPlateau``, mode ``min``)."""

    factor: float = 0.5
    patience: int = 3
    min_lr: float = 0.0
    threshold: float = 1e-4

    def __post_init__(self):
        if not 0.0 < float(self.factor) < 1.0:
            raise ValueError(f"factor, the learning-rate factor (--lr-factor), must be in (0, 1), got {self.factor}")
        if not int(self.patience) >= 0:
            raise ValueError(f"patience, the learning-rate patience (--lr-patience), must be >= 0, got {self.patience}")
        if not float(self.min_lr) >= 0.0:
            raise ValueError(f"min_lr, the minimal learning rate (--min-lr), must be >= 0, got {self.min_lr}")

    def optimizer(self, adam_args: dict) -> pyro.optim.PyroLRScheduler:
        """Pyro's per-parameter ``ReduceLROnPlateau`` around clipped Adam with ``adam_args``
        (``lr``, ``betas``, ``lrd``, ``clip_norm``, ``weight_decay``)."""
        return pyro.optim.ReduceLROnPlateau({
            "optimizer": _ClippedAdamTorch, "optim_args": dict(adam_args), "mode": "min",
            "factor": self.factor, "patience": self.patience, "min_lr": self.min_lr, "threshold": self.threshold})
