"""Polyphonic music as 88-dimensional binary piano rolls (Boulanger-Lewandowski et al., 2012).

The benchmark pickles (JSB chorales, Nottingham, MuseData, Piano-midi.de) are a dict with keys
``train``, ``valid``, ``test``; each a list of sequences; each sequence a list of time steps; each
step a collection of the MIDI note numbers sounding. Step ``t`` becomes a row ``x_t in {0,1}^88``
with ``x_t[n - 21] = 1`` for each note ``n`` (MIDI 21 = A0 .. 108 = C8). An empty step (silence) is
an all-zero row. The normalizer is the identity: the data stay 0/1 for a Bernoulli emission.
"""

import numbers
import os

import numpy as np

from . import options
from .base import SPLITS, SequenceDataset, to_tensors
from .errors import DataError
from .files import MAX_EXPANDED_BYTES, byte_limit, too_large
from .locations import resolve_data_path
from .normalization import Normalizer
from .safe_pickle import safe_load_file

LOWEST_NOTE = 21
HIGHEST_NOTE = 108
NUM_NOTES = HIGHEST_NOTE - LOWEST_NOTE + 1  # 88


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


def load_music(path, name=None, max_bytes=None, max_expanded_bytes=None):
    """Load a Boulanger-Lewandowski pickle as binary piano rolls.

    :param path: the ``.pickle`` file (a regular file; see :mod:`pyro_vrnn.data.files`); a relative
        path not found is looked up under ``$PYRO_VRNN_DATA`` (:mod:`pyro_vrnn.data.locations`).
        Unpickling is restricted to containers and numbers.
    :param int max_bytes: the largest file read (default ``MAX_FILE_BYTES["pickle"]``, 1 GiB).
    :param int max_expanded_bytes: the most the pickle and the piano rolls built from it may take
        (``T x 88`` float32 per sequence; default 1 GiB, about 3 million steps).
    :returns: :class:`SequenceDataset` of kind ``"music"``; sequences ``(T, 88)`` of 0/1 floats;
        identity normalizer.
    """
    name = options.name(name)
    expanded_limit = byte_limit("max_expanded_bytes", max_expanded_bytes, MAX_EXPANDED_BYTES)
    path = resolve_data_path(path, "music")
    if os.path.isdir(path):
        raise DataError("music data must be a pickle file, not a folder", path)
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
                           info={"source": path, "encoding": f"88-key binary piano roll, MIDI {LOWEST_NOTE}..{HIGHEST_NOTE}"})
