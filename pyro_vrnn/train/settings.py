"""A run's training settings as one object, and the one place a trainer is built from them.

:class:`TrainingSettings` holds every knob of a run's training (the ``"training"`` entry of its
``config.json``), checks them once, and :meth:`TrainingSettings.build_trainer` turns them into a
:class:`~pyro_vrnn.train.trainer.Trainer`: the objective (:func:`~pyro_vrnn.train.trainer.make_elbo`,
under :class:`~pyro_vrnn.train.precision.AutocastELBO` for ``bf16``), KL annealing, early stopping and
the learning-rate schedule (:class:`~pyro_vrnn.train.schedules.PlateauSchedule`). The command line,
:func:`~pyro_vrnn.train.runs.train_run` and :func:`~pyro_vrnn.report.compare.compare` all go
through it, so a setting means the same wherever a run starts or resumes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .precision import AutocastELBO, check_precision
from .schedules import PlateauSchedule
from .trainer import KLAnnealing, Trainer, make_elbo

#: ``lr_schedule`` values: ``"none"`` (a constant rate) or ``"plateau"`` (``lr_factor``, ``lr_patience``, ``min_lr``)
LR_SCHEDULES = ("none", "plateau")
#: training settings that may change when a run is resumed (the others must stay as they were);
#: a larger ``patience`` lets a run that stopped early go on
RESUMABLE_CHANGES = ("steps", "valid_every", "checkpoint_every", "patience")


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that decides how a run trains (not what it trains: that is the model spec).

    ``steps``: the step count to reach; ``batch_size`` sequences per step; ``lr``, ``clip_norm``,
    ``weight_decay``: clipped Adam; ``elbo`` (``trace``, ``meanfield``, ``iwae``, ``fivo``) with
    ``num_particles``; ``annealing_steps``/``annealing_start``: linear KL annealing;
    ``valid_every``: validation every N steps (0: never); ``checkpoint_every``; ``bucket_by_length``;
    ``patience``: early stopping after so many validations without a new best (0 = off);
    ``lr_schedule`` (``none`` or ``plateau``: ``lr_factor``, ``lr_patience``, ``min_lr``);
    ``train_window``: ``N > 0`` trains on consecutive windows of ``N`` steps of each batch, one update
    per window, the state carried across windows and detached (truncated backpropagation through
    time, :meth:`~pyro_vrnn.train.trainer.Trainer.window_steps`); 0 trains on whole sequences.
    Validation and evaluation always run whole sequences.
    """

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    clip_norm: float = 10.0
    weight_decay: float = 0.0
    elbo: str = "trace"
    num_particles: int = 1
    annealing_steps: int = 0
    annealing_start: float = 0.1
    valid_every: int = 0
    checkpoint_every: int = 100
    bucket_by_length: bool = False
    patience: int = 0
    lr_schedule: str = "none"
    lr_factor: float = 0.5
    lr_patience: int = 3
    min_lr: float = 0.0
    train_window: int = 0

    def __post_init__(self):
        for key in ("steps", "annealing_steps", "valid_every", "checkpoint_every", "patience", "lr_patience",
                    "train_window"):
            if int(getattr(self, key)) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("batch_size", "num_particles"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; expected one of {', '.join(LR_SCHEDULES)}")
        if (self.patience or self.lr_schedule != "none") and not self.valid_every:
            raise ValueError("early stopping (--patience) and --lr-schedule plateau are driven by the validation loss: "
                             "set --valid-every N (N > 0)")
        if not (self.lr > 0 and self.clip_norm > 0):
            raise ValueError(f"lr and clip_norm must be positive, got {self.lr}, {self.clip_norm}")

    @classmethod
    def from_dict(cls, settings: dict) -> "TrainingSettings":
        """From a config's ``"training"`` dict; a setting it lacks (a run saved before the setting
        existed) takes its default; an unknown one is a ``ValueError``."""
        unknown = set(settings) - set(DEFAULT_TRAINING)
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        return cls(**settings)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def plateau_schedule(self) -> PlateauSchedule | None:
        return (PlateauSchedule(self.lr_factor, self.lr_patience, self.min_lr)
                if self.lr_schedule == "plateau" else None)

    def build_trainer(self, model, *, precision: str = "fp32", parallel=None) -> Trainer:
        """The :class:`~pyro_vrnn.train.trainer.Trainer` these settings describe for ``model``
        (``precision``: ``"fp32"`` or ``"bf16"``; ``parallel``: a
        :class:`~pyro_vrnn.train.distributed.DataParallel` or ``None``)."""
        elbo = make_elbo(self.elbo, int(self.num_particles), train_window=int(self.train_window))
        if check_precision(precision) != "fp32":
            elbo = AutocastELBO(elbo, model._reference_tensor().device.type)
        return Trainer(model, lr=self.lr, clip_norm=self.clip_norm, weight_decay=self.weight_decay, elbo=elbo,
                       annealing=KLAnnealing(self.annealing_steps, self.annealing_start),
                       patience=int(self.patience), lr_schedule=self.plateau_schedule(), parallel=parallel,
                       train_window=int(self.train_window))


#: the default of every training setting, as ``config.json`` stores them
DEFAULT_TRAINING = TrainingSettings().to_dict()
