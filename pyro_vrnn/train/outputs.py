"""Where a command may write: never over a file it did not create.

A path a command writes to must be free, or hold what that same command wrote there before (which
it then replaces, as re-running a command should). Anything else — a run's checkpoint or config,
a data file, a folder, a FIFO — is refused with :class:`OutputError` before anything is written,
so that ``pyro-vrnn evaluate RUN --json RUN/checkpoint.pt`` cannot turn the run's only checkpoint
into JSON. What counts as "written by the command" is recognised from the file itself:

- an evaluation result: a JSON object with the keys :data:`EVALUATION_KEYS`;
- a run's ``config.json`` / ``history.json``: JSON objects with :data:`CONFIG_KEYS` / :data:`HISTORY_KEYS`;
- a folder of samples: its ``samples.pt`` holds ``samples``, ``real`` and ``config``
  (read with ``torch.load(weights_only=True)``, which runs no code);
- a comparison folder: its ``results.json`` holds ``rows`` and ``meaning``, or its run folders are runs;
- a CSV of ``score`` / ``forecast``: its first line is :data:`SCORES_MARK` / :data:`FORECAST_MARK` and more.

Files are written under a temporary name and renamed (:func:`write_text_atomic`), so a crash
never leaves half a file, and a FIFO in the way is replaced, never opened.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import torch

EVALUATION_KEYS = frozenset({"model", "data", "split", "step", "log_likelihood", "elbo"})
CONFIG_KEYS = frozenset({"version", "model", "data", "training"})
HISTORY_KEYS = frozenset({"train", "valid"})
RESULTS_KEYS = frozenset({"rows", "meaning"})
SAMPLES_KEYS = {"samples": frozenset({"samples", "real", "config"}),  # what each .pt of ``sample`` holds
                "reconstruction": frozenset({"data", "reconstruction", "config"}),
                "primed": frozenset({"primed", "config"})}


#: the first line of a CSV written by ``pyro-vrnn score`` (``forecast``) starts with this
SCORES_MARK = "# pyro-vrnn score"
FORECAST_MARK = "# pyro-vrnn forecast"


class OutputError(ValueError):
    """A command was asked to write where it must not (over a file it did not create)."""


def _json_object_with(path: Path, keys: frozenset) -> bool:
    try:
        with open(path, "rb") as f:  # only called on regular files
            value = json.loads(f.read(64 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and keys <= set(value)


def is_evaluation_result(path) -> bool:
    """Whether ``path`` holds an evaluation result of ``pyro-vrnn evaluate``."""
    return _json_object_with(Path(path), EVALUATION_KEYS)


def is_run_config(path) -> bool:
    """Whether ``path`` is a run's ``config.json``."""
    return _json_object_with(Path(path), CONFIG_KEYS)


def is_run_history(path) -> bool:
    """Whether ``path`` is a run's ``history.json``."""
    return _json_object_with(Path(path), HISTORY_KEYS)


def is_comparison_results(path) -> bool:
    """Whether ``path`` is the ``results.json`` of ``pyro-vrnn compare``."""
    return _json_object_with(Path(path), RESULTS_KEYS)


def is_samples_file(path) -> bool:
    """Whether ``path`` is a ``samples.pt`` (``reconstruction.pt``, ``primed.pt``) of ``pyro-vrnn sample``."""
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # anything torch cannot read safely is not ours
        return False
    return isinstance(value, dict) and any(keys <= set(value) for keys in SAMPLES_KEYS.values())


def _starts_with(path: Path, mark: str) -> bool:
    try:
        with open(path, "rb") as f:  # only called on regular files
            head = f.read(len(mark) + 1)
    except OSError:
        return False
    return head.startswith(mark.encode() + b" ")


def is_scores_file(path) -> bool:
    """Whether ``path`` is a CSV of per-step scores written by ``pyro-vrnn score``."""
    return _starts_with(Path(path), SCORES_MARK)


def is_forecast_file(path) -> bool:
    """Whether ``path`` is a CSV of forecasts written by ``pyro-vrnn forecast``."""
    return _starts_with(Path(path), FORECAST_MARK)


def _kind(path: Path) -> str | None:
    """``None`` if nothing is at ``path``; else ``"file"``, ``"folder"`` or what else it is."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else None
    except OSError as error:
        raise OutputError(f"{path}: cannot be inspected ({error.strerror or error})") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"


def check_writable(path, is_own, what: str, hint: str) -> None:
    """Refuse (:class:`OutputError`) unless ``path`` is free or a regular file for which
    ``is_own(path)`` is true. ``what`` names the output, ``hint`` says how to choose another."""
    path = Path(path)
    kind = _kind(path)
    if kind is None:
        return
    if kind != "file":
        raise OutputError(f"{path} is {'a folder' if kind == 'folder' else kind}, not a place for {what}; {hint}")
    if not is_own(path):
        raise OutputError(f"{path} exists and is not {what}, so it is left as it is; {hint}")


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def check_folder(path, what: str) -> Path:
    """``path`` as a :class:`Path` if it is a folder or free; :class:`OutputError` if it is anything else."""
    path = Path(path)
    kind = _kind(path)
    if kind not in (None, "folder"):
        raise OutputError(f"{path} is {'a file' if kind == 'file' else kind}, not a folder for {what}")
    return path


def check_run_folder(run_dir) -> None:
    """A run folder may be written if its ``config.json`` and ``history.json`` (when present) are a
    run's own; a folder holding other files of those names is someone else's."""
    run_dir = check_folder(run_dir, "a training run")
    hint = "choose another --out folder"
    check_writable(run_dir / "config.json", is_run_config, "a pyro-vrnn run config", hint)
    check_writable(run_dir / "history.json", is_run_history, "a pyro-vrnn training history", hint)


def check_sample_folder(out, names, marker: str = "samples.pt") -> None:
    """``sample`` may write ``names`` into ``out`` if none of them exists, or if ``out`` is a
    folder of earlier samples (its ``marker``, e.g. ``samples.pt``, is one)."""
    out = check_folder(out, "samples")
    taken = [name for name in names if _kind(out / name) is not None]
    if not taken:
        return
    hint = "choose another --out folder"
    check_writable(out / marker, is_samples_file, f"a {marker} file of pyro-vrnn sample", hint)
    for name in taken:
        check_writable(out / name, lambda path: (out / marker).is_file(),
                       "an earlier output of pyro-vrnn sample", hint)


def check_comparison_folder(out, models, names=("table.md", "table.csv", "results.json", "samples.png",
                                                "training.png"), *, resume: bool = False, overwrite: bool = False) -> None:
    """``compare`` may write into ``out`` if the files it writes are free; an earlier comparison there
    (its ``results.json`` is one, or it holds pyro-vrnn runs of these models) only with ``resume``
    (``--resume``: continue or reuse its runs) or ``overwrite`` (``--overwrite``: train again), since its
    table would be replaced; each run folder it trains must be free or a pyro-vrnn run
    (:func:`check_run_folder`)."""
    out = check_folder(out, "a comparison")
    hint = "choose another --out folder"
    runs = [model for model in models if is_run_config(out / model / "config.json")]
    earlier = is_comparison_results(out / "results.json") or bool(runs)
    for name in names:
        check_writable(out / name, lambda path: earlier, "an earlier output of pyro-vrnn compare", hint)
    if earlier and not (resume or overwrite):
        held = ", ".join(["results.json"] * is_comparison_results(out / "results.json") + [f"{m}/" for m in runs])
        raise OutputError(f"{out} holds an earlier comparison ({held}); pass --resume to continue (or reuse) its runs, "
                          f"or --overwrite to train them again and replace its table, or choose another --out folder")
    for model in models:
        check_run_folder(out / model)
