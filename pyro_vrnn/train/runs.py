"""Training runs on disk: a run folder holds everything to rebuild, continue, evaluate and sample.

::

    RUN_DIR/config.json          model spec, data spec and loader options, training settings, seed
    RUN_DIR/checkpoint.pt        newest checkpoint (model, optimizer, normalizer, RNG, batch order, step)
    RUN_DIR/checkpoint.prev.pt   the one before, kept as the last good copy
    RUN_DIR/checkpoint.best.pt   the best on validation so far (what evaluate, sample and compare use)
    RUN_DIR/history.json         per-step training loss and periodic validation loss
    RUN_DIR/training.png         training and validation curves, the best step marked

:func:`train_run` starts a run or, with ``resume=True``, continues one exactly: the model and trainer
are rebuilt from the saved config, the checkpoint's state (RNG included) is restored and nothing is
re-seeded, so on CPU a run stopped at step ``N`` and resumed ends with the same parameters as one
that never stopped. :func:`load_run` gives back the trained model, config and normalizer.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pyro
import torch

from ..data import DataError, Normalizer, load_dataset
from ..data.registry import resolve_data_path
from ..models.zoo import build_model
from ..version import __version__
from .checkpoint import (
    CHECKPOINT,
    CheckpointError,
    load_latest,
    load_run_checkpoint,
    save_best_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from .curves import loss_label, plot_history
from .devices import resolve_device
from .outputs import check_run_folder, write_text_atomic
from .precision import check_precision
from .settings import DEFAULT_TRAINING, RESUMABLE_CHANGES, TrainingSettings
from .trainer import DivergenceError

CONFIG = "config.json"
HISTORY = "history.json"
TRAINING_PLOT = "training.png"

def make_config(model_spec: dict, data: str, *, data_options: dict | None = None, seed: int = 0,
                **training) -> dict:
    """A run's ``config.json`` content. ``training`` overrides
    :data:`~pyro_vrnn.train.settings.DEFAULT_TRAINING` and is checked by
    :class:`~pyro_vrnn.train.settings.TrainingSettings`. ``"data"`` is the spec as typed;
    ``"data_resolved"`` (for a ``KIND:PATH`` spec) where it was found, an absolute path
    (:func:`resolved_data`), so that the run folder works from a shell without ``$PYRO_VRNN_DATA``."""
    settings = TrainingSettings.from_dict({**DEFAULT_TRAINING, **training}).to_dict()
    config = {"version": __version__, "model": dict(model_spec), "data": data,
              "data_options": dict(data_options or {}), "seed": int(seed), "training": settings}
    resolved = resolved_data(data)
    if resolved is not None:
        config["data_resolved"] = resolved
    return config


def resolved_data(spec) -> str | None:
    """``KIND:/absolute/path`` where the ``KIND:PATH`` spec ``spec`` is found now (the current folder,
    then ``$PYRO_VRNN_DATA``: :func:`~pyro_vrnn.data.registry.resolve_data_path`); ``None`` for an
    offline dataset or a path not found (loading it then says why)."""
    kind, sep, path = str(spec).partition(":")
    if not sep or not path:
        return None
    try:
        return f"{kind}:{os.path.abspath(resolve_data_path(path, kind))}"
    except DataError:
        return None


def data_spec(config: dict) -> str:
    """The data spec to load a run's data with: the spec as typed (``config["data"]``) when it is
    found from here, else the location recorded when the run started (``config["data_resolved"]``),
    so a run folder still finds its data in a shell without ``$PYRO_VRNN_DATA`` or from another folder."""
    spec, recorded = config["data"], config.get("data_resolved")
    if not recorded or recorded == spec or resolved_data(spec) is not None:
        return spec
    return recorded


def load_data(config: dict):
    """The dataset a config names (same spec and options -> same splits and normalizer); see :func:`data_spec`."""
    return load_dataset(data_spec(config), **config.get("data_options", {}))


def read_config(run_dir) -> dict:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a run folder (no {CONFIG})")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable config ({error})") from None


def _check_same_run(saved: dict, wanted: dict, run_dir) -> None:
    """Refuse to resume a run with another model, other data or other fixed training settings."""
    problems = []
    for key in sorted(set(saved["model"]) | set(wanted["model"])):
        if saved["model"].get(key) != wanted["model"].get(key):
            problems.append(f"model {key} {saved['model'].get(key)!r} (asked {wanted['model'].get(key)!r})")
    for key in ("data", "data_options", "seed"):
        if saved.get(key) != wanted.get(key):
            problems.append(f"{key} {saved.get(key)!r} (asked {wanted.get(key)!r})")
    for key, value in saved["training"].items():
        if key not in RESUMABLE_CHANGES and wanted["training"].get(key) != value:
            problems.append(f"{key} {value!r} (asked {wanted['training'].get(key)!r})")
    if problems:
        raise CheckpointError(f"{run_dir} holds a checkpoint of another run: it has " + "; ".join(problems[:4])
                              + ("; ..." if len(problems) > 4 else ""))


def check_resume(payload: dict, path: Path, run_dir: Path, precision: str | None) -> None:
    """Refuse to resume (before anything is written) when the checkpoint ``path`` does not belong
    to the run folder or contradicts what was asked, with one line naming both values:

    - the run's ``config.json`` describes another model (name or sizes) than the checkpoint holds
      (a checkpoint copied in from another run): resuming would rewrite ``config.json`` and
      ``history.json`` with the other model's;
    - ``precision`` (``--precision``) other than the run's own: ``bf16`` and ``fp32`` runs do not continue
      each other exactly (``None``: the run's own).

    A different number of processes (``world_size``) is allowed: the run continues from the same
    parameters, optimizer state and batch order; only the latent noise of later steps differs
    (docs/distributed.md), which :func:`train_run` logs."""
    saved = payload["config"]
    config_path = run_dir / CONFIG
    if config_path.is_file():
        on_disk = read_config(run_dir)
        if on_disk.get("model") != saved.get("model"):
            theirs, ours = on_disk.get("model") or {}, saved.get("model") or {}
            differ = [k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
            shown = "; ".join(f"{k} {theirs.get(k)!r} in {CONFIG}, {ours.get(k)!r} in {path.name}" for k in differ[:3])
            raise CheckpointError(f"{path} does not belong to the run in {run_dir}: {shown}; nothing was written "
                                  f"(put the run's own checkpoint back, or start again with --overwrite)")
    had = saved.get("precision", "fp32")
    if precision is not None and check_precision(precision) != had:
        raise CheckpointError(f"--precision {precision} contradicts the run in {run_dir}, trained in {had} "
                              f"(precision); resume it with --precision {had} (or no --precision), or start a new "
                              f"run with --out")


def check_steps(step: int, steps: int, run_dir) -> None:
    """Refuse ``steps`` (``--steps``) below the step a resumed run has already reached."""
    if steps < step:
        raise ValueError(f"--steps {steps} is below step {step}, where the run in {run_dir} already is (a run "
                         f"does not go back); give --steps above {step} with --resume to train more, or "
                         f"--overwrite to start again")


def restore_model(payload: dict, device="cpu"):
    """The model of a loaded checkpoint payload, on ``device``; a config that does not fit the
    saved weights is a :class:`CheckpointError`."""
    config = payload["config"]
    try:
        model = build_model(config["model"]).to(resolve_device(device))
        model.load_state_dict(payload["trainer"]["model"])
    except (RuntimeError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint weights do not fit the model its config describes: "
                              f"{str(error).splitlines()[0]}") from None
    return model


def train_run(config: dict, run_dir, *, resume: bool = False, overwrite: bool = False, device="auto",
              dataset=None, progress: bool = True, log=None, parallel=None, precision: str | None = None) -> dict:
    """Train (or continue) the run ``config`` describes in ``run_dir``; returns a summary dict.

    - new run: seeds Pyro/torch/NumPy with ``config["seed"]``, builds the model, trains for
      ``config["training"]["steps"]`` steps, checkpointing every ``checkpoint_every`` steps and at the end;
    - ``resume=True`` and a checkpoint present: rebuilds model and trainer from the saved config,
      restores their state and the RNG, and continues to ``steps`` (no re-seeding); a checkpoint
      that does not belong to the folder's ``config.json`` or a contradicting ``precision`` is a
      :class:`CheckpointError` (:func:`check_resume`), ``steps`` below the run's step a ``ValueError``,
      and a run already at ``steps`` trains and writes nothing (the summary's ``"trained"`` is False);
    - a checkpoint present without ``resume`` is an error unless ``overwrite``;
    - with validation, each new best validation loss writes ``checkpoint.best.pt`` (before the
      periodic checkpoint of that step), and ``patience`` stops the run early;
    - at the end (and on an interrupt) ``history.json`` and ``training.png`` are written.

    ``dataset``: the already loaded dataset of ``config`` (saves reloading in :func:`compare`).
    On ``KeyboardInterrupt`` a checkpoint is written before the interrupt propagates.
    ``parallel``: a :class:`~pyro_vrnn.distributed.DataParallel` when this is one of several
    processes training together (rank 0 alone writes; ``config.json`` records ``world_size``).
    ``precision``: ``"fp32"`` or ``"bf16"`` (:mod:`pyro_vrnn.precision`; recorded in ``config.json``);
    ``None``: the resumed run's own, else ``"fp32"``.
    """
    log = log or (lambda message: None)
    run_dir = Path(run_dir)
    check_run_folder(run_dir)  # never write a config or history over files that are not this run's
    device = resolve_device(device)
    payload = None
    if (run_dir / CHECKPOINT).exists() or (run_dir / "checkpoint.prev.pt").exists():
        if resume:
            payload, path = load_latest(run_dir, map_location="cpu")
            check_resume(payload, path, run_dir, precision)
            _check_same_run(payload["config"], config, run_dir)
            check_steps(int(payload["step"]), int(config["training"]["steps"]), run_dir)
            saved = payload["config"]
            precision = precision or saved.get("precision", "fp32")
            config = {**saved, "training": {**saved["training"],
                                            **{k: config["training"][k] for k in RESUMABLE_CHANGES}}}
            found = resolved_data(config["data"])  # where the data are now, if found from here
            config = {**config, **({"data_resolved": found} if found else {})}
            log(f"resuming {run_dir} from step {payload['step']} ({path.name})")
            world_size = parallel.world_size if parallel is not None else 1
            if saved.get("world_size", 1) != world_size:
                log(f"the run was trained on {saved.get('world_size', 1)} process(es), now {world_size}: it continues "
                    f"from the same parameters and batch order, but the latent noise of later steps differs from "
                    f"an uninterrupted run")
        elif not overwrite:
            raise CheckpointError(f"{run_dir} already holds a run; pass resume=True (--resume) to continue it or overwrite=True (--overwrite) "
                                  "to start again")
    config = {**config, "world_size": parallel.world_size if parallel is not None else 1,
              "precision": check_precision(precision or "fp32")}
    writes = parallel is None or parallel.is_main
    settings = config["training"]
    dataset = dataset if dataset is not None else load_data(config)
    if dataset.x_dim != config["model"]["x_dim"]:
        raise ValueError(f"the model expects x_dim={config['model']['x_dim']} but {config['data']} has "
                         f"x_dim={dataset.x_dim}")
    if payload is None:
        pyro.set_rng_seed(config["seed"])
    pyro.get_param_store().clear()
    model = restore_model(payload, device) if payload is not None else build_model(config["model"]).to(device)
    trainer = TrainingSettings.from_dict(settings).build_trainer(
        model, precision=config["precision"], parallel=parallel and parallel.with_seed(config["seed"]))
    if payload is not None:
        trainer.load_state_dict(payload["trainer"])
        set_rng_state(payload["rng"])
        generator = None  # the trainer's restored batch-order generator
    else:
        generator = torch.Generator().manual_seed(config["seed"])
    if parallel is not None:
        parallel.broadcast_parameters(model)
    if payload is not None and trainer.step_count >= settings["steps"]:  # nothing to do: write nothing
        log(f"{run_dir} is already at step {trainer.step_count} of --steps {settings['steps']}: nothing to train; "
            f"give a larger --steps (e.g. --steps {2 * max(trainer.step_count, 1)}) with --resume to train more")
        return _summary(run_dir, model, trainer, config, dataset, trainer.step_count, 0.0, trained=False)
    if writes:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / CONFIG, json.dumps(config, indent=2, default=float))
    normalizer_state = dataset.normalizer.state_dict()
    every = int(settings["checkpoint_every"])
    last_saved = [trainer.step_count if payload is not None else -1]

    def checkpoint():
        if writes:
            save_checkpoint(run_dir, trainer=trainer, config=config, normalizer_state=normalizer_state)
            write_text_atomic(run_dir / HISTORY, json.dumps({"train": trainer.history, "valid": trainer.valid_history},
                                                           indent=2, default=float))
        last_saved[0] = trainer.step_count

    def callback(trainer_, record):
        if record.get("best") and writes:
            save_best_checkpoint(run_dir, trainer=trainer_, config=config, normalizer_state=normalizer_state)
        if every and trainer_.step_count % every == 0:
            checkpoint()

    def plot():
        if not writes:
            return
        best = trainer.early_stopping.best_step
        plot_history({config["model"]["name"]: {"train": trainer.history, "valid": trainer.valid_history,
                                                "best_step": best}}, run_dir / TRAINING_PLOT,
                     title=f"{config['model']['name']} on {config['data']}",
                     loss=loss_label(settings["elbo"], settings["num_particles"]))

    start_step, start = trainer.step_count, time.perf_counter()
    try:
        trainer.fit(dataset.train, settings["steps"], settings["batch_size"], valid=dataset.valid or None,
                    valid_every=settings["valid_every"], progress=progress, generator=generator,
                    bucket_by_length=settings["bucket_by_length"], callback=callback)
    except KeyboardInterrupt:
        if trainer.step_count != last_saved[0]:
            checkpoint()
        plot()
        log(f"interrupted at step {trainer.step_count}; checkpoint written, continue with --resume")
        raise
    except DivergenceError:
        # skipped steps leave the parameters untouched: the trainer still holds the last good step
        if trainer.step_count != last_saved[0]:
            checkpoint()
        raise
    if trainer.step_count != last_saved[0] or not (run_dir / CHECKPOINT).exists():
        checkpoint()
    if trainer.history:
        plot()
    if trainer.stopped_early:
        stopping = trainer.early_stopping
        log(f"stopped early at step {trainer.step_count}: no validation loss below {stopping.best:.4f} "
            f"(step {stopping.best_step}) for {stopping.bad_validations} validations; best kept in checkpoint.best.pt")
    return _summary(run_dir, model, trainer, config, dataset, start_step, time.perf_counter() - start, trained=True)


def _summary(run_dir, model, trainer, config, dataset, start_step, seconds, trained) -> dict:
    """What :func:`train_run` returns (``trained``: False when a resumed run was already at ``steps``)."""
    recent = [r["loss"] for r in trainer.history[-50:]]
    return {"run_dir": str(run_dir), "model": model, "trainer": trainer, "config": config, "dataset": dataset,
            "start_step": start_step, "step": trainer.step_count, "seconds": seconds, "trained": trained,
            "stopped_early": trainer.stopped_early, "best_step": trainer.early_stopping.best_step,
            "best_valid_loss": trainer.early_stopping.best,
            "final_loss": sum(recent) / len(recent) if recent else math.nan}


def load_run(run_dir, device="cpu", checkpoint: str = "best"):
    """``(model, config, normalizer, payload)`` of a run's checkpoint: by default the best on
    validation (``checkpoint.best.pt``) when the run has one, else the latest readable one;
    ``checkpoint="last"``: the latest. ``payload["path"]`` names the file used.

    The config comes from the checkpoint itself (``config.json`` is for people); a ``config.json``
    that names another model than the checkpoint is reported as a :class:`CheckpointError`.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run folder")
    payload, path = load_run_checkpoint(run_dir, checkpoint, map_location="cpu")
    payload["path"] = str(path)
    config = payload["config"]
    if (run_dir / CONFIG).is_file():
        on_disk = read_config(run_dir)
        if on_disk.get("model") != config.get("model"):
            raise CheckpointError(f"{run_dir}: {CONFIG} describes model {on_disk.get('model', {}).get('name')!r} "
                                  f"but the checkpoint holds {config['model'].get('name')!r}")
    model = restore_model(payload, device)
    model.eval()
    normalizer = Normalizer.from_state_dict(payload["normalizer"]) if payload.get("normalizer") else None
    return model, config, normalizer, payload
