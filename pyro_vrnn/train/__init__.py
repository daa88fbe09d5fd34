"""Training: the SVI :class:`~pyro_vrnn.train.trainer.Trainer` and what surrounds it.

- :mod:`~pyro_vrnn.train.settings`: one :class:`~pyro_vrnn.train.settings.TrainingSettings` object and the one
  function that builds a trainer from it;
- :mod:`~pyro_vrnn.train.trainer`: the trainer, KL annealing, the objectives by name;
- :mod:`~pyro_vrnn.train.schedules`: early stopping and the learning-rate schedule;
- :mod:`~pyro_vrnn.train.precision`: bfloat16 autocast;
- :mod:`~pyro_vrnn.train.distributed`: several processes training one model;
- :mod:`~pyro_vrnn.train.checkpoint`, :mod:`~pyro_vrnn.train.runs`, :mod:`~pyro_vrnn.train.outputs`: run
  folders on disk (atomic checkpoints, exact resume, files never written over);
- :mod:`~pyro_vrnn.train.presets`: the named settings (``--preset``);
- :mod:`~pyro_vrnn.train.curves`, :mod:`~pyro_vrnn.train.progress`, :mod:`~pyro_vrnn.train.resources`,
  :mod:`~pyro_vrnn.train.devices`: training curves, the progress bar, out-of-memory advice, the device.

Imports :mod:`pyro_vrnn.data`, :mod:`pyro_vrnn.models` and :mod:`pyro_vrnn.infer`.
"""
