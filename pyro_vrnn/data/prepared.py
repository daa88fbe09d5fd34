"""Corpora larger than memory: a dataset written once to disk as NumPy ``.npy`` files, read lazily.

A prepared corpus is a folder (written by :func:`write_prepared`; from any dataset spec by
:func:`pyro_vrnn.data.preparation.prepare`, ``pyro-vrnn prepare --data SPEC --out DIR``)::

    DIR/index.json            format, source spec and options, kind, x_dim, the emission the data call for,
                              the normalizer, per-split counts
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

The reader trusts nothing in the folder. ``index.json`` is read through the guarded opener of
:mod:`pyro_vrnn.data.files` and nested at most :data:`MAX_INDEX_DEPTH` deep; every file it names
must lie inside the folder (no absolute path, no ``..``, no symbolic link leading out), is opened by
the guarded opener (a FIFO or a device is refused at once; ``max_bytes`` bounds each file) and is
checked against the index: ``x_dim`` a whole number equal to the values' columns and to the
normalizer's size, offsets whole numbers rising from 0 to the values' rows, counts equal to the
files'. Every problem is a :class:`DataError` naming the file and the field of the index.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import options
from .base import KINDS, SPLITS, SUGGESTED_EMISSIONS, SequenceDataset
from .batching import pad_batch
from .errors import DataError
from .files import MAX_FILE_BYTES, byte_limit, open_input, read_input
from .locations import resolve_data_path
from .normalization import Normalizer

FORMAT = "pyro-vrnn-prepared/1"
INDEX = "index.json"
DTYPE = np.dtype("<f4")
DEFAULT_WORKERS = 2
#: deepest nesting of arrays/objects accepted in ``index.json`` (a written one has 3 or 4): deeper is a
#: DataError, never a RecursionError
MAX_INDEX_DEPTH = 32
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # a string (skipped whole) or a bracket


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
                   synthetic: bool = False, emission: str | None = None, overwrite: bool = False) -> Path:
    """Write a prepared corpus into folder ``out``; returns its path.

    ``splits`` maps each of ``train``, ``valid``, ``test`` to ``(lengths, sequences)``: the lengths
    first (they size the files), then an iterable of ``(T_i, D)`` arrays, already normalized. The
    folder is built as ``.OUT.tmp-PID`` beside ``out`` and renamed when complete. ``emission``: the
    one the data call for (:attr:`~pyro_vrnn.data.SequenceDataset.emission`), kept in the index. An existing
    prepared corpus at ``out`` is replaced only with ``overwrite``; any other existing, non-empty
    folder is never touched."""
    out = Path(out)
    if set(splits) != set(SPLITS):
        raise DataError(f"a prepared corpus needs the splits {SPLITS}, got {sorted(splits)}")
    if emission is not None and emission not in SUGGESTED_EMISSIONS:
        raise DataError(f"unknown emission {emission!r}; expected None or one of {SUGGESTED_EMISSIONS}")
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
                 "emission": emission, "dtype": DTYPE.str, "source": source or {}, "info": _json_safe(dict(info or {})),
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
def _shown(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a value quoted in an error, never a file's bytes."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` (strings skipped), found without
    parsing: the parser recurses once a level and would raise ``RecursionError`` on a deep nest."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def read_index(index_path: Path) -> dict:
    """The parsed ``index.json``: opened by the guarded opener (a regular file of at most
    ``MAX_FILE_BYTES["json"]``), UTF-8, nested at most :data:`MAX_INDEX_DEPTH` levels, without
    ``NaN``/``Infinity``, a JSON object. Anything else is a :class:`DataError` naming the file."""
    raw = read_input(index_path, "json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("unreadable index (not UTF-8 text)", index_path) from None
    if _json_depth_exceeds(text, MAX_INDEX_DEPTH):
        raise DataError(f"unreadable index (nested deeper than {MAX_INDEX_DEPTH} levels)", index_path)
    try:
        index = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise DataError(f"unreadable index ({str(error)[:200]})", index_path) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        got = _shown(index.get("format")) if isinstance(index, dict) else f"a JSON {type(index).__name__}"
        raise DataError(f"not a prepared-corpus index (expected format {FORMAT!r}, got {got})", index_path, "format")
    return index


def _whole(value, index_path, field: str, minimum: int = 1) -> int:
    """``value`` if it is a whole number >= ``minimum`` (not a bool, a float or a string), else :class:`DataError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataError(f"must be a whole number >= {minimum}, got {_shown(value)}", index_path, field)
    return value


def _mapping(index: dict, key: str, index_path, field: str, required: bool = True) -> dict:
    value = index.get(key) if required or key in index else {}
    if not isinstance(value, dict):
        missing = key not in index
        raise DataError("missing" if missing else f"must be a JSON object, got {_shown(value)}", index_path, field)
    return value


def _finite_number(value) -> bool:
    """Whether ``value`` (parsed JSON) is a finite real number, as float64 holds it: not a bool, not a string."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond float64
        return False


def _real_list(value, x_dim: int, index_path, field: str, positive: bool = False) -> list:
    """``value`` if it is a list of ``x_dim`` finite real numbers (``> 0`` with ``positive``)."""
    if not isinstance(value, list) or len(value) != x_dim:
        size = f"a list of {len(value)}" if isinstance(value, list) else _shown(value)
        raise DataError(f"must be a list of x_dim = {x_dim} numbers (one per dimension), got {size}", index_path, field)
    for d, v in enumerate(value):
        if not _finite_number(v) or (positive and v <= 0):
            raise DataError(f"must hold finite numbers{' > 0' if positive else ''}; entry {d} is {_shown(v)}",
                            index_path, field)
    return value


def corpus_file(folder: Path, name, index_path, field: str) -> Path:
    """The file ``name`` (a relative path from ``index.json``) inside ``folder``, checked before it
    is opened: no absolute path, no ``..``, no symbolic link that leads out of the folder. The error
    names the field and the path as written in the index; the file is not opened."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise DataError(f"must name a file in the corpus folder, got {_shown(name)}", index_path, field)
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
        raise DataError(f"names {_shown(name)}, outside the corpus folder; a prepared corpus names only files "
                        "inside its own folder (no absolute path, no '..')", index_path, field)
    path = folder / name
    base = os.path.realpath(folder)
    if os.path.commonpath([base, os.path.realpath(path)]) != base:
        raise DataError(f"names {_shown(name)}, which leads outside the corpus folder through a symbolic link",
                        index_path, field)
    return path


def _check_split_entry(folder: Path, split: str, entry, index_path) -> dict:
    """The ``splits.SPLIT`` entry of the index, every field checked: ``values`` and ``offsets`` files
    inside the folder, ``num_sequences`` and ``num_steps`` whole numbers with ``1 <= num_sequences <=
    num_steps`` (every sequence has at least one step)."""
    field = f"splits.{split}"
    if not isinstance(entry, dict):
        raise DataError(f"must be a JSON object, got {_shown(entry)}", index_path, field)
    for key in ("values", "offsets", "num_sequences", "num_steps"):
        if key not in entry:
            raise DataError("missing", index_path, f"{field}.{key}")
    num_sequences = _whole(entry["num_sequences"], index_path, f"{field}.num_sequences")
    num_steps = _whole(entry["num_steps"], index_path, f"{field}.num_steps")
    if num_sequences > num_steps:
        raise DataError(f"{num_sequences} sequences cannot fit in {field}.num_steps = {num_steps} steps (each "
                        "sequence has at least one)", index_path, f"{field}.num_sequences")
    return {"values": corpus_file(folder, entry["values"], index_path, f"{field}.values"),
            "offsets": corpus_file(folder, entry["offsets"], index_path, f"{field}.offsets"),
            "num_sequences": num_sequences, "num_steps": num_steps}


def _open_npy(path: Path, field: str, max_bytes):
    """Open a ``.npy`` file by the guarded opener (a regular file within ``max_bytes``) and read its
    header: ``(file, shape, dtype, fortran_order, data offset)``. The header is checked for what a
    reader relies on; the file's bytes never appear in an error."""
    try:
        f = open_input(path, "npy", max_bytes)
    except DataError as error:
        raise DataError(error.reason, path, field) from None
    try:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError
        return f, shape, dtype, fortran, f.tell()
    except OSError as error:
        f.close()
        raise DataError(f"cannot read ({error.strerror or 'I/O error'})", path, field) from None
    except (ValueError, TypeError, SyntaxError):
        f.close()
        raise DataError("not a .npy file (its header is not a NumPy 1.0/2.0 array header)", path, field) from None
    except BaseException:
        f.close()
        raise


def _check_size(f, path: Path, field: str, data_offset: int, shape, dtype) -> None:
    expected = data_offset + math.prod(shape) * dtype.itemsize
    size = os.fstat(f.fileno()).st_size
    if size != expected:
        raise DataError(f"{'truncated' if size < expected else 'too long'}: {size} bytes, the header "
                        f"{shape} {dtype} promises {expected}", path, field)


def _read_offsets(path: Path, field: str, max_bytes, num_sequences: int, rows: int) -> np.ndarray:
    """The ``(num_sequences + 1,)`` offsets: whole numbers (an integer array, not floats), starting at
    0, rising by at least 1, ending at ``rows`` (the values' rows)."""
    f, shape, dtype, fortran, data_offset = _open_npy(path, field, max_bytes)
    with f:
        if dtype.kind not in "iu":
            raise DataError(f"offsets must be whole numbers (an integer array), got {dtype} values", path, field)
        if len(shape) != 1 or shape[0] != num_sequences + 1:
            raise DataError(f"expected {num_sequences + 1} offsets (num_sequences + 1), got shape {shape}",
                            path, field)
        _check_size(f, path, field, data_offset, shape, dtype)
        raw = f.read(shape[0] * dtype.itemsize)
    offsets = np.frombuffer(raw, dtype=dtype)
    if offsets.min() < 0 or offsets.max() > rows:
        raise DataError(f"offsets must lie within 0..{rows} (the values' rows), got {offsets.min()}..{offsets.max()}",
                        path, field)
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != rows or (np.diff(offsets) < 1).any():
        raise DataError(f"offsets must rise from 0 to {rows} (the values' rows) by at least 1", path, field)
    return offsets


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
    ``DataLoader`` workers. ``entry`` is the split's entry of ``index.json``; every field of it is
    checked against the files (see :func:`open_prepared`). Every file is opened by the guarded
    opener, bounded by ``max_bytes`` (default ``MAX_FILE_BYTES["npy"]``)."""

    def __init__(self, folder: Path, split: str, entry: dict, x_dim: int, workers: int = DEFAULT_WORKERS,
                 max_bytes: int | None = None):
        self.folder, self.name, self.x_dim, self.workers = Path(folder), split, int(x_dim), int(workers)
        self.max_bytes = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["npy"])
        index_path = self.folder / INDEX
        entry = _check_split_entry(self.folder, split, entry, index_path)
        self.values_path, self.values_field = entry["values"], f"splits.{split}.values"
        f, shape, dtype, fortran, self.data_offset = _open_npy(self.values_path, self.values_field, self.max_bytes)
        with f:
            if dtype != DTYPE or fortran or len(shape) != 2 or shape[1] != self.x_dim:
                raise DataError(f"expected a C-ordered (steps, {self.x_dim}) float32 array (x_dim = {self.x_dim}), "
                                f"got {dtype} {shape}", self.values_path, self.values_field)
            if shape[0] != entry["num_steps"]:
                raise DataError(f"holds {shape[0]} rows, but splits.{split}.num_steps in {INDEX} says "
                                f"{entry['num_steps']}", self.values_path, self.values_field)
            _check_size(f, self.values_path, self.values_field, self.data_offset, shape, dtype)
        self.offsets_path = entry["offsets"]
        self.offsets = _read_offsets(self.offsets_path, f"splits.{split}.offsets", self.max_bytes,
                                     entry["num_sequences"], shape[0])

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
            raise DataError(f"truncated while reading {self.name} sequence {i}", self.values_path, self.values_field)
        if not np.isfinite(out).all():
            step = int(np.argwhere(~np.isfinite(out))[0, 0])
            raise DataError(f"NaN or Inf value in {self.name} sequence {i}, step {step}", self.values_path,
                            self.values_field)
        return torch.from_numpy(out)

    def read(self, indices) -> list:
        """The sequences ``indices`` (one guarded open, one positioned read each)."""
        n = len(self)
        try:
            f = open_input(self.values_path, "npy", self.max_bytes)
        except DataError as error:
            raise DataError(error.reason, self.values_path, self.values_field) from None
        with f:
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


def _check_index_fields(index: dict, folder: Path, index_path: Path):
    """``(kind, x_dim, normalizer, synthetic, emission, info, source)`` from an index whose every field used is
    checked for type, range and agreement (the split entries are checked by :class:`PreparedSplit`)."""
    if "x_dim" not in index:
        raise DataError("missing", index_path, "x_dim")
    x_dim = _whole(index["x_dim"], index_path, "x_dim")
    kind = index.get("kind")
    if kind not in KINDS:
        raise DataError(f"must be one of {KINDS}, got {_shown(kind)}", index_path, "kind")
    if index.get("dtype", DTYPE.str) != DTYPE.str:
        raise DataError(f"must be {DTYPE.str!r} (little-endian float32), got {_shown(index['dtype'])}", index_path,
                        "dtype")
    synthetic = index.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise DataError(f"must be true or false, got {_shown(synthetic)}", index_path, "synthetic")
    emission = index.get("emission")  # absent in corpora written before it was kept: the model's default
    if emission is not None and emission not in SUGGESTED_EMISSIONS:
        raise DataError(f"must be null or one of {SUGGESTED_EMISSIONS}, got {_shown(emission)}", index_path,
                        "emission")
    norm = _mapping(index, "normalizer", index_path, "normalizer")
    for key in ("shift", "scale"):
        if key not in norm:
            raise DataError("missing", index_path, f"normalizer.{key}")
    description = norm.get("description", "affine")
    if not isinstance(description, str):
        raise DataError(f"must be a string, got {_shown(description)}", index_path, "normalizer.description")
    normalizer = Normalizer(_real_list(norm["shift"], x_dim, index_path, "normalizer.shift"),
                            _real_list(norm["scale"], x_dim, index_path, "normalizer.scale", positive=True),
                            description)
    info = _mapping(index, "info", index_path, "info", required=False)
    source = _mapping(index, "source", index_path, "source", required=False)
    prepared_from = source.get("data", index.get("name", "?"))
    if not isinstance(prepared_from, str):
        raise DataError(f"must be a string, got {_shown(prepared_from)}", index_path,
                        "source.data" if "data" in source else "name")
    return kind, x_dim, normalizer, synthetic, emission, info, prepared_from


def _check_distinct_files(splits: dict, index_path: Path) -> None:
    """No two of the six files a corpus names are one file (a test split reading the training values)."""
    seen = {}
    for split_name, split in splits.items():
        for field, path in ((f"splits.{split_name}.values", split.values_path),
                            (f"splits.{split_name}.offsets", split.offsets_path)):
            real = os.path.realpath(path)
            if real in seen:
                raise DataError(f"names the same file as {seen[real]}; each split has files of its own", index_path,
                                field)
            seen[real] = field


def open_prepared(path, name: str | None = None, workers: int = DEFAULT_WORKERS,
                  max_bytes: int | None = None) -> PreparedDataset:
    """Open the prepared corpus in folder ``path`` (see the module docstring); nothing but the
    offsets is read. ``workers``: DataLoader processes that read training batches (0 = none).
    ``max_bytes``: the largest values or offsets file opened (default ``MAX_FILE_BYTES["npy"]``).

    The index is not trusted: it is read by the guarded opener and depth-limited
    (:func:`read_index`); every file it names must lie inside the folder (:func:`corpus_file`) and
    is opened by the guarded opener (a FIFO or device is refused at once); every field is checked for
    type, range and agreement with the others and with the files (``x_dim`` a whole number >= 1 equal
    to the values' columns and the normalizer's size; offsets whole numbers rising from 0 to the
    values' rows; counts equal to the files'). Any problem is a :class:`DataError` naming the file
    and the field. A relative ``path`` not found is looked up under ``$PYRO_VRNN_DATA``."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise DataError(f"workers must be a whole number >= 0, got {_shown(workers)}")
    name = options.name(name)
    max_bytes = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["npy"])
    folder = Path(resolve_data_path(path, "prepared"))
    index_path = folder / INDEX
    if not folder.is_dir() or not os.path.lexists(index_path):
        raise DataError(f"not a prepared corpus (no {INDEX}); write one with 'pyro-vrnn prepare'", folder)
    index = read_index(index_path)
    kind, x_dim, normalizer, synthetic, emission, info, prepared_from = _check_index_fields(index, folder, index_path)
    entries = _mapping(index, "splits", index_path, "splits")
    for split in SPLITS:
        if split not in entries:
            raise DataError("missing", index_path, f"splits.{split}")
    splits = {s: PreparedSplit(folder, s, entries[s], x_dim, workers, max_bytes) for s in SPLITS}
    _check_distinct_files(splits, index_path)
    return PreparedDataset(name=name or f"prepared:{folder}", kind=kind, normalizer=normalizer, synthetic=synthetic,
                           info={**info, "prepared_from": prepared_from}, emission=emission, **splits)


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
