"""Writing a prepared corpus from any dataset spec: ``pyro-vrnn prepare --data SPEC --out DIR``.

:func:`prepare` reads ``SPEC`` through the registry (:func:`~pyro_vrnn.data.load_dataset`) and writes
it with :func:`~pyro_vrnn.data.prepared.write_prepared`, in the format that
:mod:`pyro_vrnn.data.prepared` describes and reads. The values written are exactly what the loader
returns (the normalizer fitted on the training split, the loader's frames and chunks), so
``--data prepared:DIR`` trains on the same sequences as ``--data SPEC``.

Speech folders are prepared in two streaming passes (pass 1 fits the mean and std on the training
audio, pass 2 normalizes, frames, chunks and writes), one file in memory at a time, so a corpus far
larger than memory (Blizzard: ~69 GB of float32 samples) can be prepared. Other specs are small
(music, handwriting, the synthetic sets): they are loaded, then written.

This module sits above the registry (it reads any spec); the registry sits above the reader
(``prepared:DIR`` is one of its specs), so the reader never imports the registry.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio import read_audio, waveform_to_frames
from .base import SPLITS, handle_error
from .errors import DataError
from .locations import resolve_data_path
from .normalization import Normalizer
from .prepared import write_prepared
from .registry import load_dataset
from .speech import check_utterance, discover_speech_files


def _stream_speech(path, out, *, name, frame_size=200, chunk_frames=40, test_chunking="utterance",
                   valid_fraction=0.05, test_fraction=0.05, seed=0, max_files=None, on_error="raise",
                   overwrite=False, source=None) -> Path:
    """:func:`~pyro_vrnn.data.load_speech`'s dataset, written without holding the corpus in memory.

    Pass 1 reads every file once (sample rate, length, and the training files' sums for the global
    mean/std); pass 2 reads them again, normalizes, frames, chunks and writes. The result equals
    ``load_speech(path, ...)`` value for value (``tests/test_prepared.py`` pins it)."""
    if test_chunking not in ("utterance", "chunks"):
        raise DataError(f"test_chunking must be 'utterance' or 'chunks', got {test_chunking!r}")
    if frame_size < 1 or (chunk_frames is not None and chunk_frames < 1):
        raise DataError(f"frame_size and chunk_frames must be >= 1 (got {frame_size}, {chunk_frames})")
    if on_error not in ("raise", "skip"):
        raise DataError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = os.fspath(path)
    files, layout = discover_speech_files(path, valid_fraction, test_fraction, seed)
    kept = {split: [] for split in SPLITS}  # (file, number of samples)
    sample_rate, rate_source = None, None
    for split in SPLITS:
        for file in files[split][:max_files]:
            try:
                wave, rate = read_audio(file)
                sample_rate, rate_source = check_utterance(file, wave, rate, frame_size, sample_rate, rate_source)
            except DataError as error:
                handle_error(error, on_error)
                continue
            kept[split].append((file, len(wave)))
        if not kept[split]:
            raise DataError(f"no readable audio in the {split} split", path)
    normalizer = Normalizer.fit_global((read_audio(f)[0] for f, _ in kept["train"]), x_dim=frame_size)
    mean, std = float(normalizer.shift[0]), float(normalizer.scale[0])

    def chunked(split):
        return chunk_frames is not None and (split == "train" or test_chunking == "chunks")

    def lengths(split):
        out_lengths = []
        for _, n in kept[split]:
            frames = n // frame_size
            if chunked(split):
                out_lengths += [chunk_frames] * (frames // chunk_frames)
            elif frames:
                out_lengths.append(frames)
        if not out_lengths:
            raise DataError(f"the {split} split yields no sequences: its audio is shorter than "
                            f"{'one chunk' if chunked(split) else 'one frame'}", path)
        return out_lengths

    def sequences(split):
        for file, _ in kept[split]:
            frames = waveform_to_frames((np.asarray(read_audio(file)[0], dtype=np.float64) - mean) / std, frame_size)
            if chunked(split):
                yield from (frames[i:i + chunk_frames] for i in range(0, len(frames) - chunk_frames + 1, chunk_frames))
            elif len(frames):
                yield frames

    seconds = frame_size * (chunk_frames or 0) / sample_rate
    info = {"source": path, "layout": layout, "files": ", ".join(f"{s} {len(kept[s])}" for s in SPLITS),
            "sample_rate": sample_rate,
            "frame_size": f"{frame_size} samples ({1000 * frame_size / sample_rate:.1f} ms), non-overlapping",
            "train_chunking": (f"chunks of {chunk_frames} frames ({seconds:.3g} s), shorter tails dropped"
                               if chunk_frames is not None else "whole utterances"),
            "test_chunking": ("whole utterances (partial last frame dropped)" if not chunked("test")
                              else f"chunks of {chunk_frames} frames ({seconds:.3g} s), like training"),
            "audio_seconds": ", ".join(f"{s} {sum(n for _, n in kept[s]) / sample_rate:.1f}" for s in SPLITS)}
    splits = {split: (lengths(split), sequences(split)) for split in SPLITS}
    return write_prepared(out, name=name, kind="speech", normalizer=normalizer, splits=splits, info=info,
                          source=source, overwrite=overwrite)


def prepare(spec: str, out, *, overwrite: bool = False, **options) -> Path:
    """Write dataset ``spec`` (any :func:`~pyro_vrnn.data.load_dataset` spec and its ``options``) as a
    prepared corpus in folder ``out``; returns the folder. ``speech:FOLDER`` streams (see the module
    docstring); other specs are loaded first."""
    source = {"data": spec, "data_options": dict(options)}
    kind, sep, path = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if kind == "prepared":
        raise DataError(f"{spec} is already a prepared corpus")
    if sep and kind == "speech" and path:
        return _stream_speech(resolve_data_path(path, kind), out, name=spec, overwrite=overwrite, source=source,
                              **options)
    dataset = load_dataset(spec, **options)
    splits = {split: ([len(s) for s in dataset.split(split)], (s.numpy() for s in dataset.split(split)))
              for split in SPLITS}
    return write_prepared(out, name=dataset.name, kind=dataset.kind, normalizer=dataset.normalizer, splits=splits,
                          info=dataset.info, source=source, synthetic=dataset.synthetic, emission=dataset.emission,
                          overwrite=overwrite)
