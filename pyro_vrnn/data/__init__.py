"""Data for the sequence models: normalized, batched, masked tensors from the data a user has.

Every loader returns a :class:`SequenceDataset` whose ``train``/``valid``/``test`` are lists of
float32 tensors of shape ``(T_i, D)``, normalized by ``dataset.normalizer`` (fitted on ``train``
only; save ``normalizer.state_dict()`` with the model and ``denormalize`` generated samples).
Batches are ``(x, mask)``: ``x`` ``(B, T_max, D)``, ``mask`` ``(B, T_max)`` bool.

Loaders: :func:`load_music` (Boulanger-Lewandowski pickles or MIDI files -> 88-d piano rolls),
:func:`load_speech` (WAV / FLAC / NIST SPHERE folders -> 200-sample frames),
:func:`load_handwriting` (IAM-OnDB XML or stroke-3 npz -> ``(dx, dy, pen)``),
:func:`load_series` (CSV/TSV in long form, ``.npy``, ``.npz`` -> z-scored features), and
:func:`load_dataset` for ``OFFLINE_DATASETS`` (seeded synthetic sets) or ``"KIND:PATH"``. Every
loader looks a relative path it cannot find up under ``$PYRO_VRNN_DATA`` (:func:`resolve_data_path`);
:func:`resolved_spec` gives a spec with the path it was found at. A piano roll goes out as MIDI with
:func:`piano_roll_to_midi` and comes back with :func:`read_midi_piano_roll`.
Every problem with the data raises :class:`DataError`; every option is checked where it enters
(:mod:`~pyro_vrnn.data.options`), and every file is opened through one guard
(:mod:`~pyro_vrnn.data.files`: regular files of bounded size; pickles, archives and XML bounded in
what they expand to).
"""

from .audio import frames_to_waveform, read_audio, waveform_to_frames, write_wav
from .base import SequenceDataset
from .batching import iterate_batches, pad_batch
from .errors import DataError
from .handwriting import load_handwriting, load_iam_ondb, load_stroke3
from .locations import DATA_ENV_VAR, resolve_data_path
from .music import load_music, notes_to_piano_roll, piano_roll_to_midi, piano_roll_to_notes, read_midi_piano_roll
from .normalization import Normalizer
from .registry import OFFLINE_DATASETS, load_dataset, resolved_spec
from .series import load_series
from .speech import load_speech
from .synthetic import synthetic_handwriting, synthetic_music, synthetic_speech

__all__ = [
    "DATA_ENV_VAR", "DataError", "Normalizer", "OFFLINE_DATASETS", "SequenceDataset", "frames_to_waveform",
    "iterate_batches", "load_dataset", "load_handwriting", "load_iam_ondb", "load_music", "load_series",
    "load_speech", "load_stroke3", "notes_to_piano_roll", "pad_batch", "piano_roll_to_midi", "piano_roll_to_notes",
    "read_audio", "read_midi_piano_roll", "resolve_data_path", "resolved_spec", "synthetic_handwriting",
    "synthetic_music", "synthetic_speech", "waveform_to_frames", "write_wav",
]
