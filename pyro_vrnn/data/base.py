"""The dataset type every loader returns: variable-length sequences in train/valid/test splits.

A :class:`SequenceDataset` holds, per split, a list of float tensors of shape ``(T_i, D)`` that are
already normalized by ``dataset.normalizer`` (fitted on the training split only). To map model
output back to data units, call ``dataset.normalizer.denormalize(x)``.
"""

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from . import options
from .errors import DataError

KINDS = ("music", "speech", "handwriting", "series")
SPLITS = ("train", "valid", "test")
#: what a loader does with a file or sequence it cannot use: raise a DataError, or skip it with a warning
ON_ERROR = ("raise", "skip")
#: the emissions a loader may name as the one its data call for (``SequenceDataset.emission``)
SUGGESTED_EMISSIONS = ("bernoulli", "normal")


@dataclass
class SequenceDataset:
    """Normalized sequences in three splits.

    :ivar str name: e.g. ``"handwriting-synthetic"`` or ``"music:/data/jsb_chorales.pickle"``.
    :ivar str kind: one of ``"music"``, ``"speech"``, ``"handwriting"``, ``"series"`` (tabular time series).
    :ivar list train: ``(T_i, D)`` float32 tensors (normalized); likewise ``valid`` and ``test``.
    :ivar Normalizer normalizer: fitted on ``train``; travels with the model in checkpoints.
    :ivar bool synthetic: whether the data were generated rather than read from files.
    :ivar dict info: loader-specific facts shown by :meth:`describe` (frame size, sample rate,
        chunking of train vs test, source path, ...).
    :ivar emission: the emission the data call for, when the loader knows it: ``"bernoulli"`` for
        0/1 data (piano rolls, all-binary series), ``"normal"`` for real values; ``None`` leaves the
        choice to the model (its default for the kind).
    """

    name: str
    kind: str
    train: list
    valid: list
    test: list
    normalizer: object
    synthetic: bool = False
    info: dict = field(default_factory=dict)
    emission: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DataError(f"unknown data kind {self.kind!r}; expected one of {KINDS}")
        if self.emission is not None and self.emission not in SUGGESTED_EMISSIONS:
            raise DataError(f"unknown emission {self.emission!r}; expected None or one of {SUGGESTED_EMISSIONS}")

    @property
    def x_dim(self):
        """``D``, the size of one time step."""
        return self.normalizer.x_dim

    def split(self, name):
        """The list of sequences of split ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def describe(self):
        """A few lines: source, kind, synthetic or not, x_dim, per-split counts and steps,
        normalization, and loader facts such as frame size and train/test chunking."""
        lines = [f"dataset {self.name} ({self.kind}, {'SYNTHETIC' if self.synthetic else 'real data'}), "
                 f"x_dim={self.x_dim}"]
        for split in SPLITS:
            seqs = self.split(split)
            lengths = [s.shape[0] for s in seqs]
            if lengths:
                lines.append(f"  {split:5s}: {len(seqs)} sequences, {sum(lengths)} steps "
                             f"(length min/mean/max {min(lengths)}/{sum(lengths) / len(lengths):.1f}/"
                             f"{max(lengths)})")
            else:
                lines.append(f"  {split:5s}: 0 sequences")
        lines.append(f"  normalization: {self.normalizer.description}")
        if self.emission is not None:
            lines.append(f"  emission the data call for: {self.emission}")
        for key, value in self.info.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                lines.append(f"  {key.replace('_', ' ')}: {value}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"SequenceDataset(name={self.name!r}, kind={self.kind!r}, x_dim={self.x_dim}, "
                f"train={len(self.train)}, valid={len(self.valid)}, test={len(self.test)}, "
                f"synthetic={self.synthetic})")


def check_sequence(array, path, where, x_dim=None):
    """Check one raw sequence and return it as a float64 numpy array of shape ``(T, D)``.

    Raises :class:`DataError` naming ``path`` and ``where`` if it is empty, not 2-D, of the wrong
    width, or holds NaN/Inf.
    """
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"not a numeric array ({exc})", path, where) from None
    if array.ndim != 2:
        raise DataError(f"expected a 2-D (steps, dims) array, got shape {array.shape}", path, where)
    if array.shape[0] == 0:
        raise DataError("empty sequence (0 steps)", path, where)
    if x_dim is not None and array.shape[1] != x_dim:
        raise DataError(f"expected {x_dim} values per step, got {array.shape[1]}", path, where)
    if not np.isfinite(array).all():
        step = int(np.argwhere(~np.isfinite(array))[0, 0])
        raise DataError(f"NaN or Inf value at step {step}", path, where)
    return array


def to_tensors(arrays):
    """List of numpy arrays -> list of float32 tensors."""
    return [torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32) for a in arrays]


def split_indices(n, valid_fraction, test_fraction, seed):
    """Seeded shuffle of ``range(n)`` cut into train/valid/test index lists (each non-empty when
    ``n >= 3`` and the fraction is positive)."""
    valid_fraction, test_fraction = options.split_fractions(valid_fraction, test_fraction)
    order = np.random.default_rng(options.seed(seed)).permutation(n)
    n_valid = int(math.ceil(n * valid_fraction)) if valid_fraction > 0 else 0
    n_test = int(math.ceil(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_valid - n_test < 1:
        raise DataError(f"only {n} items: too few to split into train/valid/test")
    valid = sorted(order[:n_valid].tolist())
    test = sorted(order[n_valid:n_valid + n_test].tolist())
    train = sorted(order[n_valid + n_test:].tolist())
    return train, valid, test


def split_steps(length, valid_fraction, test_fraction):
    """Cut one sequence of ``length`` steps in time: ``(train, valid, test)`` slices, in that order,
    the last two of ``ceil(length * fraction)`` steps (none for a fraction of 0)."""
    valid_fraction, test_fraction = options.split_fractions(valid_fraction, test_fraction)
    n_valid = int(math.ceil(length * valid_fraction)) if valid_fraction > 0 else 0
    n_test = int(math.ceil(length * test_fraction)) if test_fraction > 0 else 0
    n_train = length - n_valid - n_test
    if n_train < 1:
        raise DataError(f"only {length} steps: too few to cut into train/valid/test")
    return slice(0, n_train), slice(n_train, n_train + n_valid), slice(n_train + n_valid, length)


def split_folders(path):
    """The immediate sub-folders of ``path`` named ``train``, ``valid`` or ``test`` (case ignored), as
    ``{split: folder}``; an empty dict when there are none. Two folders naming one split (``Test`` and
    ``test``) are a :class:`DataError`."""
    found = {}
    for entry in sorted(os.listdir(path)):
        split = entry.lower()
        if split in SPLITS and os.path.isdir(os.path.join(path, entry)):
            if split in found:
                raise DataError(f"two folders for the {split} split: {os.path.basename(found[split])} and {entry}",
                                path)
            found[split] = os.path.join(path, entry)
    return found


def handle_error(error, on_error):
    """Raise ``error`` when ``on_error == "raise"``; warn and return when ``on_error == "skip"``."""
    if on_error == "raise":
        raise error
    if on_error == "skip":
        warnings.warn(f"skipping: {error}", stacklevel=3)
        return
    options.one_of("on_error", on_error, ON_ERROR)
