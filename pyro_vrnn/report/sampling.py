"""Samples from a trained run, in data units, with real sequences of the same data beside them.

:func:`generate_samples` draws ancestral samples ``x ~ p(x)`` and un-normalizes them with the run's
saved normalizer; :func:`sample_run` writes them out: ``samples.png`` (generated beside real),
``samples.pt`` (the tensors), for speech ``sample_{i}.wav`` / ``real_{i}.wav`` (16-bit PCM), and
for music ``sample_{i}.mid`` / ``real_{i}.mid`` (one note per run of 1s of a key, on the run's grid:
:func:`midi_grid`) with ``sample_{i}.wav`` / ``real_{i}.wav``, the same notes played at that tempo by
:func:`~pyro_vrnn.report.rendering.render_piano_roll` (16 kHz), to listen to without a MIDI synthesizer.
:func:`reconstruct_run` draws the model's reconstructions of test sequences (teacher forcing, see
:func:`pyro_vrnn.predictive.reconstruct`) beside them; :func:`prime_run` continues a prefix (a test
sequence or a file) and marks where the prefix ends.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch

from ..data import pad_batch, piano_roll_to_midi, read_audio, read_midi_piano_roll, waveform_to_frames, write_wav
from ..train.checkpoint import atomic_save, seeded
from ..train.outputs import check_sample_folder
from ..train.runs import load_data, load_run
from . import plots
from .rendering import render_piano_roll

DEFAULT_LENGTHS = {"speech": 80, "handwriting": 120, "music": 64, "series": 50}


def postprocess(kind: str, x: torch.Tensor) -> torch.Tensor:
    """Make samples look like the data: pen bits thresholded to 0/1 for handwriting, clipped rolls for music."""
    if kind == "handwriting" and x.shape[-1] == 3:
        x = x.clone()
        x[..., 2] = (x[..., 2] > 0.5).to(x.dtype)
    elif kind == "music":
        x = (x > 0.5).to(x.dtype)
    return x


@torch.no_grad()
def generate_samples(model, normalizer, kind: str, num: int, length: int, seed: int | None = 0,
                     temperature: float = 1.0) -> torch.Tensor:
    """``(num, length, x_dim)`` samples in data units (float32 on CPU), drawn at ``temperature``."""
    if num < 1 or length < 1:
        raise ValueError(f"num and length (--num, --length) must be >= 1, got {num}, {length}")
    with seeded(seed):  # the caller's random state is given back
        x = model.generate(num, length, temperature=temperature).detach().float().cpu()
    if normalizer is not None:
        x = normalizer.denormalize(x).float()
    return postprocess(kind, x)


DEFAULT_TEMPO_BPM = 120.0


def midi_grid(config: dict, tempo_bpm: float | None = None) -> tuple[int, float]:
    """``(steps_per_beat, tempo_bpm)`` that write a music run's piano rolls on the grid it was read on.

    A run read on ``steps_per_beat=N`` (the MIDI default, 4; also a pickle, whose grid the file does not
    say) plays at ``tempo_bpm`` (``--tempo``, default 120) beats a minute; a run read on
    ``frames_per_second=F`` keeps its steps ``1/F`` s long (one step a beat at ``60 F`` beats a minute),
    so a tempo is refused there.
    """
    options = config.get("data_options", {}) or {}
    frames = options.get("frames_per_second")
    if frames is not None:
        if tempo_bpm is not None:
            raise ValueError(f"--tempo sets beats a minute on a steps_per_beat grid; this run's steps are "
                             f"1/{frames:g} s (frames_per_second), written as they are")
        return 1, 60.0 * float(frames)
    if tempo_bpm is not None and not (0 < float(tempo_bpm) < float("inf")):
        raise ValueError(f"tempo (--tempo) must be a positive number of beats a minute, got {tempo_bpm!r}")
    return int(options.get("steps_per_beat") or 4), float(tempo_bpm or DEFAULT_TEMPO_BPM)


def _grid_of(kind: str, config: dict, tempo_bpm):
    """:func:`midi_grid` for a music run; ``None`` for another, where a tempo is refused."""
    if kind == "music":
        return midi_grid(config, tempo_bpm)
    if tempo_bpm is not None:
        raise ValueError(f"--tempo applies to music runs (MIDI files), not to {kind} data")
    return None


def write_midi_files(out: Path, label: str, rolls, grid: tuple[int, float]) -> list[str]:
    """Write each ``(T, 88)`` 0/1 roll of ``rolls`` as ``out/{label}_{i}.mid`` on ``grid``; returns the paths."""
    steps_per_beat, tempo_bpm = grid
    return [str(piano_roll_to_midi(roll, out / f"{label}_{i}.mid", steps_per_beat=steps_per_beat, tempo_bpm=tempo_bpm))
            for i, roll in enumerate(rolls)]


RENDER_RATE = 16000  # Hz of the music renderings: the highest key (4,186 Hz) sounds below the 8 kHz Nyquist limit


def write_rendered_files(out: Path, label: str, rolls, grid: tuple[int, float]) -> list[str]:
    """Write each ``(T, 88)`` 0/1 roll of ``rolls`` played at ``grid``'s tempo as ``out/{label}_{i}.wav``
    (:func:`~pyro_vrnn.report.rendering.render_piano_roll`, 16 kHz); returns the paths."""
    steps_per_beat, tempo_bpm = grid
    step_seconds = 60.0 / (tempo_bpm * steps_per_beat)
    return [str(write_wav(out / f"{label}_{i}.wav", render_piano_roll(roll, step_seconds, RENDER_RATE),
                          sample_rate=RENDER_RATE)) for i, roll in enumerate(rolls)]


def _media(kind: str, labels: dict) -> list[str]:
    """The sound files ``sample`` writes for ``labels`` (label -> count): WAV for speech, MIDI and WAV for music."""
    endings = {"speech": ("wav",), "music": ("mid", "wav")}.get(kind, ())
    return [f"{label}_{i}.{ending}" for label, count in labels.items() for i in range(count) for ending in endings]


def real_examples(dataset, split: str, num: int, length: int | None = None) -> list[torch.Tensor]:
    """The first ``num`` sequences of ``split`` in data units, cut to ``length`` steps."""
    seqs = dataset.split(split)[:num]
    return [postprocess(dataset.kind, dataset.normalizer.denormalize(s[:length] if length else s).float())
            for s in seqs]


def typical_length(dataset, kind: str) -> int:
    lengths = [s.shape[0] for s in dataset.train]
    return int(statistics.median(lengths)) if lengths else DEFAULT_LENGTHS[kind]


def sample_run(run_dir, out, *, num: int = 4, length: int | None = None, seed: int = 0, device="cpu",
               with_real: bool = True, dataset=None, temperature: float = 1.0, checkpoint: str = "best",
               tempo_bpm: float | None = None) -> dict:
    """Generate ``num`` samples from a run into folder ``out``; returns the paths written.

    ``length`` defaults to the median training length (speech: 40 frames = 0.5 s at 16 kHz);
    ``checkpoint``: ``"best"`` on validation (when the run has one) or ``"last"``; ``tempo_bpm``: the
    playback tempo of a music run's MIDI files (:func:`midi_grid`).
    """
    model, config, normalizer, _ = load_run(run_dir, device, checkpoint)
    dataset = dataset if dataset is not None else (load_data(config) if with_real or normalizer is None else None)
    if normalizer is None and dataset is not None:
        normalizer = dataset.normalizer
    kind = dataset.kind if dataset is not None else _kind_of(config)
    length = length or (typical_length(dataset, kind) if dataset is not None else DEFAULT_LENGTHS[kind])
    out = Path(out)
    real = real_examples(dataset, "test", num, length) if dataset is not None and with_real else []
    grid = _grid_of(kind, config, tempo_bpm)
    check_sample_folder(out, ["samples.pt", "samples.png"] + _media(kind, {"sample": num, "real": len(real)}))
    out.mkdir(parents=True, exist_ok=True)
    samples = generate_samples(model, normalizer, kind, num, length, seed, temperature)
    written = {"samples": str(out / "samples.pt")}
    atomic_save({"samples": samples, "real": real, "config": config}, out / "samples.pt")
    rate = int((dataset.info.get("sample_rate") if dataset is not None else None) or 16000)
    written["figure"] = str(plots.plot_samples(kind, list(samples), real, out / "samples.png",
                                               title=f"{config['model']['name']} on {config['data']}",
                                               sample_rate=rate))
    if kind == "speech":
        written["wav"] = [str(write_wav(out / f"sample_{i}.wav", s, sample_rate=rate)) for i, s in enumerate(samples)]
        written["wav_real"] = [str(write_wav(out / f"real_{i}.wav", s, sample_rate=rate)) for i, s in enumerate(real)]
    if kind == "music":
        written["midi"] = write_midi_files(out, "sample", samples, grid)
        written["midi_real"] = write_midi_files(out, "real", real, grid)
        written["wav"] = write_rendered_files(out, "sample", samples, grid)
        written["wav_real"] = write_rendered_files(out, "real", real, grid)
    return written


def _kind_of(config: dict) -> str:
    data = config["data"]
    return data.split("-")[0] if data.endswith("-synthetic") else data.split(":", 1)[0]


def _check_outputs(out: Path, kind: str, name: str, columns: dict) -> None:
    """Refuse to write over files ``sample`` did not create (see :func:`~pyro_vrnn.outputs.check_sample_folder`)."""
    media = _media(kind, {label: len(seqs) for label, seqs in columns.items()})
    check_sample_folder(out, [f"{name}.pt", f"{name}.png"] + media, marker=f"{name}.pt")


def _written(out: Path, kind: str, name: str, columns: dict, config: dict, rate: int, figure, grid=None) -> dict:
    """Save ``name.pt`` and one WAV (speech) or a MIDI file and its rendering as WAV (music, on
    ``grid``) per sequence of each column; returns the paths."""
    atomic_save({**columns, "config": config}, out / f"{name}.pt")
    written = {name: str(out / f"{name}.pt"), "figure": str(figure)}
    if kind == "speech":
        for label, seqs in columns.items():
            written[f"wav_{label}"] = [str(write_wav(out / f"{label}_{i}.wav", s, sample_rate=rate))
                                       for i, s in enumerate(seqs)]
    if kind == "music":
        for label, seqs in columns.items():
            written[f"midi_{label}"] = write_midi_files(out, label, seqs, grid)
            written[f"wav_{label}"] = write_rendered_files(out, label, seqs, grid)
    return written


def _run_and_data(run_dir, device, dataset, checkpoint="best"):
    model, config, normalizer, _ = load_run(run_dir, device, checkpoint)
    dataset = dataset if dataset is not None else load_data(config)
    rate = int(dataset.info.get("sample_rate") or 16000)
    return model, config, normalizer or dataset.normalizer, dataset, rate


@torch.no_grad()
def reconstruct_run(run_dir, out, *, num: int = 4, length: int | None = None, seed: int = 0, device="cpu",
                    dataset=None, checkpoint: str = "best", tempo_bpm: float | None = None) -> dict:
    """Reconstruct the first ``num`` test sequences (cut to ``length`` steps) into folder ``out``.

    One draw per sequence of ``x'_t ~ p(x_t | z_{<=t}, x_{<t})`` with ``z ~ q(z | x)`` and the true past
    (teacher forcing). Writes ``reconstruction.png`` (data beside reconstructions), ``reconstruction.pt``
    and for speech ``data_{i}.wav`` / ``reconstruction_{i}.wav`` (music: ``.mid``); returns the paths written.
    """
    model, config, normalizer, dataset, rate = _run_and_data(run_dir, device, dataset, checkpoint)
    grid = _grid_of(dataset.kind, config, tempo_bpm)
    seqs = [s[:length] if length else s for s in dataset.split("test")[:num]]
    if not seqs:
        raise ValueError(f"the test split of {config['data']} is empty: nothing to reconstruct")
    x, mask = pad_batch(seqs)
    ref = next(model.parameters())
    with seeded(seed):
        drawn = model.reconstruct(x.to(ref), mask.to(ref.device), num_samples=1)[0].float().cpu()

    def data_units(rows):
        return [postprocess(dataset.kind, normalizer.denormalize(r[:len(s)]).float()) for r, s in zip(rows, seqs)]

    columns = {"data": data_units(seqs), "reconstruction": data_units(drawn)}
    out = Path(out)
    _check_outputs(out, dataset.kind, "reconstruction", columns)
    out.mkdir(parents=True, exist_ok=True)
    figure = plots.plot_sample_grid(dataset.kind, columns, out / "reconstruction.png", sample_rate=rate,
                                    title=f"{config['model']['name']}: reconstructions (teacher forcing)",
                                    colors={"reconstruction": "tab:red"})
    return _written(out, dataset.kind, "reconstruction", columns, config, rate, figure, grid)


def read_prefix(prime: str, dataset, normalizer, sample_rate: int, data_options: dict | None = None) -> torch.Tensor:
    """The prefix named by ``--prime``, normalized: ``(P, X)``.

    ``prime`` is an index into the run's test split, or a file in data units: ``.npy`` / ``.pt``
    holding a ``(P, X)`` array (a stroke-3 line, a piano roll, frames), for speech an audio file
    (WAV, FLAC, SPHERE) at the run's sample rate, cut into frames of ``X`` samples, or for music a
    MIDI file (``.mid``, ``.midi``) read on the run's grid (its ``data_options``: ``steps_per_beat``,
    4 by default, or ``frames_per_second``).
    """
    if prime.isdigit():
        test = dataset.split("test")
        if int(prime) >= len(test):
            raise ValueError(f"--prime {prime}: the test split has {len(test)} sequences (indices 0..{len(test) - 1})")
        return test[int(prime)]
    path = Path(prime)
    if not path.is_file():
        raise ValueError(f"--prime {prime}: neither a test-sequence index nor an existing file")
    x_dim = normalizer.x_dim
    if path.suffix.lower() in (".npy", ".pt"):
        rows = _read_array(path, prime, x_dim)
    elif dataset.kind == "music" and path.suffix.lower() in (".mid", ".midi"):
        options = data_options or {}
        rows = torch.as_tensor(read_midi_piano_roll(path, steps_per_beat=options.get("steps_per_beat"),
                                                    frames_per_second=options.get("frames_per_second"),
                                                    out_of_range=options.get("out_of_range") or "raise"),
                               dtype=torch.float64)
    elif dataset.kind == "speech":
        waveform, rate = read_audio(path)
        if int(rate) != sample_rate:
            raise ValueError(f"--prime {prime}: sampled at {rate} Hz but the run's data are at {sample_rate} Hz")
        rows = waveform_to_frames(torch.as_tensor(waveform, dtype=torch.float64), x_dim)
    else:
        raise ValueError(f"--prime {prime}: expected a .npy or .pt file of shape (steps, {x_dim})"
                         + (" or an audio file" if dataset.kind == "speech" else "")
                         + (" or a MIDI file (.mid, .midi)" if dataset.kind == "music" else ""))
    if rows.dim() != 2 or rows.shape[1] != x_dim or rows.shape[0] < 1 or not torch.isfinite(rows).all():
        raise ValueError(f"--prime {prime}: expected finite values of shape (steps >= 1, {x_dim}), "
                         f"got shape {tuple(rows.shape)}")
    return normalizer.normalize(rows).float()


def _read_array(path: Path, prime: str, x_dim: int) -> torch.Tensor:
    """The array of a ``.npy`` (no pickles) or ``.pt`` file (``torch.load(weights_only=True)``: no code
    runs), as float64; anything else it holds, or a file neither can read, is a ``ValueError`` naming
    the file (and not torch's advice to load it with ``weights_only=False``, which would run its code)."""
    expected = f"expected a .npy or .pt file holding one array of shape (steps, {x_dim})"
    if not path.is_file() or path.stat().st_size == 0:
        raise ValueError(f"--prime {prime}: an empty file or not a regular file; {expected}")
    try:
        if path.suffix.lower() == ".npy":
            value = np.load(path, allow_pickle=False)
        else:
            value = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as error:  # pickle.UnpicklingError, RuntimeError, ValueError, EOFError, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "weights_only" in str(error) or "Unpickl" in type(error).__name__:
            reason = "it holds Python objects, not plain arrays (refused without running them)"
        raise ValueError(f"--prime {prime}: not a file pyro-vrnn can read safely ({reason[:200]}); {expected}") from None
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
        raise ValueError(f"--prime {prime}: holds an array of {value.dtype}, not numbers; {expected}")
    if not (isinstance(value, (np.ndarray, torch.Tensor))):
        raise ValueError(f"--prime {prime}: holds a {type(value).__name__}, not an array; {expected}")
    if isinstance(value, torch.Tensor) and (value.is_complex() or value.dtype == torch.bool):
        raise ValueError(f"--prime {prime}: holds a tensor of {value.dtype}, not real numbers; {expected}")
    return torch.as_tensor(value, dtype=torch.float64)


@torch.no_grad()
def prime_run(run_dir, out, prime: str, *, num: int = 4, length: int | None = None, prime_steps: int | None = None,
              temperature: float = 1.0, seed: int = 0, device="cpu", dataset=None, checkpoint: str = "best",
              tempo_bpm: float | None = None) -> dict:
    """Continue one prefix ``num`` times into folder ``out``; returns the paths written.

    The prefix (see :func:`read_prefix`, cut to its first ``prime_steps`` steps) is filtered by the guide
    and each continuation runs ``length`` steps past it (default: as many steps as the prefix) from the
    prior; see :meth:`SequenceModel.generate <pyro_vrnn.models.SequenceModel.generate>`. Writes
    ``primed.png`` (the prefix in black, the continuation in red, a line where it starts), ``primed.pt``
    and for speech ``primed_{i}.wav`` (music: ``primed_{i}.mid``; prefix and continuation joined).
    """
    model, config, normalizer, dataset, rate = _run_and_data(run_dir, device, dataset, checkpoint)
    grid = _grid_of(dataset.kind, config, tempo_bpm)
    prefix = read_prefix(prime, dataset, normalizer, rate, config.get("data_options"))[:prime_steps]
    length = length or prefix.shape[0]
    ref = next(model.parameters())
    with seeded(seed):
        drawn = model.generate(num, length, prefix=prefix.to(ref), temperature=temperature).float().cpu()
    primed = [postprocess(dataset.kind, normalizer.denormalize(s).float()) for s in drawn]
    out = Path(out)
    _check_outputs(out, dataset.kind, "primed", {"primed": primed})
    out.mkdir(parents=True, exist_ok=True)
    source = f"test sequence {prime}" if prime.isdigit() else Path(prime).name
    marks = ("left of the dashed line", "shaded") if dataset.kind == "series" else ("black", "red")
    figure = plots.plot_primed(dataset.kind, primed, prefix.shape[0], out / "primed.png", sample_rate=rate,
                               title=f"{config['model']['name']}: {prefix.shape[0]} steps of {source} ({marks[0]}), "
                                     f"continued for {length} ({marks[1]})")
    written = _written(out, dataset.kind, "primed", {"primed": primed}, config, rate, figure, grid)
    return {**written, "prefix_steps": prefix.shape[0]}
