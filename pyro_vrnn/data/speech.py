"""Raw-audio speech datasets, as in the VRNN paper: global mean/std, 200-sample frames, 0.5 s chunks.

Layouts recognised under a folder ``path`` (audio found recursively, container sniffed per file):

- **split folders**: immediate sub-folders whose names say the split — ``*train*``; ``*test*`` or
  ``*eval*``; ``*valid*``, ``*dev*`` or ``val``. TIMIT (``TRAIN/ TEST/ DR*/ SPEAKER/*.WAV``, SPHERE
  inside) and LibriSpeech (``train-clean-100/``, ``test-other/<speaker>/``) are of this kind. Without
  a valid folder, a seeded ``valid_fraction`` of the training files is held out.
- **single folder** (Blizzard-style, LJ Speech, any folder of audio files): files are split by a
  seeded shuffle into train/valid/test.

Pipeline: read every file to a ``[-1, 1)`` waveform; fit one mean and std on all training samples;
normalize; cut into non-overlapping ``frame_size`` frames (partial tail dropped). Training
utterances are cut into ``chunk_frames`` chunks (40 x 200 samples = 0.5 s at 16 kHz; tails shorter
than a chunk dropped); valid/test sequences are whole utterances (``test_chunking="utterance"``) or
chunks like training (``"chunks"``). ``dataset.describe()`` states which.
"""

import os

import numpy as np

from . import options
from .audio import AUDIO_EXTENSIONS, read_audio, waveform_to_frames
from .base import ON_ERROR, SequenceDataset, handle_error, split_indices, to_tensors
from .errors import DataError
from .files import MAX_FILE_BYTES, byte_limit
from .locations import resolve_data_path
from .normalization import Normalizer

TEST_CHUNKINGS = ("utterance", "chunks")
_SPLIT_WORDS = {
    "train": ("train",),
    "valid": ("valid", "dev", "val"),
    "test": ("test", "eval"),
}


def find_audio_files(folder):
    """Sorted audio files under ``folder`` (recursive; extensions matched case-insensitively)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                found.append(os.path.join(root, name))
    return sorted(found)


def _split_of_folder(name):
    lower = name.lower()
    for split in ("train", "test"):
        if any(word in lower for word in _SPLIT_WORDS[split]):
            return split
    if any(word in lower for word in ("valid", "dev")) or lower == "val":
        return "valid"
    return None


def discover_speech_files(path, valid_fraction=0.05, test_fraction=0.05, seed=0):
    """Map a speech folder to ``({"train": [...], "valid": [...], "test": [...]}, layout)``."""
    if not os.path.isdir(path):
        raise DataError("speech data must be a folder of audio files", path)
    subdirs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    split_dirs = {"train": [], "valid": [], "test": []}
    for d in subdirs:
        split = _split_of_folder(d)
        if split is not None:
            split_dirs[split].append(os.path.join(path, d))
    if split_dirs["train"] and split_dirs["test"]:
        files = {split: [f for d in dirs for f in find_audio_files(d)] for split, dirs in split_dirs.items()}
        if not files["train"]:
            raise DataError("training folder(s) hold no audio files", split_dirs["train"][0])
        if not files["test"]:
            raise DataError("test folder(s) hold no audio files", split_dirs["test"][0])
        layout = "split folders (" + ", ".join(
            f"{split}: {', '.join(os.path.basename(d) for d in dirs)}" for split, dirs in split_dirs.items() if dirs) + ")"
        if not files["valid"]:
            train_files = files["train"]
            keep, held, _ = split_indices(len(train_files), valid_fraction, 0.0, seed)
            files["train"] = [train_files[i] for i in keep]
            files["valid"] = [train_files[i] for i in held]
            layout += f"; valid = {len(held)} training files held out (seed {seed})"
        return files, layout
    all_files = find_audio_files(path)
    if not all_files:
        raise DataError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found", path)
    train, valid, test = split_indices(len(all_files), valid_fraction, test_fraction, seed)
    files = {"train": [all_files[i] for i in train], "valid": [all_files[i] for i in valid],
             "test": [all_files[i] for i in test]}
    layout = f"single folder, files split {len(train)}/{len(valid)}/{len(test)} by seeded shuffle (seed {seed})"
    return files, layout


def check_utterance(file, wave, rate, frame_size, sample_rate, rate_source):
    """Raise :class:`DataError` unless ``wave`` (read from ``file`` at ``rate`` Hz) has at least one
    ``frame_size``-sample frame and the rate of the corpus so far (``sample_rate``, first seen in
    ``rate_source``; ``None`` before the first file). Returns the corpus's ``(sample_rate, rate_source)``."""
    if sample_rate is None:
        sample_rate, rate_source = rate, file
    elif rate != sample_rate:
        raise DataError(f"sample rate {rate} Hz differs from {sample_rate} Hz of {rate_source}", file)
    if len(wave) < frame_size:
        raise DataError(f"only {len(wave)} samples: shorter than one {frame_size}-sample frame (empty sequence)", file)
    return sample_rate, rate_source


def chunk_frames(frames, chunk_length):
    """``(T, F)`` -> list of ``(chunk_length, F)`` consecutive pieces; a shorter tail is dropped."""
    return [frames[i:i + chunk_length] for i in range(0, frames.shape[0] - chunk_length + 1, chunk_length)]


def frames_dataset_from_waveforms(waveforms, name, frame_size=200, chunk_length=40,
                                  test_chunking="utterance", sample_rate=16000, synthetic=False,
                                  info=None):
    """Build a speech :class:`SequenceDataset` from ``{"train"|"valid"|"test": [waveform (N,), ...]}``.

    Fits the global mean/std on the training waveforms, normalizes, frames and chunks (see module
    docstring). ``chunk_length=None`` keeps whole training utterances.
    """
    test_chunking = options.one_of("test_chunking", test_chunking, TEST_CHUNKINGS)
    frame_size = options.whole_number("frame_size", frame_size, minimum=1)
    chunk_length = options.whole_number("chunk_frames", chunk_length, minimum=1, allow_none=True)
    sample_rate = options.whole_number("sample_rate", sample_rate, minimum=1)
    longest = max((len(w) for w in waveforms["train"]), default=0)
    if longest < frame_size:
        raise DataError(f"frame_size {frame_size} is longer than every training utterance (the longest has "
                        f"{longest} samples)", (info or {}).get("source"))
    normalizer = Normalizer.fit_global(waveforms["train"], x_dim=frame_size)
    mean, std = float(normalizer.shift[0]), float(normalizer.scale[0])
    splits = {}
    for split, waves in waveforms.items():
        chunked = chunk_length is not None and (split == "train" or test_chunking == "chunks")
        seqs = []
        for wave in waves:
            frames = waveform_to_frames((np.asarray(wave, dtype=np.float64) - mean) / std, frame_size)
            if frames.shape[0] == 0:
                continue
            seqs.extend(chunk_frames(frames, chunk_length) if chunked else [frames])
        if not seqs:
            raise DataError(f"the {split} split yields no sequences: its audio is shorter than "
                            f"{'one chunk' if chunked else 'one frame'}", (info or {}).get("source"))
        splits[split] = to_tensors(seqs)
    seconds = frame_size * (chunk_length or 0) / sample_rate
    info = dict(info or {})
    info.update({
        "sample_rate": sample_rate,
        "frame_size": f"{frame_size} samples ({1000 * frame_size / sample_rate:.1f} ms), non-overlapping",
        "train_chunking": (f"chunks of {chunk_length} frames ({seconds:.3g} s), shorter tails dropped"
                           if chunk_length is not None else "whole utterances"),
        "test_chunking": ("whole utterances (partial last frame dropped)"
                          if test_chunking == "utterance" or chunk_length is None
                          else f"chunks of {chunk_length} frames ({seconds:.3g} s), like training"),
        "seconds_per_split": {s: sum(len(w) for w in waveforms[s]) / sample_rate for s in ("train", "valid", "test")},
        "audio_seconds": ", ".join(f"{s} {sum(len(w) for w in waveforms[s]) / sample_rate:.1f}"
                                   for s in ("train", "valid", "test")),
    })
    return SequenceDataset(name=name, kind="speech", train=splits["train"], valid=splits["valid"],
                           test=splits["test"], normalizer=normalizer, synthetic=synthetic, info=info)


def load_speech(path, frame_size=200, chunk_frames=40, test_chunking="utterance", valid_fraction=0.05,
                test_fraction=0.05, seed=0, max_files=None, on_error="raise", name=None, max_bytes=None):
    """Load a folder of speech audio (WAV, FLAC, NIST SPHERE) as framed, normalized sequences.

    :param path: folder (see module docstring for the layouts recognised); a relative path not found
        is looked up under ``$PYRO_VRNN_DATA`` (:mod:`pyro_vrnn.data.locations`).
    :param int frame_size: samples per frame ``F`` (= ``x_dim``); 200 in the VRNN paper.
    :param int chunk_frames: frames per training chunk (40 = 0.5 s at 16 kHz); ``None`` for whole
        utterances.
    :param str test_chunking: ``"utterance"`` (whole valid/test utterances) or ``"chunks"``.
    :param int max_files: read at most this many files per split (first in sorted order), for quick
        runs; ``None`` reads all.
    :param str on_error: ``"raise"`` (default) or ``"skip"`` unreadable files with a warning.
    :param int max_bytes: the largest audio file read (default ``MAX_FILE_BYTES["audio"]``, 1 GiB).
    :returns: :class:`SequenceDataset` of kind ``"speech"``; sequences ``(T, frame_size)``.

    Every option is checked before any file is read (:mod:`pyro_vrnn.data.options`).
    """
    frame_size = options.whole_number("frame_size", frame_size, minimum=1)
    chunk_frames = options.whole_number("chunk_frames", chunk_frames, minimum=1, allow_none=True)
    test_chunking = options.one_of("test_chunking", test_chunking, TEST_CHUNKINGS)
    valid_fraction, test_fraction = options.split_fractions(valid_fraction, test_fraction)
    seed = options.seed(seed)
    max_files = options.whole_number("max_files", max_files, minimum=1, allow_none=True)
    on_error = options.one_of("on_error", on_error, ON_ERROR)
    name = options.name(name)
    max_bytes = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["audio"])
    path = resolve_data_path(path, "speech")
    files, layout = discover_speech_files(path, valid_fraction, test_fraction, seed)
    waveforms = {}
    sample_rate, rate_source = None, None
    for split in ("train", "valid", "test"):
        waves = []
        for file in files[split][:max_files]:
            try:
                wave, rate = read_audio(file, max_bytes)
                sample_rate, rate_source = check_utterance(file, wave, rate, frame_size, sample_rate, rate_source)
            except DataError as error:
                handle_error(error, on_error)
                continue
            waves.append(wave)
        if not waves:
            raise DataError(f"no readable audio in the {split} split", path)
        waveforms[split] = waves
    info = {"source": path, "layout": layout,
            "files": ", ".join(f"{s} {len(waveforms[s])}" for s in ("train", "valid", "test"))}
    return frames_dataset_from_waveforms(waveforms, name or f"speech:{path}", frame_size, chunk_frames,
                                         test_chunking, sample_rate, synthetic=False, info=info)
