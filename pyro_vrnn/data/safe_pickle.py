"""Unpickling restricted to plain containers and numbers, so a data file can neither run code nor
expand without bound.

The polyphonic-music pickles hold only dicts, lists, ints (sometimes numpy ints or arrays) and
strings; stroke-3 ``.npz`` files hold numpy object arrays of int arrays. :func:`safe_loads`:

- allows exactly the globals those need (builtin containers and numpy's array/scalar
  reconstructors); everything else is refused, so no code runs;
- refuses the calls that would allocate from a number alone (``bytes(10**12)``, an array
  reconstructed with a huge shape) and array states whose size does not match their data (NumPy
  would crash on some of them), as well as structured dtypes;
- bounds what the result *expands to*: :func:`expanded_bytes` counts every value as often as it is
  referenced (a 200 kB pickle whose memo references one list 100,000 times is refused in
  milliseconds, before a loader builds tens of GB from it) and must stay within
  ``max_expanded_bytes``;
- turns *every* failure of the unpickler — truncation, garbage, a forbidden global, recursion — into
  a :class:`DataError` naming the file.
"""

import io
import math
import pickle
from collections import OrderedDict

import numpy as np

from .errors import DataError
from .files import MAX_EXPANDED_BYTES, byte_limit, read_input, too_large

_ALLOWED_GLOBALS = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
    ("builtins", "bytes"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "long"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("__builtin__", "object"),
    ("builtins", "object"),
    ("collections", "OrderedDict"), ("_codecs", "encode"),  # protocol-2 pickles of bytes use _codecs.encode
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
}
#: dtype kinds an array in a data file may have: bool, integers, floats, complex, strings, objects
_ARRAY_KINDS = "biufcSUO"
_LATIN1 = ("latin1", "latin-1", "iso-8859-1", "iso8859-1")
#: bytes counted per number, per container slot and per array element of object dtype
_SLOT_BYTES = 8


def _refuse(what):
    raise pickle.UnpicklingError(f"{what} is not allowed in a data file")


def _check_dtype(dtype):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _ARRAY_KINDS or dtype.fields is not None \
            or dtype.subdtype is not None:
        _refuse(f"an array of dtype {dtype!r}")
    return dtype


def _bytes_from_text(cls):
    """``bytes``/``bytearray`` from a string or bytes only, never ``bytes(n)`` (n zero bytes)."""
    def build(*args):
        if args and not isinstance(args[0], (str, bytes, bytearray)):
            _refuse(f"{cls.__name__} built from a {type(args[0]).__name__}")
        if len(args) > 1 and str(args[1]).lower() not in _LATIN1:
            _refuse(f"{cls.__name__} with encoding {args[1]!r}")
        return cls(*args)
    return build


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as protocol-2 pickles of bytes use it: a str to latin-1 bytes, nothing else."""
    if not isinstance(obj, str) or str(encoding).lower() not in _LATIN1:
        _refuse(f"_codecs.encode to {encoding!r}")
    return obj.encode("latin1", errors)


def _ndarray_called(*args, **kwargs):
    _refuse("calling numpy.ndarray (it allocates from a shape)")


class _ArrayUnderConstruction(np.ndarray):
    """What ``_reconstruct`` returns while unpickling: its ``__setstate__`` checks the state (a size
    that does not match the data crashes NumPy); :func:`safe_loads` turns it into a plain ndarray."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            _refuse("an array state of this form")
        shape, dtype, _fortran, raw = state[-4:]
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            _refuse(f"an array shape {shape!r}")
        _check_dtype(dtype)
        count = math.prod(shape)
        if dtype.hasobject:
            if not isinstance(raw, list) or len(raw) != count:
                _refuse(f"an object array of shape {shape} holding {len(raw) if isinstance(raw, list) else '?'} items")
        else:
            size = len(raw.encode("latin1")) if isinstance(raw, str) else len(raw) if isinstance(raw, bytes) else -1
            if size != count * dtype.itemsize:
                _refuse(f"an array of shape {shape} and dtype {dtype} with {size} bytes of data")
        super().__setstate__(state)


def _reconstruct(subtype, shape, dtype):
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``: an empty array whose BUILD state fills it."""
    if subtype is not _ndarray_called or not isinstance(shape, tuple) or math.prod(
            n if isinstance(n, int) else 1 for n in shape) != 0:
        _refuse(f"_reconstruct of {getattr(subtype, '__name__', subtype)} with shape {shape!r}")
    return np.ndarray.__new__(_ArrayUnderConstruction, (0,), np.uint8)


def _scalar(dtype, data=None):
    _check_dtype(dtype)
    if dtype.hasobject or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        _refuse(f"a numpy scalar of dtype {dtype} from {type(data).__name__}")
    return np.frombuffer(data, dtype=dtype)[0]


_CHECKED = {("builtins", "bytes"): _bytes_from_text(bytes), ("builtins", "bytearray"): _bytes_from_text(bytearray),
            ("_codecs", "encode"): _codecs_encode, ("numpy", "ndarray"): _ndarray_called}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _CHECKED[(_module, "scalar")] = _scalar


class _RestrictedUnpickler(pickle.Unpickler):
    """The restricted unpickler; ``arrays_built`` counts the arrays it reconstructed (each needs
    :func:`_plain_arrays` afterwards)."""

    arrays_built = 0

    def _reconstruct(self, subtype, shape, dtype):
        self.arrays_built += 1
        return _reconstruct(subtype, shape, dtype)

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            if module == "copy_reg":
                module = "copyreg"
            if module == "__builtin__":
                module = "builtins"
                name = {"long": "int"}.get(name, name)
            if name == "_reconstruct":  # numpy's, counted
                return self._reconstruct
            if (module, name) in _CHECKED:
                return _CHECKED[(module, name)]
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")


_CONTAINER_TYPES = frozenset({list, tuple, dict, set, frozenset, OrderedDict})
_ARRAY_TYPES = frozenset({np.ndarray, _ArrayUnderConstruction})
#: leaves of a fixed size: what a number (or None) costs
_NUMBER_TYPES = frozenset({int, float, bool, complex, type(None), np.int8, np.int16, np.int32, np.int64, np.uint8,
                           np.uint16, np.uint32, np.uint64, np.float16, np.float32, np.float64, np.bool_})


def _is_container(obj):
    kind = type(obj)
    return kind in _CONTAINER_TYPES or (kind in _ARRAY_TYPES and obj.dtype.hasobject)


def _items(obj):
    """What a container refers to: elements, or a dict's keys and values, or an object array's items."""
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, np.ndarray):
        return obj.reshape(-1).tolist()
    return obj


def _own_bytes(obj):
    """A container's slots, or a leaf's size: a number 8, a string its length, an array its ``nbytes``."""
    kind = type(obj)
    if kind in _CONTAINER_TYPES:
        return _SLOT_BYTES * (1 + len(obj) * (2 if isinstance(obj, dict) else 1))
    if kind in _ARRAY_TYPES:
        return obj.size * _SLOT_BYTES if obj.dtype.hasobject else obj.nbytes
    if kind in (str, bytes, bytearray):
        return max(len(obj), _SLOT_BYTES)
    return _SLOT_BYTES


def expanded_bytes(root, limit):
    """What ``root`` expands to when every reference is followed (a list referenced ``n`` times
    counts ``n`` times): ``8`` bytes a number or container slot, an array's ``nbytes``, a string's
    length. Linear in the number of *distinct* objects and references (each container's size is
    computed once), so a memo bomb costs no more than its size to measure. Returns ``None`` as
    soon as the total passes ``limit``; raises ``ValueError`` on a reference cycle."""
    if not _is_container(root):
        size = _own_bytes(root)
        return size if size <= limit else None
    sizes = {}       # id -> expanded size of a container measured (the objects stay alive meanwhile)
    expanding = set()  # containers whose items are being measured: the path from the root
    stack = [root]
    while stack:
        obj = stack[-1]
        key = id(obj)
        if key in sizes:
            stack.pop()
            continue
        items = _items(obj)
        if key not in expanding:
            if set(map(type, items)) <= _NUMBER_TYPES:  # numbers only (a time step's notes): no walk
                sizes[key] = _own_bytes(obj) + _SLOT_BYTES * len(items)
                if sizes[key] > limit:
                    return None
                stack.pop()
                continue
            expanding.add(key)
            pushed = set()
            for child in items:
                if _is_container(child) and id(child) not in sizes and id(child) not in pushed:
                    if id(child) in expanding:
                        raise ValueError("the data hold a reference cycle")
                    pushed.add(id(child))
                    stack.append(child)
            continue
        expanding.discard(key)  # every container item is measured now
        total = _own_bytes(obj)
        for child in items:
            total += sizes[id(child)] if id(child) in sizes else _own_bytes(child)
        if total > limit:
            return None
        sizes[key] = total
        stack.pop()
    return sizes[id(root)]


def _plain_arrays(obj):
    """Replace every :class:`_ArrayUnderConstruction` in ``obj`` by a plain ndarray view (in place
    for lists, dicts and object arrays; tuples and sets are immutable, and an array inside one stays
    the subclass, which behaves the same); returns the possibly replaced ``obj``."""
    def plain(x):
        return x.view(np.ndarray) if type(x) is _ArrayUnderConstruction else x
    root = plain(obj)
    seen, stack = set(), [root]
    while stack:
        x = stack.pop()
        if id(x) in seen or not _is_container(x):
            continue
        seen.add(id(x))
        if isinstance(x, list):
            x[:] = [plain(v) for v in x]
        elif isinstance(x, dict):
            for k, v in list(x.items()):
                x[k] = plain(v)
        elif isinstance(x, np.ndarray):
            flat = x.reshape(-1)
            for i, v in enumerate(flat.tolist()):
                if type(v) is _ArrayUnderConstruction:
                    flat[i] = plain(v)
        stack.extend(item for item in _items(x) if _is_container(item))
    return root


def safe_loads(data, path=None, encoding="latin1", max_expanded_bytes=None):
    """Unpickle ``data`` (bytes) allowing only containers, numbers, strings and numpy arrays, and
    at most ``max_expanded_bytes`` (default :data:`~pyro_vrnn.data.files.MAX_EXPANDED_BYTES`) of
    expanded content (see :func:`expanded_bytes`)."""
    limit = byte_limit("max_expanded_bytes", max_expanded_bytes, MAX_EXPANDED_BYTES)
    try:
        unpickler = _RestrictedUnpickler(io.BytesIO(data), encoding=encoding)
        value = unpickler.load()
        size = expanded_bytes(value, limit)
    except DataError:
        raise
    except RecursionError:
        raise DataError("corrupt pickle (nesting too deep)", path) from None
    except MemoryError:
        raise DataError("corrupt pickle (asks for more memory than available)", path) from None
    except Exception as exc:  # pickle raises many types on garbage: UnpicklingError, EOFError, ...
        raise DataError(f"not a readable data pickle ({type(exc).__name__}: {exc})", path) from None
    if size is None:
        raise DataError(too_large("what the pickle expands to (shared references counted each time)", limit + 1,
                                  limit, "max_expanded_bytes"), path)
    return _plain_arrays(value) if unpickler.arrays_built else value


def safe_load_file(path, encoding="latin1", max_bytes=None, max_expanded_bytes=None):
    """Read a pickle file through :func:`~pyro_vrnn.data.files.read_input` and :func:`safe_loads` it."""
    data = read_input(path, "pickle", max_bytes)
    if not data:
        raise DataError("empty file", path)
    return safe_loads(data, path, encoding, max_expanded_bytes)
