"""Checkpoints that a crash cannot lose.

A checkpoint is written to a temporary file in the same folder, flushed and fsynced, and only then
renamed over the old one; the previous checkpoint is kept beside it as the last good one::

    run_dir/checkpoint.pt        newest
    run_dir/checkpoint.prev.pt   the one before (fallback if the newest is unreadable)
    run_dir/checkpoint.best.pt   the one with the best validation loss so far (written the same way)

The payload is a plain dict (loaded with ``torch.load(weights_only=True)``): library version,
config, step, trainer state (model, optimizer, histories, batch order), data normalization and
the RNG states of Python, NumPy, torch and CUDA, so a resumed run continues exactly.
"""

from __future__ import annotations

import os
import random
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyro
import torch

from ..version import __version__

FORMAT = "pyro-vrnn-checkpoint/1"
CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
BEST = "checkpoint.best.pt"
NEXT = f".{CHECKPOINT}.next"  # complete, about to become the newest (left behind only by a kill mid-rotation)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt, or not a pyro-vrnn checkpoint."""


def rng_state() -> dict:
    """The state of every random number generator a training run draws from."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def seeded(seed: int | None):
    """Run the block with every global generator (torch, NumPy, Python; CUDA where present) seeded by
    ``pyro.set_rng_seed(seed)``, and give them back the states they had before, whatever the block
    raised: seeded work in a library function never changes its caller's random stream.
    ``seed=None`` seeds nothing and restores nothing (the block draws from the caller's stream)."""
    if seed is None:
        yield
        return
    state = rng_state()
    try:
        pyro.set_rng_seed(seed)
        yield
    finally:
        set_rng_state(state)


def atomic_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically: temporary file, flush, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def checkpoint_payload(*, trainer, config: dict, normalizer_state=None, extra: dict | None = None) -> dict:
    """What a checkpoint file holds: format, version, config, step, trainer state, normalizer, RNG."""
    return {
        "format": FORMAT,
        "version": __version__,
        "config": dict(config),
        "step": trainer.step_count,
        "trainer": trainer.state_dict(),
        "normalizer": normalizer_state,
        "rng": rng_state(),
        "extra": extra or {},
    }


def save_checkpoint(run_dir: str | os.PathLike, *, trainer, config: dict, normalizer_state=None,
                    extra: dict | None = None) -> Path:
    """Write ``run_dir/checkpoint.pt`` atomically, keeping the previous one as ``checkpoint.prev.pt``."""
    run_dir = Path(run_dir)
    payload = checkpoint_payload(trainer=trainer, config=config, normalizer_state=normalizer_state, extra=extra)
    newest, previous, tmp = run_dir / CHECKPOINT, run_dir / PREVIOUS, run_dir / NEXT
    atomic_save(payload, tmp)
    if newest.exists() and zipfile.is_zipfile(newest):  # a damaged newest must not displace the last good one
        os.replace(newest, previous)
    os.replace(tmp, newest)
    return newest


def save_best_checkpoint(run_dir: str | os.PathLike, *, trainer, config: dict, normalizer_state=None,
                         extra: dict | None = None) -> Path:
    """Write ``run_dir/checkpoint.best.pt`` atomically (a kill leaves the previous best or the new one,
    never a torn file); call it when the trainer reports a new best validation loss."""
    path = Path(run_dir) / BEST
    atomic_save(checkpoint_payload(trainer=trainer, config=config, normalizer_state=normalizer_state, extra=extra),
                path)
    return path


def _load_failure(error: Exception) -> str:
    """A short reason for a failed ``torch.load``; never torch's advice to retry with ``weights_only=False``."""
    text = str(error)
    if "WeightsUnpickler error:" in text:  # not a checkpoint, or something other than tensors and plain data
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        return f"not plain tensors and data ({detail[0].strip() if detail else 'unpickling failed'})"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(error).__name__}: {first[:200]}"


def load_checkpoint(path: str | os.PathLike, map_location=None) -> dict:
    """Load one checkpoint file; any problem is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():  # a FIFO or device would block or stream forever in torch.load
        raise CheckpointError(f"{path}: " + ("not a regular file, so not a checkpoint" if path.exists()
                                             else "no such checkpoint file"))
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, garbage bytes, unpickling errors...
        raise CheckpointError(f"{path}: unreadable checkpoint (truncated or corrupt?): {_load_failure(error)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pyro-vrnn checkpoint (expected format {FORMAT!r})")
    for key in ("config", "step", "trainer"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return payload


def load_latest(run_dir: str | os.PathLike, map_location=None) -> tuple[dict, Path]:
    """The newest readable checkpoint of a run, falling back to the last good one with a warning."""
    run_dir = Path(run_dir)
    candidates = [run_dir / CHECKPOINT, run_dir / NEXT, run_dir / PREVIOUS]
    errors = []
    for path in candidates:
        if not path.exists():
            continue
        try:
            payload = load_checkpoint(path, map_location)
        except CheckpointError as error:
            errors.append(str(error))
            continue
        if errors:
            warnings.warn(f"{errors[0]}; resuming from the last good checkpoint {path}", RuntimeWarning)
        return payload, path
    if errors:
        raise CheckpointError("; ".join(errors))
    raise CheckpointError(f"{run_dir}: no checkpoint found (expected {CHECKPOINT})")


def load_run_checkpoint(run_dir: str | os.PathLike, which: str = "best", map_location=None) -> tuple[dict, Path]:
    """The checkpoint of a run that evaluation and sampling use.

    ``which="best"``: ``checkpoint.best.pt`` when the run has one (a run trained with validation),
    else the newest (:func:`load_latest`); ``which="last"``: always the newest. A best checkpoint
    that exists but cannot be read is an error, not a silent fall-back to another model.
    """
    if which not in ("best", "last"):
        raise ValueError(f"unknown checkpoint {which!r}; expected 'best' or 'last'")
    best = Path(run_dir) / BEST
    if which == "best" and best.exists():
        return load_checkpoint(best, map_location), best
    return load_latest(run_dir, map_location)
