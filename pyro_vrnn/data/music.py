"""Polyphonic music as 88-dimensional binary piano rolls (Boulanger-Lewandowski et al., 2012).

The benchmark pickles (JSB chorales, Nottingham, MuseData, Piano-midi.de) are a dict with keys
``train``, ``valid``, ``test``; each a list of sequences; each sequence a list of time steps; each
step a collection of the MIDI note numbers sounding. Step ``t`` becomes a row ``x_t in {0,1}^88``
with ``x_t[n - 21] = 1`` for each note ``n`` (MIDI 21 = A0 .. 108 = C8). An empty step (silence) is
an all-zero row. The normalizer is the identity: the data stay 0/1 for a Bernoulli emission.

MIDI files (``.mid``/``.midi``, one file or a folder of them) become the same rolls: every track
and channel but the drums (channel 10) merged, on a grid of ``steps_per_beat`` steps a beat or
``frames_per_second`` steps a second; a note is on at a step when it sounds at the step's start
(:mod:`pyro_vrnn.data.midi`). :func:`read_midi_piano_roll` reads one file, :func:`piano_roll_to_midi`
writes a roll back, and reading it on the same grid gives the roll again. A folder is split by its
``train/``, ``valid/``, ``test/`` sub-folders when it has them (a missing ``valid`` or ``test`` is
held out of ``train`` by the fractions, seeded), otherwise its files are split by a seeded shuffle;
one file alone is cut in time (the first part trains, then valid, then test).
"""

import numbers
import os
import warnings

import numpy as np
import torch

from . import options
from .base import ON_ERROR, SPLITS, SequenceDataset, handle_error, split_folders, split_indices, split_steps, to_tensors
from .errors import DataError
from .files import MAX_EXPANDED_BYTES, MAX_FILE_BYTES, byte_limit, too_large
from .locations import resolve_data_path
from .midi import MIDI_EXTENSIONS, grid_options, read_midi_notes, write_midi_notes
from .normalization import Normalizer
from .safe_pickle import safe_load_file

LOWEST_NOTE = 21
HIGHEST_NOTE = 108
NUM_NOTES = HIGHEST_NOTE - LOWEST_NOTE + 1  # 88
#: what to do with a MIDI note outside the piano's 21..108: refuse the file, or leave the note out
OUT_OF_RANGE = ("raise", "drop")
#: defaults of the MIDI options of :func:`load_music` (given as ``None`` there so a pickle can refuse them)
MIDI_DEFAULTS = {"valid_fraction": 0.1, "test_fraction": 0.1, "seed": 0, "on_error": "raise", "out_of_range": "raise"}


def _as_note(value, path, where):
    if type(value) is int and LOWEST_NOTE <= value <= HIGHEST_NOTE:  # the common case, fast
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, numbers.Real)):
        raise DataError(f"a note must be a MIDI number, got {type(value).__name__} {value!r}", path, where)
    if isinstance(value, numbers.Integral):
        note = int(value)
    else:
        fvalue = float(value)
        if not np.isfinite(fvalue) or fvalue != int(fvalue):
            raise DataError(f"a note must be a whole MIDI number, got {value!r}", path, where)
        note = int(fvalue)
    if not LOWEST_NOTE <= note <= HIGHEST_NOTE:
        raise DataError(f"MIDI note {note} is outside the piano range {LOWEST_NOTE}..{HIGHEST_NOTE}",
                        path, where)
    return note


def notes_to_piano_roll(sequence, path=None, where=None):
    """A sequence of steps (each an iterable of MIDI notes) -> ``(T, 88)`` float array of 0/1."""
    if isinstance(sequence, (str, bytes, dict)) or not hasattr(sequence, "__len__"):
        raise DataError(f"a sequence must be a list of time steps, got {type(sequence).__name__}", path, where)
    if len(sequence) == 0:
        raise DataError("empty sequence (0 steps)", path, where)
    roll = np.zeros((len(sequence), NUM_NOTES), dtype=np.float32)
    for t, step in enumerate(sequence):
        step_where = f"{where}, step {t}" if where else f"step {t}"
        if isinstance(step, (numbers.Number, np.generic)):
            step = [step]  # a step with one note stored bare
        if isinstance(step, (str, bytes, dict)) or not hasattr(step, "__iter__"):
            raise DataError(f"a time step must be a list of MIDI notes, got {type(step).__name__}", path,
                            step_where)
        for value in (np.asarray(step).reshape(-1).tolist() if isinstance(step, np.ndarray) else step):
            roll[t, _as_note(value, path, step_where) - LOWEST_NOTE] = 1.0
    return roll


def piano_roll_to_notes(roll):
    """``(T, 88)`` 0/1 -> list of lists of MIDI notes (inverse of :func:`notes_to_piano_roll`)."""
    return [[int(i) + LOWEST_NOTE for i in np.flatnonzero(np.asarray(row) > 0.5)] for row in roll]


def _length(sequence):
    try:
        return len(sequence)
    except TypeError:  # not a sequence: notes_to_piano_roll says so
        return 0


def _midi_roll(path, steps_per_beat, frames_per_second, out_of_range, max_bytes, expanded_limit):
    """``(roll, dropped)``: the ``(T, 88)`` float32 roll of one MIDI file and how many notes outside
    21..108 were left out (``out_of_range="drop"``); raises :class:`DataError` naming the file."""
    num_steps, notes = read_midi_notes(path, steps_per_beat, frames_per_second, max_bytes)
    if num_steps * NUM_NOTES * 4 > expanded_limit:  # counted before the roll is built
        raise DataError(too_large(f"its piano roll of {num_steps} steps", num_steps * NUM_NOTES * 4, expanded_limit,
                                  "max_expanded_bytes"), path)
    outside = [(pitch, first) for pitch, first, _ in notes if not LOWEST_NOTE <= pitch <= HIGHEST_NOTE]
    if outside and out_of_range == "raise":
        pitch, first = outside[0]
        raise DataError(f"MIDI note {pitch} (sounding from step {first}) is outside the piano range "
                        f"{LOWEST_NOTE}..{HIGHEST_NOTE} ({len(outside)} such notes); out_of_range=drop leaves them out",
                        path)
    roll = np.zeros((num_steps, NUM_NOTES), dtype=np.float32)
    for pitch, first, end in notes:
        if LOWEST_NOTE <= pitch <= HIGHEST_NOTE:
            roll[first:end, pitch - LOWEST_NOTE] = 1.0
    if len(outside) == len(notes):
        raise DataError(f"every note is outside the piano range {LOWEST_NOTE}..{HIGHEST_NOTE} (left out by "
                        "out_of_range=drop): nothing to play", path)
    return roll, len(outside)


def read_midi_piano_roll(path, steps_per_beat=None, frames_per_second=None, out_of_range="raise", max_bytes=None,
                         max_expanded_bytes=None):
    """One MIDI file as a ``(T, 88)`` float32 piano roll of 0/1 (the inverse of :func:`piano_roll_to_midi`).

    :param int steps_per_beat: grid of ``N`` steps a beat (4 when neither grid option is given).
    :param float frames_per_second: grid of ``F`` steps a second instead (the tempo map applied).
    :param str out_of_range: ``"raise"`` (a note outside MIDI 21..108 is a :class:`DataError`) or
        ``"drop"`` (such notes are left out).
    :param int max_bytes: the largest file read (default ``MAX_FILE_BYTES["midi"]``, 4 MiB).
    :param int max_expanded_bytes: the largest roll built (``T x 88 x 4`` bytes; default 1 GiB).
    :raises DataError: naming the file: unreadable, empty, drum-only, or a note out of range.
    """
    steps_per_beat, frames_per_second = _grid(steps_per_beat, frames_per_second)
    out_of_range = options.one_of("out_of_range", out_of_range, OUT_OF_RANGE)
    max_bytes = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["midi"])
    expanded_limit = byte_limit("max_expanded_bytes", max_expanded_bytes, MAX_EXPANDED_BYTES)
    return _midi_roll(os.fspath(path), steps_per_beat, frames_per_second, out_of_range, max_bytes, expanded_limit)[0]


def _grid(steps_per_beat, frames_per_second):
    grid, value = grid_options(steps_per_beat, frames_per_second)
    return (value, None) if grid == "steps_per_beat" else (None, value)


def piano_roll_note_events(roll, path=None) -> list[tuple[int, int, int]]:
    """The notes of a ``(T, 88)`` 0/1 piano roll as ``(pitch, first, end)``: each run of consecutive 1s
    of a key is one note of MIDI ``pitch`` sounding over steps ``first <= t < end``. ``roll``: NumPy
    array or tensor of 0/1 (or bool), ``T >= 1``; anything else is a :class:`DataError` naming ``path``."""
    if torch.is_tensor(roll):
        roll = roll.detach().cpu().numpy()
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != NUM_NOTES or roll.shape[0] < 1 or roll.dtype.kind not in "biuf":
        raise DataError(f"roll must be a (T, {NUM_NOTES}) array of 0/1 with T >= 1, got shape {roll.shape} of "
                        f"{roll.dtype}", path)
    on = roll.astype(np.float64)
    if not np.isin(on, (0.0, 1.0)).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isin(on, (0.0, 1.0)))[0])
        raise DataError(f"roll must hold only 0 and 1 (threshold samples first), got {roll[bad]!r} at step {bad[0]}, "
                        f"key {bad[1]}", path)
    edges = np.diff(np.pad(on > 0.5, ((1, 1), (0, 0))).astype(np.int8), axis=0)  # +1 at a run's start, -1 past its end
    notes = []
    for key in range(NUM_NOTES):
        starts, ends = np.flatnonzero(edges[:, key] == 1), np.flatnonzero(edges[:, key] == -1)
        notes.extend((key + LOWEST_NOTE, int(a), int(b)) for a, b in zip(starts, ends))
    return notes


def piano_roll_to_midi(roll, path, steps_per_beat=4, tempo_bpm=120.0, velocity=80):
    """Write a ``(T, 88)`` 0/1 piano roll as a one-track MIDI file (written to a temporary file, then
    renamed onto ``path``); returns ``path``.

    Each run of consecutive 1s of a key is one note of ``velocity`` on channel 1
    (:func:`piano_roll_note_events`); a step lasts ``60 / (tempo_bpm * steps_per_beat)`` seconds.
    :func:`read_midi_piano_roll` with the same ``steps_per_beat`` (or ``frames_per_second = tempo_bpm *
    steps_per_beat / 60``) gives ``roll`` back. ``roll``: NumPy array or tensor of 0/1 (or bool), ``T >= 1``.
    """
    notes = piano_roll_note_events(roll, path)
    return write_midi_notes(notes, len(roll), path, steps_per_beat, tempo_bpm, velocity)


def is_midi_path(path):
    """Whether ``path`` names a MIDI file by its ending (``.mid``, ``.midi``; case ignored)."""
    return os.fspath(path).lower().endswith(MIDI_EXTENSIONS)


def find_midi_files(folder):
    """Sorted MIDI files under ``folder`` (recursive; hidden files and folders skipped)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in files if not f.startswith(".") and is_midi_path(f)]
    return sorted(found)


def load_music(path, name=None, max_bytes=None, max_expanded_bytes=None, steps_per_beat=None, frames_per_second=None,
               valid_fraction=None, test_fraction=None, seed=None, on_error=None, out_of_range=None):
    """Load binary piano rolls from a Boulanger-Lewandowski pickle, a MIDI file or a folder of MIDI files.

    :param path: the ``.pickle`` file (a regular file; see :mod:`pyro_vrnn.data.files`; unpickling
        is restricted to containers and numbers), a ``.mid``/``.midi`` file, or a folder of them
        (searched recursively; see the module docstring for the splits); a relative path not found is
        looked up under ``$PYRO_VRNN_DATA`` (:mod:`pyro_vrnn.data.locations`).
    :param int max_bytes: the largest file read (default ``MAX_FILE_BYTES["pickle"]``, 1 GiB, or
        ``MAX_FILE_BYTES["midi"]``, 4 MiB, per MIDI file).
    :param int max_expanded_bytes: the most the pickle and the piano rolls built from it may take
        (``T x 88`` float32 per sequence; default 1 GiB, about 3 million steps); for MIDI, the rolls of
        all files together.

    MIDI only (a pickle refuses them): the grid, ``steps_per_beat`` (``N``, 4 by default; a step is
    ``ticks_per_beat / N`` ticks whatever the tempo) or ``frames_per_second`` (``F``; the tempo map
    turns ticks into seconds); ``valid_fraction`` and ``test_fraction`` (0.1 each) and ``seed`` (0)
    of the seeded split; ``on_error`` (``"raise"``, or ``"skip"`` a broken, empty, drum-only or
    out-of-range file with a warning); ``out_of_range`` (``"raise"``: a note outside MIDI 21..108 is
    a :class:`DataError` naming the file; ``"drop"``: such notes are left out).

    :returns: :class:`SequenceDataset` of kind ``"music"``; sequences ``(T, 88)`` of 0/1 floats;
        identity normalizer; ``emission="bernoulli"``. For MIDI, ``info["sequence_names"]`` maps each
        split to the files (relative to the folder) its sequences came from.
    """
    name = options.name(name)
    expanded_limit = byte_limit("max_expanded_bytes", max_expanded_bytes, MAX_EXPANDED_BYTES)
    given = {"steps_per_beat": steps_per_beat, "frames_per_second": frames_per_second,
             "valid_fraction": valid_fraction, "test_fraction": test_fraction, "seed": seed,
             "on_error": on_error, "out_of_range": out_of_range}
    given = {key: value for key, value in given.items() if value is not None}
    midi = _midi_options(**{**MIDI_DEFAULTS, **given})  # checked before the path is looked up
    path = resolve_data_path(path, "music")
    if os.path.isdir(path) or is_midi_path(path):
        return _load_midi(path, name, max_bytes=byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["midi"]),
                          expanded_limit=expanded_limit, **midi)
    if given:
        raise DataError(f"option{'s' if len(given) > 1 else ''} {', '.join(given)} apply to MIDI files (.mid, .midi) "
                        "and folders of them, not to a music pickle", path)
    return _load_pickle(path, name, max_bytes, expanded_limit)


def _load_pickle(path, name, max_bytes, expanded_limit):
    data = safe_load_file(path, max_bytes=max_bytes, max_expanded_bytes=expanded_limit)
    if not isinstance(data, dict):
        raise DataError(f"expected a dict with keys {SPLITS}, got {type(data).__name__}", path)
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise DataError(f"missing split(s) {missing}; keys present: {sorted(map(str, data))[:10]}", path)
    for split in SPLITS:
        seqs = data[split]
        if not isinstance(seqs, (list, tuple)):
            raise DataError(f"split {split!r} must be a list of sequences, got {type(seqs).__name__}", path)
        if not seqs:
            raise DataError(f"split {split!r} holds no sequences", path)
    steps = sum(_length(s) for split in SPLITS for s in data[split])
    if steps * NUM_NOTES * 4 > expanded_limit:  # float32 piano rolls, counted before any is built
        raise DataError(too_large(f"the piano rolls of its {steps} time steps", steps * NUM_NOTES * 4,
                                  expanded_limit, "max_expanded_bytes"), path)
    splits = {split: to_tensors([notes_to_piano_roll(s, path, f"{split} sequence {i}")
                                 for i, s in enumerate(data[split])]) for split in SPLITS}
    return SequenceDataset(name=name or f"music:{path}", kind="music", train=splits["train"],
                           valid=splits["valid"], test=splits["test"],
                           normalizer=Normalizer.identity(NUM_NOTES), synthetic=False,
                           info={"source": path,
                                 "encoding": f"88-key binary piano roll, MIDI {LOWEST_NOTE}..{HIGHEST_NOTE}"},
                           emission="bernoulli")


def _midi_files(path):
    """``({group: [files]}, layout)``: groups ``train``/``valid``/``test`` from split folders, else one
    group ``"all"`` to be split."""
    if not os.path.isdir(path):
        return {"all": [path]}, "one MIDI file, cut in time"
    folders = split_folders(path)
    if not folders:
        files = find_midi_files(path)
        if not files:
            raise DataError(f"no MIDI files ({', '.join(MIDI_EXTENSIONS)}) in this folder; music data is a pickle file "
                            "(not a folder), a MIDI file, or a folder of MIDI files", path)
        return {"all": files}, "one folder, files split by seeded shuffle"
    if "train" not in folders:
        raise DataError(f"has {', '.join(f'{s}/' for s in SPLITS if s in folders)} but no train/ folder", path)
    files = {split: find_midi_files(folders[split]) for split in SPLITS if split in folders}
    inside = {f for group in files.values() for f in group}
    outside = [f for f in find_midi_files(path) if f not in inside]
    if outside:
        warnings.warn(f"{path}: {len(outside)} MIDI file(s) outside its {', '.join(f'{s}/' for s in files)} folders "
                      f"are left out (the first: {os.path.relpath(outside[0], path)})", stacklevel=3)
    return files, "split folders " + ", ".join(f"{s}/" for s in files)


def _midi_options(steps_per_beat=None, frames_per_second=None, valid_fraction=None, test_fraction=None, seed=None,
                  on_error=None, out_of_range=None):
    """The MIDI options of :func:`load_music`, checked (:mod:`pyro_vrnn.data.options`)."""
    steps_per_beat, frames_per_second = _grid(steps_per_beat, frames_per_second)
    valid_fraction, test_fraction = options.split_fractions(valid_fraction, test_fraction)
    return {"steps_per_beat": steps_per_beat, "frames_per_second": frames_per_second,
            "valid_fraction": valid_fraction, "test_fraction": test_fraction, "seed": options.seed(seed),
            "on_error": options.one_of("on_error", on_error, ON_ERROR),
            "out_of_range": options.one_of("out_of_range", out_of_range, OUT_OF_RANGE)}


def _load_midi(path, name, *, steps_per_beat, frames_per_second, valid_fraction, test_fraction, seed, on_error,
               out_of_range, max_bytes, expanded_limit):
    groups, layout = _midi_files(path)
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    budget, dropped, read = expanded_limit, 0, {}
    for group, files in groups.items():
        read[group] = []
        for file in files:
            try:
                roll, outside = _midi_roll(file, steps_per_beat, frames_per_second, out_of_range, max_bytes, budget)
            except DataError as error:
                handle_error(error, on_error)
                continue
            budget -= roll.nbytes
            dropped += outside
            read[group].append((os.path.relpath(file, folder), roll))
        if not read[group]:
            raise DataError(f"no readable MIDI files{'' if group == 'all' else f' in the {group} split'}", path)
    try:
        splits = _split_rolls(read, valid_fraction, test_fraction, seed)
    except DataError as error:
        raise DataError(error.reason, path) from None
    if "all" in read and len(read["all"]) > 1:
        layout += f" (seed {seed})"
    grid = (f"{steps_per_beat} steps a beat (tempo-independent)" if steps_per_beat is not None
            else f"{frames_per_second:g} frames a second (tempo map applied)")
    info = {"source": path, "encoding": f"88-key binary piano roll, MIDI {LOWEST_NOTE}..{HIGHEST_NOTE}, from MIDI "
            "(drums left out, other tracks merged)", "grid": grid, "layout": layout,
            "files": ", ".join(f"{len(rolls)} read" if group == "all" else f"{group} {len(rolls)}"
                               for group, rolls in read.items()),
            "sequence_names": {split: [n for n, _ in splits[split]] for split in SPLITS}}
    if dropped:
        info["notes_left_out"] = f"{dropped} outside {LOWEST_NOTE}..{HIGHEST_NOTE} (out_of_range=drop)"
    tensors = {split: to_tensors([roll for _, roll in splits[split]]) for split in SPLITS}
    return SequenceDataset(name=name or f"music:{path}", kind="music", train=tensors["train"], valid=tensors["valid"],
                           test=tensors["test"], normalizer=Normalizer.identity(NUM_NOTES), synthetic=False, info=info,
                           emission="bernoulli")


def _split_rolls(read, valid_fraction, test_fraction, seed):
    """``{split: [(name, roll), ...]}`` from the groups read: split folders as they are (a missing valid
    or test held out of train, seeded), one group of files split by a seeded shuffle, one file cut in time."""
    if "all" not in read:
        missing = {s: f for s, f in (("valid", valid_fraction), ("test", test_fraction)) if s not in read}
        splits = {s: read.get(s, []) for s in SPLITS}
        if missing:
            keep, valid, test = split_indices(len(read["train"]), missing.get("valid", 0.0), missing.get("test", 0.0),
                                              seed)
            for split, held in (("valid", valid), ("test", test)):
                if split in missing:
                    splits[split] = [read["train"][i] for i in held]
            splits["train"] = [read["train"][i] for i in keep]
        return splits
    rolls = read["all"]
    if len(rolls) == 1:
        (piece, roll), = rolls
        cuts = dict(zip(SPLITS, split_steps(roll.shape[0], valid_fraction, test_fraction)))
        return {s: [(f"{piece} [steps {c.start}:{c.stop}]", roll[c])] if c.stop > c.start else []
                for s, c in cuts.items()}
    indices = dict(zip(SPLITS, split_indices(len(rolls), valid_fraction, test_fraction, seed)))
    return {s: [rolls[i] for i in idx] for s, idx in indices.items()}
