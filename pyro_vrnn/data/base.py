"""The dataset type every loader returns: variable-length sequences in train/valid/test splits.

A :class:`SequenceDataset` holds, per split, a list of float tensors of shape ``(T_i, D)`` that are
already normalized by ``dataset.normalizer`` (fitted on the training split only). To map model
output back to data units, call ``dataset.normalizer.denormalize(x)``.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from . import options
from .errors import DataError

KINDS = ("music", "speech", "handwriting")
SPLITS = ("train", "valid", "test")
#: what a loader does with a file or sequence it cannot use: raise a DataError, or skip it with a warning
ON_ERROR = ("raise", "skip")


@dataclass
class SequenceDataset:
    """Normalized sequences in three splits.

    :ivar str name: e.g. ``"handwriting-synthetic"`` or ``"music:/data/jsb_chorales.pickle"``.
    :ivar str kind: one of ``"music"``, ``"speech"``, ``"handwriting"``.
    :ivar list train: ``(T_i, D)`` float32 tensors (normalized); likewise ``valid`` and ``test``.
    :ivar Normalizer normalizer: fitted on ``train``; travels with the model in checkpoints.
    :ivar bool synthetic: whether the data were generated rather than read from files.
    :ivar dict info: loader-specific facts shown by :meth:`describe` (frame size, sample rate,
        chunking of train vs test, source path, ...).
    """

    name: str
    kind: str
    train: list
    valid: list
    test: list
    normalizer: object
    synthetic: bool = False
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DataError(f"unknown data kind {self.kind!r}; expected one of {KINDS}")

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


def handle_error(error, on_error):
    """Raise ``error`` when ``on_error == "raise"``; warn and return when ``on_error == "skip"``."""
    if on_error == "raise":
        raise error
    if on_error == "skip":
        warnings.warn(f"skipping: {error}", stacklevel=3)
        return
    options.one_of("on_error", on_error, ON_ERROR)
