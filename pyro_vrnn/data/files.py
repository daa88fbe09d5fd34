"""The one guarded way the loaders open a user's file: regular files only, of bounded size.

:func:`open_input` opens ``path`` without blocking (``O_NONBLOCK``), checks with ``fstat`` on the
open descriptor that it is a regular file, and only then reads: a FIFO, a device (``/dev/zero``), a
socket or a folder is a :class:`DataError` at once instead of a read that blocks or never ends. The
file must also fit the size limit of its format, :data:`MAX_FILE_BYTES`, which a caller raises
with ``max_bytes=`` (the loaders' option of that name; on the command line
``--data-option max_bytes=N``). :func:`read_input` reads the whole file and stops one byte past
the limit, so a file that grows while it is read (or a ``/proc`` file that claims size 0) cannot
make it read without end.

What a file may *expand to* once decoded (a pickle's shared references counted each time, an
archive's members decompressed) is bounded separately by ``max_expanded_bytes``
(:data:`MAX_EXPANDED_BYTES` by default): see :mod:`pyro_vrnn.data.safe_pickle` and
:func:`pyro_vrnn.data.handwriting.read_npz_arrays`.
"""

import contextlib
import numbers
import os
import stat

from .errors import DataError

#: default size limit of one input file, by format (bytes); raise it with ``max_bytes=``
MAX_FILE_BYTES = {
    "pickle": 1 << 30,   # music pickles: the largest benchmark (MuseData) is 6 MB
    "npz": 4 << 30,      # stroke-3 archives
    "audio": 1 << 30,    # one WAV/FLAC/SPHERE file: about 9 hours of 16 kHz 16-bit mono
    "xml": 64 << 20,     # one IAM-OnDB lineStrokes file (typically 10-100 kB)
    "text": 16 << 20,    # IAM-OnDB task lists
    "json": 16 << 20,    # a prepared corpus's index.json (a few kB)
    "npy": 1 << 40,      # a prepared corpus's values and offsets: values are read one sequence at a time
    "midi": 4 << 20,     # one MIDI file (typically 10-500 kB; mido holds each event as a Python object)
    "table": 256 << 20,  # one CSV/TSV file or .npy array of a tabular series
}
#: default limit on what one file may expand to once decoded (bytes); raise it with ``max_expanded_bytes=``
MAX_EXPANDED_BYTES = 1 << 30
_READ_CHUNK = 1 << 20
_FILE_TYPES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def byte_limit(option, value, default):
    """``value`` if it is a whole number of bytes >= 1, ``default`` if it is ``None``; else :class:`DataError`
    naming ``option``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise DataError(f"{option} must be a whole number of bytes >= 1 (or None for the default "
                        f"{default}), got {value!r}")
    return int(value)


def format_bytes(n) -> str:
    """``n`` bytes for a message: ``512 bytes``, ``1.5 KiB``, ``21.7 GiB`` (powers of 1024, 3 figures)."""
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


def too_large(what, size, limit, option):
    """The message for ``what`` of ``size`` bytes (or more) over ``limit``, naming the option that raises it."""
    return (f"{what} is {format_bytes(size)} or more, over the limit of {limit} bytes ({format_bytes(limit)}); "
            f"if the file is trusted, raise the limit with {option}=N (command line: --data-option {option}=N)")


def _file_type(mode):
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "not a regular file"


def open_input(path, fmt, max_bytes=None):
    """Open ``path`` for binary reading if it is a regular file within the size limit of ``fmt``
    (a key of :data:`MAX_FILE_BYTES`). Returns a file object; never blocks on a FIFO."""
    limit = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES[fmt])
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
        raise DataError(f"cannot open {fmt} file ({reason})", path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"expected a regular {fmt} file, but this is {_file_type(info.st_mode)}", path)
        if info.st_size > limit:
            raise DataError(too_large(f"the {fmt} file", info.st_size, limit, "max_bytes"), path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path, fmt, max_bytes=None):
    """The bytes of ``path``, opened by :func:`open_input`; at most the format's limit are read."""
    limit = byte_limit("max_bytes", max_bytes, MAX_FILE_BYTES[fmt])
    with open_input(path, fmt, limit) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            parts = [f.read(size)] if size else []
            total = len(parts[0]) if parts else 0
            while total <= limit:  # more than fstat said (a growing or /proc file): read on, bounded
                chunk = f.read(min(_READ_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                parts.append(chunk)
                total += len(chunk)
        except OSError as exc:
            raise DataError(f"cannot read {fmt} file ({exc.strerror or exc})", path) from None
    if total > limit:
        raise DataError(too_large(f"the {fmt} file", total, limit, "max_bytes"), path)
    return b"".join(parts)


@contextlib.contextmanager
def written_atomically(path, what: str):
    """Yield a temporary path beside ``path`` to write ``what`` to; on success it is renamed onto
    ``path`` (so an interrupted write never leaves half a file there), and it is removed either way.
    An ``OSError`` becomes a :class:`DataError` naming ``path``."""
    path_text = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path_text), f".{os.path.basename(path_text)}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path_text)
    except OSError as exc:
        raise DataError(f"cannot write {what} ({exc.strerror or exc})", path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
