"""Unpickling restricted to plain containers and numbers, so a data file cannot run code.

The polyphonic-music pickles hold only dicts, lists, ints (sometimes numpy ints or arrays) and
strings; stroke-3 ``.npz`` files hold numpy object arrays of int arrays. :func:`safe_loads` allows
exactly the globals those need (builtin containers and numpy's array/scalar reconstructors) and
turns *every* failure of the unpickler — truncation, garbage, a forbidden global, recursion — into
a :class:`DataError` naming the file.
"""

import io
import pickle

from .errors import DataError

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


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            if module == "copy_reg":
                module = "copyreg"
            if module == "__builtin__":
                module = "builtins"
                name = {"long": "int"}.get(name, name)
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")


def safe_loads(data, path=None, encoding="latin1"):
    """Unpickle ``data`` (bytes) allowing only containers, numbers, strings and numpy arrays."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except DataError:
        raise
    except RecursionError:
        raise DataError("corrupt pickle (nesting too deep)", path) from None
    except MemoryError:
        raise DataError("corrupt pickle (asks for more memory than available)", path) from None
    except Exception as exc:  # pickle raises many types on garbage: UnpicklingError, EOFError, ...
        raise DataError(f"not a readable data pickle ({type(exc).__name__}: {exc})", path) from None


def safe_load_file(path, encoding="latin1"):
    """Read a file and :func:`safe_loads` it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DataError(f"cannot open file ({exc.strerror or exc})", path) from None
    if not data:
        raise DataError("empty file", path)
    return safe_loads(data, path, encoding)
