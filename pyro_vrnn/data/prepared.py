"""Corpora larger than memory: a dataset written once to disk as NumPy ``.npy`` files, read lazily.

A prepared corpus is a folder (written by :func:`write_prepared`; from any dataset spec by
:func:`pyro_vrnn.data.preparation.prepare`, ``pyro-vrnn prepare --data SPEC --out DIR``)::

    DIR/index.json            format, source spec and options, kind, x_dim, the normalizer, per-split counts
    DIR/SPLIT.values.npy      (S, D) float32: every normalized step of the split, one sequence after another
    DIR/SPLIT.offsets.npy     (N + 1,) int64: sequence i is values[offsets[i]:offsets[i + 1]]

for SPLIT in train, valid, test. Both files are standard ``.npy``:
``np.load(DIR / "train.values.npy", mmap_mode="r")`` maps them.

Reading (:func:`open_prepared`, the ``prepared:DIR`` spec) keeps only the offsets in memory (8
bytes a sequence). A sequence is read with one positioned read, not through a mapping, so pages
a process has read do not stay in its resident memory; training batches are read and padded by
``torch.utils.data.DataLoader`` workers in the order the trainer asks for (seeded, so a resumed run
reads the same batches). The folder is written under a temporary name and renamed at the end:
an interrupted write leaves no folder that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .base import SPLITS, SequenceDataset
from .batching import pad_batch
from .errors import DataError
from .normalization import Normalizer

FORMAT = "pyro-vrnn-prepared/1"
INDEX = "index.json"
DTYPE = np.dtype("<f4")
DEFAULT_WORKERS = 2


# ------------------------------------------------------------------------------------------ writing
def _npy_header(f, shape, dtype) -> None:
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                             "fortran_order": False, "shape": tuple(int(s) for s in shape)})


def _write_split(folder: Path, split: str, x_dim: int, lengths, sequences) -> dict:
    """Write ``sequences`` (an iterable of ``(T_i, D)`` arrays with ``T_i = lengths[i]``) as one split.

    The ``.npy`` header is written first (its shape comes from ``lengths``), then the rows in order,
    streamed: nothing but the current sequence is held in memory."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or (lengths < 1).any():
        raise DataError(f"the {split} split has a sequence of length < 1")
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values_path, offsets_path = folder / f"{split}.values.npy", folder / f"{split}.offsets.npy"
    count = 0
    with open(values_path, "wb") as f:
        _npy_header(f, (int(offsets[-1]), x_dim), DTYPE)
        for count, seq in enumerate(sequences, 1):
            seq = np.ascontiguousarray(seq, dtype=DTYPE)
            if count > len(lengths) or seq.shape != (lengths[count - 1], x_dim):
                raise DataError(f"{split} sequence {count - 1} has shape {seq.shape}, expected "
                                f"({lengths[min(count, len(lengths)) - 1]}, {x_dim})")
            f.write(seq.tobytes())
        f.flush()
        os.fsync(f.fileno())
    if count != len(lengths):
        raise DataError(f"the {split} split gave {count} sequences, expected {len(lengths)}")
    with open(offsets_path, "wb") as f:
        np.save(f, offsets)
        f.flush()
        os.fsync(f.fileno())
    return {"values": values_path.name, "offsets": offsets_path.name, "num_sequences": int(len(lengths)),
            "num_steps": int(offsets[-1])}


def _json_safe(info: dict) -> dict:
    return {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool, type(None), dict, list))}


def write_prepared(out, *, name: str, kind: str, normalizer: Normalizer, splits: dict, info=None, source=None,
                   synthetic: bool = False, overwrite: bool = False) -> Path:
    """Write a prepared corpus into folder ``out``; returns its path.

    ``splits`` maps each of ``train``, ``valid``, ``test`` to ``(lengths, sequences)``: the lengths
    first (they size the files), then an iterable of ``(T_i, D)`` arrays, already normalized. The
    folder is built as ``.OUT.tmp-PID`` beside ``out`` and renamed when complete. An existing
    prepared corpus at ``out`` is replaced only with ``overwrite``; any other existing, non-empty
    folder is never touched."""
    out = Path(out)
    if set(splits) != set(SPLITS):
        raise DataError(f"a prepared corpus needs the splits {SPLITS}, got {sorted(splits)}")
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / INDEX).is_file()):
            raise DataError("exists and is not a prepared corpus; choose another --out", out)
        if (out / INDEX).is_file() and not overwrite:
            raise DataError("already holds a prepared corpus; pass --overwrite to write it again", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        x_dim = normalizer.x_dim
        written = {split: _write_split(tmp, split, x_dim, *splits[split]) for split in SPLITS}
        index = {"format": FORMAT, "name": name, "kind": kind, "synthetic": bool(synthetic), "x_dim": x_dim,
                 "dtype": DTYPE.str, "source": source or {}, "info": _json_safe(dict(info or {})),
                 "normalizer": {"shift": normalizer.shift.tolist(), "scale": normalizer.scale.tolist(),
                                "description": normalizer.description},
                 "splits": written}
        with open(tmp / INDEX, "w") as f:
            json.dump(index, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# ------------------------------------------------------------------------------------------ reading
def _npy_layout(path: Path):
    """``(shape, dtype, data offset)`` of a ``.npy`` file, from its header."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            return shape, dtype, f.tell(), fortran
    except OSError as error:
        raise DataError(f"cannot read ({error.strerror or error})", path) from None
    except ValueError as error:
        raise DataError(f"not a .npy file ({error})", path) from None


class _PaddedBatches(torch.utils.data.Dataset):
    """``dataset[index_list]`` -> padded ``(x, mask)`` of those sequences (``None`` for an empty list)."""

    def __init__(self, split: "PreparedSplit"):
        self.split = split

    def __getitem__(self, index_list):
        return pad_batch(self.split.read(index_list)) if len(index_list) else None


class PreparedSplit(Sequence):
    """One split of a prepared corpus: a read-only sequence of ``(T_i, D)`` float32 tensors.

    ``split[i]`` reads sequence ``i`` from disk; ``split.lengths`` (an ``(N,)`` int64 array) comes
    from the offsets without reading any values; :meth:`batches` pads index lists into batches in
    ``DataLoader`` workers."""

    def __init__(self, folder: Path, split: str, entry: dict, x_dim: int, workers: int = DEFAULT_WORKERS):
        self.folder, self.name, self.x_dim, self.workers = Path(folder), split, int(x_dim), int(workers)
        self.values_path = self.folder / entry["values"]
        offsets_path = self.folder / entry["offsets"]
        shape, dtype, self.data_offset, fortran = _npy_layout(self.values_path)
        if dtype != DTYPE or fortran or len(shape) != 2 or shape[1] != self.x_dim:
            raise DataError(f"expected a C-ordered (steps, {self.x_dim}) float32 array, got {dtype} {shape}",
                            self.values_path)
        needed = self.data_offset + shape[0] * shape[1] * DTYPE.itemsize
        if os.path.getsize(self.values_path) < needed:
            raise DataError(f"truncated: {os.path.getsize(self.values_path)} bytes, the header promises {needed}",
                            self.values_path)
        try:
            offsets = np.load(offsets_path)
        except (OSError, ValueError) as error:
            raise DataError(f"unreadable offsets ({error})", offsets_path) from None
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != shape[0] \
                or (np.diff(offsets) < 1).any():
            raise DataError(f"offsets must rise from 0 to {shape[0]} (the values' rows) by at least 1", offsets_path)
        self.offsets = offsets.astype(np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` int64 lengths of the sequences, from the offsets."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _read_one(self, f, i: int) -> torch.Tensor:
        start, stop = int(self.offsets[i]), int(self.offsets[i + 1])
        out = np.empty((stop - start, self.x_dim), dtype=DTYPE)
        f.seek(self.data_offset + start * self.x_dim * DTYPE.itemsize)
        if f.readinto(memoryview(out).cast("B")) != out.nbytes:
            raise DataError(f"truncated while reading {self.name} sequence {i}", self.values_path)
        return torch.from_numpy(out)

    def read(self, indices) -> list:
        """The sequences ``indices`` (one open file, one positioned read each)."""
        n = len(self)
        with open(self.values_path, "rb", buffering=0) as f:
            return [self._read_one(f, self._check_index(i, n)) for i in indices]

    @staticmethod
    def _check_index(i, n):
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"sequence {i} out of range for a split of {n}")
        return i % n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.read(range(*i.indices(len(self))))
        return self.read([i])[0]

    def batches(self, index_lists, workers: int | None = None):
        """Padded ``(x, mask)`` of each index list, in order (``None`` for an empty list), read by
        ``workers`` DataLoader processes (0: in this process). The loader draws its seed from a
        generator of its own, never from the global RNG, so loading does not change a run's noise."""
        workers = self.workers if workers is None else int(workers)
        loader = torch.utils.data.DataLoader(_PaddedBatches(self), batch_size=None, sampler=index_lists,
                                             num_workers=workers, generator=torch.Generator(),
                                             pin_memory=torch.cuda.is_available(),
                                             prefetch_factor=2 if workers else None)
        return iter(loader)


class PreparedDataset(SequenceDataset):
    """A :class:`~pyro_vrnn.data.SequenceDataset` whose splits are :class:`PreparedSplit` s."""

    def describe(self):
        lines = [f"dataset {self.name} ({self.kind}, {'SYNTHETIC' if self.synthetic else 'real data'}, prepared "
                 f"corpus of {self.info.get('prepared_from', '?')}), x_dim={self.x_dim}"]
        for split in SPLITS:
            lengths = self.split(split).lengths
            lines.append(f"  {split:5s}: {len(lengths)} sequences, {int(lengths.sum())} steps (length "
                         f"min/mean/max {lengths.min()}/{lengths.mean():.1f}/{lengths.max()})")
        lines.append(f"  normalization: {self.normalizer.description}")
        lines += [f"  {key.replace('_', ' ')}: {value}" for key, value in self.info.items()
                  if isinstance(value, (str, int, float, bool)) and key != "prepared_from"]
        return "\n".join(lines)


def open_prepared(path, name: str | None = None, workers: int = DEFAULT_WORKERS) -> PreparedDataset:
    """Open the prepared corpus in folder ``path`` (see the module docstring); nothing but the
    offsets is read. ``workers``: DataLoader processes that read training batches (0 = none)."""
    folder = Path(path)
    index_path = folder / INDEX
    if not index_path.is_file():
        raise DataError(f"not a prepared corpus (no {INDEX}); write one with 'pyro-vrnn prepare'", folder)
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"unreadable index ({error})", index_path) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise DataError(f"not a prepared-corpus index (expected format {FORMAT!r})", index_path)
    if not (isinstance(workers, int) and workers >= 0):
        raise DataError(f"workers must be an integer >= 0, got {workers!r}")
    try:
        normalizer = Normalizer(index["normalizer"]["shift"], index["normalizer"]["scale"],
                                index["normalizer"].get("description", "affine"))
        splits = {s: PreparedSplit(folder, s, index["splits"][s], index["x_dim"], workers) for s in SPLITS}
        source = index.get("source", {}).get("data", index.get("name"))
        return PreparedDataset(name=name or f"prepared:{folder}", kind=index["kind"], normalizer=normalizer,
                               synthetic=bool(index.get("synthetic")),
                               info={"prepared_from": source, **index.get("info", {})}, **splits)
    except (KeyError, TypeError) as error:
        raise DataError(f"index lacks or mangles {error}", index_path) from None


# ------------------------------------------------------------------------------------ any container
def sequence_lengths(sequences):
    """Lengths of a list of ``(T_i, D)`` tensors, or of a prepared split (from its offsets)."""
    lengths = getattr(sequences, "lengths", None)
    return lengths if lengths is not None else [len(s) for s in sequences]


def load_batches(sequences, index_lists):
    """Padded ``(x, mask)`` for each index list in turn, ``None`` for an empty one: from memory for a
    list, through DataLoader workers for a prepared split (:meth:`PreparedSplit.batches`)."""
    batches = getattr(sequences, "batches", None)
    if batches is not None:
        return batches(index_lists)
    return (pad_batch([sequences[i] for i in idx]) if len(idx) else None for idx in index_lists)


def __getattr__(name):
    """``pyro_vrnn.data.prepared.prepare``: the writer's old name, kept only while ``pyro_vrnn/cli.py``
    imports it from here. Transitional: the writer lives in :mod:`pyro_vrnn.data.preparation` (it
    reads any spec through the registry, which itself reads prepared corpora); import it from there
    and delete this function."""
    if name == "prepare":
        from .preparation import prepare

        return prepare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
