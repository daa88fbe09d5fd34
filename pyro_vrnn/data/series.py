"""Tabular time series: CSV/TSV in long form, folders of CSV or ``.npy`` files, ``.npz`` archives.

Sources (``load_series(path, ...)``, ``--data series:PATH``):

- **a CSV or TSV file** (``.csv``: commas, ``.tsv``: tabs; ``delimiter=`` overrides), in long form:
  a header row of column names, then one row per time step. ``id_column=NAME`` names the sequence a
  row belongs to (without it the whole file is one sequence); ``time_column=NAME`` orders the rows
  of a sequence (numerically when every time is a number, else as text, which orders ISO 8601
  dates; without it, file order); rows may come in any order. The other columns are the features
  (``columns=[...]`` or ``columns="a,b"`` picks them) and must be numbers.
- **a ``.npy`` file**: one ``(T, D)`` sequence (a 1-D array is ``D = 1``).
- **a ``.npz`` archive**: with keys ``train`` and ``test`` (and optionally ``valid``), each holding
  the sequences of that split: a ``(N, T, D)`` array, or an object array (a list saved with
  ``np.savez``) of ``(T_i, D)`` arrays, or one ``(T, D)`` array; otherwise every key is one
  sequence (``(T, D)`` or ``(T,)``; a 3-D array under a key is ``N`` sequences).
- **a folder**: with ``train/``, ``valid/``, ``test/`` sub-folders, or ``train``, ``valid``, ``test``
  files (``train.csv``, ``test.npy``, ...), those are the splits (a missing ``valid`` or ``test`` is
  held out of ``train`` by its fraction, seeded); otherwise every CSV/TSV/``.npy`` file under it.
  A CSV file in a folder holds one sequence, or one per ``id_column`` value.

Splits: sequences not already in splits are split by a seeded shuffle (``valid_fraction``,
``test_fraction``, ``seed``); a source of one sequence is cut in time (the first part trains,
then valid, then test). ``chunk_length=N`` then cuts every sequence into consecutive pieces of ``N``
steps (the last may be shorter).

Values: a missing value (an empty cell, ``NA``, ``NaN``, ``N/A``, ``null``, ``None``; NaN in an
array) is a :class:`DataError` naming the file and the row (the 1-based line of a CSV file; the
0-based row of an array) unless ``missing="drop"``, which drops those rows; infinite values are
always refused. A column whose values are all 0 or 1 (in every split) is binary: when every column
is, the data call for a Bernoulli emission (``dataset.emission == "bernoulli"``, identity
normalizer); otherwise for a Gaussian one (``"normal"``), and each non-binary column is z-scored by
its training mean and std (:meth:`~pyro_vrnn.data.Normalizer.fit_standard`) while binary columns
stay 0/1. ``dataset.info`` holds ``feature_names``, ``binary_columns`` and ``sequence_names``
(per split, the id, file or key each sequence came from).

Files are opened through :mod:`pyro_vrnn.data.files`: regular files of at most ``max_bytes``
(``MAX_FILE_BYTES["table"]``, 256 MiB, for CSV/TSV/``.npy``; ``MAX_FILE_BYTES["npz"]`` for
``.npz``); ``max_expanded_bytes`` (1 GiB) bounds the values held, 8 bytes each, checked file by file.
"""

import csv
import io
import math
import os
from array import array

import numpy as np

from . import options
from .base import ON_ERROR, SPLITS, SequenceDataset, handle_error, split_folders, split_indices, split_steps, to_tensors
from .errors import DataError
from .files import MAX_EXPANDED_BYTES, MAX_FILE_BYTES, byte_limit, read_input, too_large
from .handwriting import read_npz_arrays
from .locations import resolve_data_path
from .normalization import Normalizer

TABLE_EXTENSIONS = (".csv", ".tsv")
#: what may stand in a folder of sequences (matched case-insensitively)
FOLDER_EXTENSIONS = TABLE_EXTENSIONS + (".npy",)
#: what a missing value does: refuse the file (naming the row), or drop the rows that have one
MISSING = ("raise", "drop")
#: cell texts read as a missing value (compared stripped and lower-cased)
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none"})


# ---------------------------------------------------------------------------------------------- options
def _column(option, value):
    """A column name: a non-empty string (a whole number, as ``--data-option`` parses ``2020``, is taken
    as its text)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{option} must be a column name (a non-empty string), got {value!r}")
    return value.strip()


def _columns(value):
    """``None``, or a list of column names from a list/tuple or a comma-separated string."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise DataError(f"columns must be a list of column names or a comma-separated string, got {value!r}")
    names = [_column("columns", item) for item in items]
    if len(set(names)) != len(names):
        raise DataError(f"columns must name each column once, got {value!r}")
    return names


def _delimiter(value):
    if value is None:
        return None
    if value in ("tab", "\\t"):
        return "\t"
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n\"":
        raise DataError(f"delimiter must be one character (or 'tab'), not a quote or line break, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------- CSV / TSV
def _cell(text):
    """A cell as a float, ``None`` when missing; raises ``ValueError`` when not a number."""
    token = text.strip()
    if token.lower() in MISSING_TOKENS:
        return None
    value = float(token)
    return None if math.isnan(value) else value


def _sort_key(values):
    """Sort by number when every value is one, else by text."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return {v: (0, v) for v in values}
    if any(math.isnan(n) for n in numbers):
        return {v: (0, v) for v in values}
    return {v: (n, "") for v, n in zip(values, numbers)}


def read_table(path, id_column=None, time_column=None, columns=None, delimiter=None, missing="raise",
               max_bytes=None):
    """Read a long-form CSV/TSV file (see the module docstring).

    :returns: ``(sequences, feature_names, dropped)``: a list of ``(id, values)`` with ``id`` the
        ``id_column`` text (``None`` without one) and ``values`` a ``(T, D)`` float64 array in time
        order; the ``D`` feature column names; the number of rows dropped for missing values.
    """
    path = os.fspath(path)
    blob = read_input(path, "table", max_bytes)
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start}: {blob[exc.start:exc.start + 1]!r})", path) from None
    delimiter = delimiter or ("\t" if path.lower().endswith(".tsv") else ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            raise DataError("no header row (an empty file)", path)
        header = [name.strip() for name in header]
        duplicated = sorted({name for name in header if header.count(name) > 1 and name})
        if duplicated:
            raise DataError(f"column name(s) {', '.join(map(repr, duplicated))} appear more than once in the header",
                            path)
        position = {name: i for i, name in enumerate(header)}
        for option, column in (("id_column", id_column), ("time_column", time_column)):
            if column is not None and column not in position:
                raise DataError(f"{option} {column!r} is not a column of this file; its columns are "
                                f"{', '.join(map(repr, header))}", path)
        if id_column is not None and id_column == time_column:
            raise DataError(f"id_column and time_column name the same column {id_column!r}", path)
        special = {id_column, time_column}
        if columns is not None:
            absent = [c for c in columns if c not in position]
            if absent:
                raise DataError(f"columns {', '.join(map(repr, absent))} not in this file; its columns are "
                                f"{', '.join(map(repr, header))}", path)
            clash = [c for c in columns if c in special]
            if clash:
                raise DataError(f"columns may not name the id or time column ({', '.join(map(repr, clash))})", path)
            features = list(columns)
        else:
            features = [name for name in header if name not in special]
            if "" in features:
                raise DataError(f"column {header.index('') + 1} has no name (an index written by pandas?); name "
                                "the feature columns with columns=... or write the file without it", path)
        if not features:
            raise DataError("no feature columns (every column is the id or the time)", path)
        feature_at = [position[name] for name in features]
        ids, times, lines, values, dropped = [], [], [], array("d"), 0
        for row in reader:
            if not row:
                continue  # a blank line
            line = reader.line_num
            if len(row) != len(header):
                raise DataError(f"{len(row)} cells, but the header names {len(header)} columns", path, f"line {line}")
            row_values, gap = [], None
            for name, i in zip(features, feature_at):
                try:
                    value = _cell(row[i])
                except ValueError:
                    raise DataError(f"column {name!r} holds {row[i].strip()!r}, not a number (feature columns must be "
                                    "numeric; pick the features with columns=...)", path, f"line {line}") from None
                if value is None:
                    gap = gap or name
                elif math.isinf(value):
                    raise DataError(f"column {name!r} holds an infinite value {row[i].strip()!r}", path,
                                    f"line {line}")
                row_values.append(value)
            key = [row[position[c]].strip() if c is not None else "" for c in (id_column, time_column)]
            for column, text in zip((id_column, time_column), key):
                if column is not None and text.lower() in MISSING_TOKENS:
                    gap = gap or column
            if gap is not None:
                if missing == "raise":
                    raise DataError(f"missing value in column {gap!r} (missing=drop drops such rows)", path,
                                    f"line {line}")
                dropped += 1
                continue
            ids.append(key[0])
            times.append(key[1])
            lines.append(line)
            values.extend(row_values)
    except csv.Error as exc:
        raise DataError(f"malformed CSV ({exc})", path, f"line {reader.line_num}") from None
    if not lines:
        raise DataError("no data rows" + (f" left after dropping {dropped} with missing values" if dropped else ""),
                        path)
    table = np.frombuffer(values, dtype=np.float64).reshape(len(lines), len(features))
    groups = {}
    for row, ident in enumerate(ids):
        groups.setdefault(ident, []).append(row)
    id_order = _sort_key(list(groups))
    time_order = _sort_key(sorted(set(times))) if time_column is not None else None
    sequences = []
    for ident in sorted(groups, key=id_order.get):
        rows = groups[ident]
        if time_order is not None:
            rows = sorted(rows, key=lambda r: time_order[times[r]])
            for a, b in zip(rows, rows[1:]):
                if time_order[times[a]] == time_order[times[b]]:
                    where = f"sequence {ident!r}" if id_column is not None else None
                    raise DataError(f"time {times[a]!r} appears twice (lines {lines[a]} and {lines[b]}), so the order "
                                    "of its rows is unknown", path, where)
        sequences.append((ident if id_column is not None else None, table[rows]))
    return sequences, features, dropped


# ---------------------------------------------------------------------------------------------- arrays
def _numeric(value, path, where):
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise DataError(f"expected an array of numbers, got {kind}", path, where)
    return value.astype(np.float64)


def _sequences_of(value, path, label):
    """The ``(label, (T, D) array)`` sequences an array holds: object array -> its items; 1-D -> one of
    ``D = 1``; 2-D -> one; 3-D -> ``N``."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        return [(f"{label}[{i}]", _as_2d(_numeric(item, path, f"{label}[{i}]"), path, f"{label}[{i}]"))
                for i, item in enumerate(value.reshape(-1))]
    value = _numeric(value, path, label)
    if value.ndim == 3:
        return [(f"{label}[{i}]", value[i]) for i in range(value.shape[0])]
    return [(label, _as_2d(value, path, label))]


def _as_2d(value, path, where):
    if value.ndim == 1:
        value = value[:, None]
    if value.ndim != 2:
        raise DataError(f"expected a (T, D) or (T,) array, got shape {value.shape}", path, where)
    return value


def _read_npy(path, max_bytes):
    blob = read_input(path, "table", max_bytes)
    try:
        value = np.load(io.BytesIO(blob), allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError("an object array (pickled) is not read from a .npy file; save an array of numbers",
                            path) from None
        raise DataError(f"not a readable .npy array ({exc})", path) from None
    except Exception as exc:  # truncated or corrupt header
        raise DataError(f"not a readable .npy array ({type(exc).__name__}: {exc})", path) from None
    if not isinstance(value, np.ndarray):
        raise DataError("not a .npy array (an .npz archive? give it as the data path itself)", path)
    return value


def _read_npz(path, max_bytes, expanded_limit):
    """``{group: [(label, array), ...]}``: groups ``train``/``valid``/``test`` when the archive has
    those keys, else ``"all"`` with one or more sequences a key."""
    arrays = read_npz_arrays(path, None, max_bytes, expanded_limit)
    if not arrays:
        raise DataError("the archive holds no arrays", path)
    if "train" in arrays or "test" in arrays:
        others = sorted(set(arrays) - set(SPLITS))
        if others or "train" not in arrays or "test" not in arrays:
            raise DataError(f"keys train and test (and optionally valid) hold the splits; got keys {sorted(arrays)}",
                            path)
        return {split: _sequences_of(arrays[split], path, split) for split in SPLITS if split in arrays}
    return {"all": [seq for key in sorted(arrays) for seq in _sequences_of(arrays[key], path, key)]}


def _drop_missing(values, path, where, missing):
    """``values`` without rows holding NaN (``missing="drop"``), or a :class:`DataError` naming the row."""
    if np.isinf(values).any():
        row = int(np.argwhere(np.isinf(values))[0, 0])
        raise DataError(f"infinite value at row {row} (counting from 0)", path, where)
    gaps = np.isnan(values).any(axis=1)
    if not gaps.any():
        return values, 0
    if missing == "raise":
        raise DataError(f"missing value (NaN) at row {int(np.flatnonzero(gaps)[0])} (counting from 0; missing=drop "
                        "drops such rows)", path, where)
    return values[~gaps], int(gaps.sum())


# ---------------------------------------------------------------------------------------------- sources
def _find_files(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in files
                  if not f.startswith(".") and f.lower().endswith(FOLDER_EXTENSIONS)]
    return sorted(found)


def _split_files(path):
    """``{split: file}`` for files named ``train``/``valid``/``test`` (any of the folder extensions)."""
    found = {}
    for entry in sorted(os.listdir(path)):
        stem, ext = os.path.splitext(entry)
        if stem.lower() in SPLITS and ext.lower() in FOLDER_EXTENSIONS and os.path.isfile(os.path.join(path, entry)):
            if stem.lower() in found:
                raise DataError(f"two files for the {stem.lower()} split: {os.path.basename(found[stem.lower()])} and "
                                f"{entry}", path)
            found[stem.lower()] = os.path.join(path, entry)
    return found


def _layout(path):
    """``({group: [files]}, description)`` for a folder (see the module docstring)."""
    folders = split_folders(path)
    if folders:
        groups = {split: _find_files(folders[split]) for split in SPLITS if split in folders}
        description = "split folders " + ", ".join(f"{s}/" for s in groups)
    else:
        files = _split_files(path)
        groups = {split: [files[split]] for split in SPLITS if split in files}
        description = "split files " + ", ".join(os.path.basename(f) for f in files.values())
        if not files:
            groups = {"all": _find_files(path)}
            description = "one folder, sequences split by seeded shuffle"
            if not groups["all"]:
                raise DataError(f"no series files ({', '.join(FOLDER_EXTENSIONS)}) in this folder", path)
    if "all" not in groups and "train" not in groups:
        raise DataError(f"has {', '.join(groups)} but no train split", path)
    return groups, description


class _Reader:
    """Reads the files of one ``load_series`` call, checking that their features agree."""

    def __init__(self, settings, expanded_limit):
        self.settings = settings
        self.limit, self.held = expanded_limit, 0
        self.names = None  # feature names, from the first file that has them
        self.names_from = None
        self.x_dim = None
        self.dropped = 0

    def read(self, file, label):
        """``[(name, (T, D) array), ...]`` of ``file``; ``label`` prefixes the names of its sequences."""
        s = self.settings
        lower = file.lower()
        if lower.endswith(TABLE_EXTENSIONS):
            sequences, names, dropped = read_table(file, s["id_column"], s["time_column"], s["columns"],
                                                   s["delimiter"], s["missing"], s["max_bytes"])
            named = [(label if ident is None else (ident if not label else f"{label}:{ident}"), values)
                     for ident, values in sequences]
        else:
            if s["id_column"] is not None or s["time_column"] is not None or s["columns"] is not None:
                raise DataError("id_column, time_column and columns apply to CSV/TSV files, not to arrays", file)
            names, dropped = None, 0
            named = []
            for key, values in _sequences_of(_read_npy(file, s["max_bytes"]), file, label or "array"):
                values, gaps = _drop_missing(values, file, None, s["missing"])
                dropped += gaps
                named.append((key, values))
        self._check(file, names, named)
        self.dropped += dropped
        return named

    def add_arrays(self, file, groups):
        """The groups of an ``.npz`` archive, missing values handled and features checked."""
        out = {}
        for group, sequences in groups.items():
            out[group] = []
            for key, values in sequences:
                values, gaps = _drop_missing(values, file, f"array {key}", self.settings["missing"])
                self.dropped += gaps
                out[group].append((key, values))
            self._check(file, None, out[group])
        return out

    def _check(self, file, names, named):
        """Refuse an empty sequence, a width or feature names unlike the files before, or going over
        ``max_expanded_bytes``; only then count the file in (a skipped file leaves no trace)."""
        x_dim, held = self.x_dim, self.held
        for key, values in named:
            if values.shape[0] == 0:
                raise DataError("empty sequence (0 steps" + (", after dropping rows with missing values)"
                                                             if self.settings["missing"] == "drop" else ")"),
                                file, f"sequence {key}")
            x_dim = values.shape[1] if x_dim is None else x_dim
            if values.shape[1] != x_dim:
                raise DataError(f"{values.shape[1]} features per step, but the sequences before have {x_dim}",
                                file, f"sequence {key}")
            held += values.size * 8
            if held > self.limit:
                raise DataError(too_large("the series read so far", held, self.limit, "max_expanded_bytes"), file)
        if names is not None and self.names is not None and names != self.names:
            raise DataError(f"its feature columns {', '.join(names)} differ from {', '.join(self.names)} of "
                            f"{self.names_from}", file)
        self.x_dim, self.held = x_dim, held
        if names is not None and self.names is None:
            self.names, self.names_from = names, file


def _split(groups, valid_fraction, test_fraction, seed):
    """``{split: [(name, array)]}`` from groups already in splits (a missing valid/test held out of
    train) or one group ``"all"`` (seeded shuffle; one sequence cut in time)."""
    if "all" not in groups:
        missing = {s: f for s, f in (("valid", valid_fraction), ("test", test_fraction)) if s not in groups}
        splits = {s: list(groups.get(s, [])) for s in SPLITS}
        if missing:
            keep, valid, test = split_indices(len(groups["train"]), missing.get("valid", 0.0),
                                              missing.get("test", 0.0), seed)
            for split, held in (("valid", valid), ("test", test)):
                if split in missing:
                    splits[split] = [groups["train"][i] for i in held]
            splits["train"] = [groups["train"][i] for i in keep]
        return splits, None
    sequences = groups["all"]
    if len(sequences) == 1:
        (label, values), = sequences
        cuts = dict(zip(SPLITS, split_steps(values.shape[0], valid_fraction, test_fraction)))
        return ({s: [(f"{label} [steps {c.start}:{c.stop}]", values[c])] if c.stop > c.start else []
                 for s, c in cuts.items()}, "one sequence, cut in time (train, then valid, then test)")
    indices = dict(zip(SPLITS, split_indices(len(sequences), valid_fraction, test_fraction, seed)))
    return ({s: [sequences[i] for i in idx] for s, idx in indices.items()},
            f"sequences split by seeded shuffle (seed {seed})")


def _chunk(sequences, length):
    """Each ``(name, (T, D))`` cut into consecutive pieces of ``length`` steps (the last may be shorter)."""
    return [(f"{name} [steps {a}:{min(a + length, values.shape[0])}]", values[a:a + length])
            for name, values in sequences for a in range(0, values.shape[0], length)]


def _read_source(path, reader, settings, on_error, max_bytes, expanded_limit):
    """``(groups, layout, format)``: the sequences of ``path`` as ``{group: [(name, array)]}`` (groups
    ``train``/``valid``/``test``, or ``"all"`` to be split), and two lines for ``describe``."""
    if os.path.isdir(path):
        file_groups, layout = _layout(path)
        groups = {}
        for group, files in file_groups.items():
            groups[group] = []
            for file in files:  # one file a split with ids: its sequences are named by id alone
                label = "" if group != "all" and len(files) == 1 and settings["id_column"] else \
                    os.path.relpath(file, path)
                try:
                    groups[group] += reader.read(file, label)
                except DataError as error:
                    handle_error(error, on_error)
            if not groups[group]:
                raise DataError(f"no usable series files{'' if group == 'all' else f' in the {group} split'}", path)
        return groups, layout, "folder of CSV/TSV/.npy files"
    lower = path.lower()
    if lower.endswith(".npz"):
        if settings["id_column"] is not None or settings["time_column"] is not None or settings["columns"] is not None:
            raise DataError("id_column, time_column and columns apply to CSV/TSV files, not to an .npz archive", path)
        groups = reader.add_arrays(path, _read_npz(path, byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["npz"]),
                                                   expanded_limit))
        layout = "one sequence a key" if "all" in groups else "keys " + ", ".join(groups)
        return groups, layout, ".npz archive"
    if lower.endswith(FOLDER_EXTENSIONS):
        groups = {"all": reader.read(path, "" if settings["id_column"] else os.path.basename(path))}
        if not lower.endswith(TABLE_EXTENSIONS):
            return groups, "one file", ".npy array"
        return groups, "one file", "CSV/TSV long form" + "".join(
            f", {option}={settings[option]}" for option in ("id_column", "time_column") if settings[option])
    raise DataError(f"series data must be a {', '.join(FOLDER_EXTENSIONS + ('.npz',))} file or a folder of them", path)


def load_series(path, id_column=None, time_column=None, columns=None, delimiter=None, missing="raise",
                valid_fraction=0.1, test_fraction=0.1, seed=0, chunk_length=None, on_error="raise", name=None,
                max_bytes=None, max_expanded_bytes=None):
    """Load tabular time series (see the module docstring for the sources, splits and values).

    :param path: a ``.csv``/``.tsv``, ``.npy`` or ``.npz`` file, or a folder of CSV/TSV/``.npy`` files;
        a relative path not found is looked up under ``$PYRO_VRNN_DATA`` (:mod:`pyro_vrnn.data.locations`).
    :param str id_column: the CSV column naming each row's sequence (one sequence without it).
    :param str time_column: the CSV column ordering each sequence's rows (file order without it).
    :param columns: the CSV feature columns (a list, or ``"a,b"``); all other columns without it.
    :param str delimiter: one character, or ``"tab"``; by default ``,`` (``\\t`` for ``.tsv``).
    :param str missing: ``"raise"`` (a missing value is a :class:`DataError` naming file and row)
        or ``"drop"`` (rows with one are dropped).
    :param float valid_fraction: share of sequences (of steps, for one sequence) held out to validate.
    :param float test_fraction: likewise for the test split.
    :param int seed: of the shuffle that splits the sequences.
    :param int chunk_length: cut every sequence into pieces of this many steps (``None``: whole).
    :param str on_error: ``"raise"``, or ``"skip"`` a file of a folder that cannot be used, with a warning.
    :param int max_bytes: the largest file read (default per format, see the module docstring).
    :param int max_expanded_bytes: the most the values read may take, 8 bytes each (default 1 GiB).
    :returns: :class:`SequenceDataset` of kind ``"series"``, sequences ``(T, D)`` normalized, with
        ``emission`` ``"bernoulli"`` (every column 0/1; identity normalizer) or ``"normal"``.
    """
    settings = {"id_column": _column("id_column", id_column), "time_column": _column("time_column", time_column),
                "columns": _columns(columns), "delimiter": _delimiter(delimiter),
                "missing": options.one_of("missing", missing, MISSING)}
    valid_fraction, test_fraction = options.split_fractions(valid_fraction, test_fraction)
    seed = options.seed(seed)
    chunk_length = options.whole_number("chunk_length", chunk_length, minimum=1, allow_none=True)
    on_error = options.one_of("on_error", on_error, ON_ERROR)
    name = options.name(name)
    expanded_limit = byte_limit("max_expanded_bytes", max_expanded_bytes, MAX_EXPANDED_BYTES)
    settings["max_bytes"] = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["table"])
    path = resolve_data_path(path, "series")
    reader = _Reader(settings, expanded_limit)
    groups, layout, source_format = _read_source(path, reader, settings, on_error, max_bytes, expanded_limit)
    try:
        splits, how = _split(groups, valid_fraction, test_fraction, seed)
    except DataError as error:
        raise DataError(error.reason, path) from None
    if chunk_length is not None:
        splits = {s: _chunk(seqs, chunk_length) for s, seqs in splits.items()}
    names = reader.names or [f"x{d}" for d in range(reader.x_dim)]
    binary = [int(d) for d in np.flatnonzero(np.logical_and.reduce(
        [np.isin(values, (0.0, 1.0)).all(axis=0) for seqs in splits.values() for _, values in seqs]))]
    if len(binary) == len(names):
        emission, normalizer = "bernoulli", Normalizer.identity(len(names))
    else:
        emission = "normal"
        try:
            normalizer = Normalizer.fit_standard([v for _, v in splits["train"]], keep_dims=binary, names=names)
        except DataError as error:
            hint = "; leave such a column out with columns=..." if reader.names else ""
            raise DataError(error.reason + hint, path) from None
    shift, scale = normalizer.shift.numpy(), normalizer.scale.numpy()
    tensors = {s: to_tensors([(values - shift) / scale for _, values in seqs]) for s, seqs in splits.items()}
    info = {"source": path, "format": source_format, "layout": layout + (f"; {how}" if how else ""),
            "features": ", ".join(names) + (f" (0/1: {', '.join(names[d] for d in binary)})" if binary else ""),
            "feature_names": list(names), "binary_columns": [names[d] for d in binary],
            "sequence_names": {s: [n for n, _ in seqs] for s, seqs in splits.items()}}
    if reader.dropped:
        info["rows_dropped"] = f"{reader.dropped} with missing values (missing=drop)"
    if chunk_length is not None:
        info["chunking"] = f"pieces of {chunk_length} steps (the last of a sequence may be shorter)"
    return SequenceDataset(name=name or f"series:{path}", kind="series", train=tensors["train"], valid=tensors["valid"],
                           test=tensors["test"], normalizer=normalizer, synthetic=False, info=info, emission=emission)
