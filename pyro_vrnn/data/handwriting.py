"""Online handwriting as ``(dx, dy, pen_lifted)`` rows: IAM-OnDB ``lineStrokes`` XML and stroke-3 ``.npz``.

Row ``t`` of a sequence is the pen's offset from the previous point and a bit that is 1 when the
pen leaves the paper after this point (the last point of a stroke). The first row's offset is 0.

- **IAM-OnDB** (``lineStrokes/**/*.xml``): ``<StrokeSet><Stroke><Point x= y= .../>``. Whiteboard
  ``y`` grows downwards, so ``dy`` is negated to make up positive. Splits come from the task lists
  ``trainset.txt`` (train), ``testset_v.txt`` + ``testset_t.txt`` (valid), ``testset_f.txt`` (test)
  when they sit in the folder; otherwise files are split by a seeded shuffle.
- **stroke-3 .npz** (sketch-rnn's layout): keys ``train``, ``valid``, ``test``, each an object array
  of int arrays with rows ``(dx, dy, pen)``. Read with a restricted unpickler (no code runs).
  Sketch-rnn's ``dy`` is in screen coordinates (down is positive), so it is negated too: every
  handwriting source, synthetic included, comes out y-up.

Files are opened through :mod:`pyro_vrnn.data.files` (regular files of bounded size). XML is parsed
by ``defusedxml``: entity declarations (billion laughs) and external references (XXE) are refused.
An archive may expand to at most ``max_expanded_bytes`` (its members' declared sizes are checked
before anything is decompressed, and reading stops there).

Preprocessing, as is usual for this data: offsets clipped to ``[-offset_limit, offset_limit]`` raw
units (500 for IAM-OnDB as in common IAM code, 1000 for stroke-3 as in sketch-rnn; ``None`` for no
clipping), then ``(dx, dy)`` divided by their pooled training std; the pen bit stays 0/1.
"""

import io
import os
import re
import xml.etree.ElementTree as ElementTree
import zipfile

import defusedxml
import defusedxml.ElementTree
import numpy as np

from . import options
from .base import ON_ERROR, SPLITS, SequenceDataset, check_sequence, handle_error, split_indices, to_tensors
from .errors import DataError
from .files import MAX_EXPANDED_BYTES, MAX_FILE_BYTES, byte_limit, open_input, read_input, too_large
from .locations import resolve_data_path
from .normalization import Normalizer
from .safe_pickle import safe_loads

IAM_OFFSET_LIMIT = 500.0
STROKE3_OFFSET_LIMIT = 1000.0
_FLIP_Y = np.array([1.0, -1.0, 1.0])
IAM_SPLIT_LISTS = {"train": ("trainset.txt",), "valid": ("testset_v.txt", "testset_t.txt"),
                   "test": ("testset_f.txt",)}


def strokes_to_offsets(strokes, flip_y=False):
    """List of strokes, each ``(N_k, 2)`` absolute points -> ``(sum N_k, 3)`` rows ``(dx, dy, pen)``."""
    points = np.concatenate([np.asarray(s, dtype=np.float64) for s in strokes], axis=0)
    pen = np.zeros(len(points))
    pen[np.cumsum([len(s) for s in strokes]) - 1] = 1.0
    offsets = np.zeros_like(points)
    offsets[1:] = points[1:] - points[:-1]
    if flip_y:
        offsets[:, 1] = -offsets[:, 1]
    return np.concatenate([offsets, pen[:, None]], axis=1)


def read_iam_strokes(path, max_bytes=None):
    """Parse one IAM-OnDB lineStrokes XML file -> list of ``(N_k, 2)`` arrays of absolute ``(x, y)``.

    The file is read through :func:`~pyro_vrnn.data.files.read_input` (at most ``max_bytes``, default
    ``MAX_FILE_BYTES["xml"]``) and parsed by ``defusedxml``, which refuses entity declarations and
    external references before expanding anything.
    """
    blob = read_input(path, "xml", max_bytes)
    try:
        root = defusedxml.ElementTree.fromstring(blob, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise DataError(f"XML with entity declarations or external references is refused ({exc}): a data file "
                        "has no need of them, and they can expand without bound (billion laughs) or read other "
                        "files (XXE)", path) from None
    except ElementTree.ParseError as exc:
        raise DataError(f"malformed XML ({exc})", path) from None
    except Exception as exc:  # expat can raise ValueError/RecursionError on hostile input
        raise DataError(f"unreadable XML ({type(exc).__name__}: {exc})", path) from None
    strokes = []
    for k, stroke in enumerate(root.iter("Stroke")):
        points = []
        for j, point in enumerate(stroke.iter("Point")):
            try:
                x, y = float(point.attrib["x"]), float(point.attrib["y"])
            except KeyError as exc:
                raise DataError(f"Point without attribute {exc.args[0]!r}", path, f"stroke {k}, point {j}") from None
            except ValueError:
                raise DataError(f"Point coordinates are not numbers: {dict(point.attrib)}", path,
                                f"stroke {k}, point {j}") from None
            if not (np.isfinite(x) and np.isfinite(y)):
                raise DataError("NaN or Inf coordinate", path, f"stroke {k}, point {j}")
            points.append((x, y))
        if not points:
            raise DataError("Stroke without points", path, f"stroke {k}")
        strokes.append(np.asarray(points))
    if not strokes:
        raise DataError("no <Stroke> elements with points: not an IAM-OnDB lineStrokes file", path)
    return strokes


def _find_xml_files(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in files if f.lower().endswith(".xml") and not f.startswith("."))
    return sorted(found)


def _read_split_lists(folder):
    lists = {}
    for split, names in IAM_SPLIT_LISTS.items():
        ids = set()
        for name in names:
            list_path = os.path.join(folder, name)
            if os.path.lexists(list_path):
                text = read_input(list_path, "text").decode("utf-8", errors="replace")
                ids.update(line.strip() for line in text.splitlines() if line.strip())
        lists[split] = ids
    return lists if lists["train"] and lists["test"] else None


def _form_id(xml_path):
    """``.../a01-000u-01.xml`` -> ``"a01-000u"`` (the id used in IAM-OnDB's task lists)."""
    return re.sub(r"-\d+$", "", os.path.splitext(os.path.basename(xml_path))[0])


def _clip(seqs, limit):
    clipped = 0
    if limit is None:
        return seqs, 0
    out = []
    for s in seqs:
        s = s.copy()
        clipped += int((np.abs(s[:, :2]) > limit).sum())
        s[:, :2] = np.clip(s[:, :2], -limit, limit)
        out.append(s)
    return out, clipped


def build_handwriting_dataset(raw_splits, name, offset_limit, synthetic=False, info=None):
    """``{"train"|"valid"|"test": [(T, 3) raw rows]}`` -> normalized :class:`SequenceDataset`.
    ``offset_limit``: a positive number of raw units, or ``None`` for no clipping."""
    offset_limit = options.real_number("offset_limit", offset_limit, above=0.0, allow_none=True)
    info = dict(info or {})
    clipped_total = 0
    splits = {}
    for split in SPLITS:
        seqs, clipped = _clip(raw_splits[split], offset_limit)
        clipped_total += clipped
        splits[split] = seqs
    normalizer = Normalizer.fit_offset_scale(splits["train"], scaled_dims=(0, 1))
    scale = normalizer.scale.numpy()
    tensors = {s: to_tensors([seq / scale for seq in splits[s]]) for s in SPLITS}
    info["rows"] = "(dx, dy, pen_lifted); pen_lifted = 1 on the last point of a stroke"
    info["clipping"] = (f"|dx|, |dy| clipped to {offset_limit:g} raw units ({clipped_total} values clipped)"
                        if offset_limit is not None else "none")
    return SequenceDataset(name=name, kind="handwriting", train=tensors["train"], valid=tensors["valid"],
                           test=tensors["test"], normalizer=normalizer, synthetic=synthetic, info=info)


def _check_stroke3(seq, path, where):
    seq = check_sequence(seq, path, where, x_dim=3)
    bad = ~np.isin(seq[:, 2], (0.0, 1.0))
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        raise DataError(f"pen bit must be 0 or 1, got {seq[t, 2]!r}", path, f"{where}, step {t}")
    return seq


def _read_member(archive, member, limit, path):
    """The bytes of one archive member; decompression stops past ``limit`` bytes."""
    parts, total = [], 0
    with archive.open(member) as stream:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                return b"".join(parts)
            total += len(chunk)
            if total > limit:
                raise DataError(too_large(f"what array {member!r} decompresses to", total, limit, "max_expanded_bytes"),
                                path)
            parts.append(chunk)


def read_npz_arrays(path, keys=None, max_bytes=None, max_expanded_bytes=None):
    """Read the arrays ``keys`` (default: all) of a ``.npz`` file into a dict, unpickling object
    arrays safely.

    The archive is opened through :func:`~pyro_vrnn.data.files.open_input` (at most ``max_bytes``,
    default ``MAX_FILE_BYTES["npz"]``); the members read may expand to at most
    ``max_expanded_bytes`` in all (default 1 GiB): their declared sizes are checked before anything
    is decompressed, decompression stops at the limit, and a ``.npy`` header's shape must match the
    bytes that follow before an array is allocated.
    """
    limit = byte_limit("max_expanded_bytes", max_expanded_bytes, MAX_EXPANDED_BYTES)
    with open_input(path, "npz", max_bytes) as f:
        try:
            archive = zipfile.ZipFile(f)
        except Exception as exc:  # BadZipFile, ValueError, OSError, ...
            raise DataError(f"not a readable .npz archive ({type(exc).__name__}: {exc})", path) from None
        with archive:
            members = {(m[:-4] if m.endswith(".npy") else m): m for m in archive.namelist()}
            wanted = {key: members[key] for key in (members if keys is None else keys) if key in members}
            declared = sum(archive.getinfo(m).file_size for m in wanted.values())
            if declared > limit:
                raise DataError(too_large(f"what its arrays {sorted(wanted)} decompress to", declared, limit,
                                          "max_expanded_bytes"), path)
            arrays = {}
            for key, member in wanted.items():
                try:
                    arrays[key] = _read_npy(_read_member(archive, member, limit, path), path, limit)
                except DataError as error:
                    raise DataError(error.reason, path, f"array {key!r}") from None
                except Exception as exc:  # zlib.error, BadZipFile (CRC), ValueError, EOFError, ...
                    raise DataError(f"corrupt array ({type(exc).__name__}: {exc})", path, f"array {key!r}") from None
                limit -= _nbytes(arrays[key])
    return arrays


def _nbytes(array):
    return array.nbytes if isinstance(array, np.ndarray) else 0


def _read_npy(blob, path, limit):
    """One ``.npy`` payload -> array; object arrays through :func:`~pyro_vrnn.data.safe_pickle.safe_loads`."""
    stream = io.BytesIO(blob)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    count = int(np.prod(shape, dtype=object))
    if dtype.hasobject:
        value = safe_loads(blob[stream.tell():], path, max_expanded_bytes=max(limit, 1))
        if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
            raise ValueError("object array payload does not match its header")
        return value
    if count * dtype.itemsize != len(blob) - stream.tell():
        raise ValueError(f"header says shape {shape} of {dtype} ({count * dtype.itemsize} bytes) but "
                         f"{len(blob) - stream.tell()} bytes follow")
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)


def _count_values(container):
    """Values the sequences of an object array hold, shared references counted each time."""
    return sum(int(np.size(seq)) if isinstance(seq, np.ndarray) else 0 for seq in container.reshape(-1))


def load_stroke3(path, offset_limit=STROKE3_OFFSET_LIMIT, valid_fraction=0.05, seed=0, on_error="raise",
                 name=None, max_bytes=None, max_expanded_bytes=None):
    """Load a stroke-3 ``.npz`` (keys ``train``, ``valid``, ``test``; rows ``(dx, dy, pen)``, dy down).

    A missing ``valid`` key is filled by holding out ``valid_fraction`` of ``train`` (seeded).
    ``on_error="skip"`` drops bad sequences (empty, NaN, wrong width, pen not 0/1) with a warning.
    ``dy`` is negated so that up is positive, as for IAM-OnDB and the synthetic set.
    ``max_bytes`` bounds the file (default 4 GiB), ``max_expanded_bytes`` what it expands to
    (default 1 GiB, counting 8 bytes a value as the loader holds them).
    :returns: :class:`SequenceDataset` of kind ``"handwriting"``, sequences ``(T, 3)``.
    """
    offset_limit = options.real_number("offset_limit", offset_limit, above=0.0, allow_none=True)
    valid_fraction = options.fraction("valid_fraction", valid_fraction)
    seed = options.seed(seed)
    on_error = options.one_of("on_error", on_error, ON_ERROR)
    name = options.name(name)
    expanded_limit = byte_limit("max_expanded_bytes", max_expanded_bytes, MAX_EXPANDED_BYTES)
    path = resolve_data_path(path, "handwriting")
    arrays = read_npz_arrays(path, SPLITS, max_bytes, expanded_limit)
    missing = [k for k in ("train", "test") if k not in arrays]
    if missing:
        raise DataError(f"missing key(s) {missing}; keys present: {sorted(arrays)}", path)
    for split, container in arrays.items():
        if not isinstance(container, np.ndarray) or container.ndim == 0:
            raise DataError(f"key {split!r} must hold an array of sequences", path)
    values = sum(_count_values(c) for c in arrays.values() if c.dtype.hasobject)
    if values * 8 > expanded_limit:  # float64 while checked, before any is converted
        raise DataError(too_large(f"its sequences ({values} values at 8 bytes)", values * 8, expanded_limit,
                                  "max_expanded_bytes"), path)
    raw = {}
    for split in SPLITS:
        if split not in arrays:
            continue
        container = arrays[split]
        if len(container) == 0:
            raise DataError(f"split {split!r} holds no sequences", path)
        raw[split] = []
        for i, seq in enumerate(container):
            try:
                seq = _check_stroke3(seq, path, f"{split} sequence {i}")
            except DataError as error:
                handle_error(error, on_error)
                continue
            raw[split].append(seq * _FLIP_Y + 0.0)  # y-down -> y-up in a new array (sequences may be shared); no -0.0
        if not raw[split]:
            raise DataError(f"split {split!r} holds no usable sequences", path)
    info = {"source": path, "format": "stroke-3 npz (dy negated: up is positive)"}
    if "valid" not in raw:
        keep, held, _ = split_indices(len(raw["train"]), valid_fraction, 0.0, seed)
        raw["valid"] = [raw["train"][i] for i in held]
        raw["train"] = [raw["train"][i] for i in keep]
        info["valid"] = f"{len(held)} training sequences held out (seed {seed})"
    return build_handwriting_dataset(raw, name or f"handwriting:{path}", offset_limit, info=info)


def load_iam_ondb(path, offset_limit=IAM_OFFSET_LIMIT, valid_fraction=0.05, test_fraction=0.05, seed=0,
                  on_error="raise", name=None, max_bytes=None):
    """Load a folder of IAM-OnDB lineStrokes XML files (searched recursively).

    ``max_bytes`` bounds each XML file (default ``MAX_FILE_BYTES["xml"]``, 64 MiB).
    :returns: :class:`SequenceDataset` of kind ``"handwriting"``, one ``(T, 3)`` sequence per line.
    """
    offset_limit = options.real_number("offset_limit", offset_limit, above=0.0, allow_none=True)
    valid_fraction, test_fraction = options.split_fractions(valid_fraction, test_fraction)
    seed = options.seed(seed)
    on_error = options.one_of("on_error", on_error, ON_ERROR)
    name = options.name(name)
    max_bytes = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES["xml"])
    path = resolve_data_path(path, "handwriting")
    files = _find_xml_files(path)
    if not files:
        raise DataError("no .xml lineStrokes files found", path)
    lists = _read_split_lists(path)
    if lists is not None:
        assignment = {s: [f for f in files if _form_id(f) in lists[s]] for s in SPLITS}
        split_note = "IAM-OnDB task lists (trainset / testset_v+testset_t / testset_f)"
    else:
        train, valid, test = split_indices(len(files), valid_fraction, test_fraction, seed)
        assignment = {"train": [files[i] for i in train], "valid": [files[i] for i in valid],
                      "test": [files[i] for i in test]}
        split_note = f"files split by seeded shuffle (seed {seed})"
    raw = {}
    for split in SPLITS:
        seqs = []
        for file in assignment[split]:
            try:
                seqs.append(check_sequence(strokes_to_offsets(read_iam_strokes(file, max_bytes), flip_y=True),
                                           file, "line"))
            except DataError as error:
                handle_error(error, on_error)
        if not seqs:
            raise DataError(f"no readable lines in the {split} split", path)
        raw[split] = seqs
    info = {"source": path, "format": "IAM-OnDB lineStrokes XML (dy negated: up is positive)",
            "splits": split_note}
    return build_handwriting_dataset(raw, name or f"handwriting:{path}", offset_limit, info=info)


def load_handwriting(path, **kwargs):
    """Load handwriting from a stroke-3 ``.npz`` file or an IAM-OnDB folder of lineStrokes XML.

    Keyword arguments go to :func:`load_stroke3` or :func:`load_iam_ondb`. A relative path not found
    is looked up under ``$PYRO_VRNN_DATA``, as by every loader (:mod:`pyro_vrnn.data.locations`).
    """
    path = resolve_data_path(path, "handwriting")
    if os.path.isdir(path):
        return load_iam_ondb(path, **kwargs)
    if path.lower().endswith(".xml"):
        raise DataError("give the folder holding the lineStrokes XML files, not one file", path)
    return load_stroke3(path, **kwargs)
