"""Checks for the options of the data functions, made where an option enters.

Each check returns the value (as a plain Python ``int``/``float``/tuple) or raises
:class:`DataError` ``"{option} must be {what is allowed}, got {value!r}"``, so that a bad option
never travels into NumPy or torch to fail there without context, or to do something no one asked
for (``max_files=-1`` dropping the last file, ``on_error="bogus"`` accepted until the first error).
``bool`` is never taken for a number.
"""

import math
import numbers

from .errors import DataError


def _fail(option, allowed, value):
    raise DataError(f"{option} must be {allowed}, got {value!r}")


def whole_number(option, value, minimum=None, maximum=None, allow_none=False):
    """An integer in ``[minimum, maximum]`` (either bound optional); ``None`` if ``allow_none``."""
    if value is None and allow_none:
        return None
    bounds = " and ".join(part for part in (f">= {minimum}" if minimum is not None else "",
                                             f"<= {maximum}" if maximum is not None else "") if part)
    allowed = "a whole number" + (f" {bounds}" if bounds else "") + (" (or None)" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(option, allowed, value)
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        _fail(option, allowed, value)
    return value


def real_number(option, value, *, above=None, at_least=None, below=None, at_most=None, allow_none=False):
    """A finite real number with the given strict (``above``/``below``) or inclusive bounds."""
    if value is None and allow_none:
        return None
    bounds = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
              f"< {below:g}" if below is not None else "", f"<= {at_most:g}" if at_most is not None else ""]
    allowed = " ".join(["a finite number", " and ".join(b for b in bounds if b)]).strip() + \
        (" (or None)" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(option, allowed, value)
    value = float(value)
    if (not math.isfinite(value) or (above is not None and value <= above)
            or (at_least is not None and value < at_least) or (below is not None and value >= below)
            or (at_most is not None and value > at_most)):
        _fail(option, allowed, value)
    return value


def fraction(option, value):
    """A fraction in ``[0, 1)``."""
    return real_number(option, value, at_least=0.0, below=1.0)


def split_fractions(valid_fraction, test_fraction):
    """Two fractions in ``[0, 1)`` whose sum leaves something to train on (``< 1``)."""
    valid, test = fraction("valid_fraction", valid_fraction), fraction("test_fraction", test_fraction)
    if valid + test >= 1.0:
        raise DataError(f"valid_fraction + test_fraction must be < 1 (something must be left to train on), "
                        f"got {valid_fraction!r} + {test_fraction!r}")
    return valid, test


def one_of(option, value, choices):
    """A string, one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        _fail(option, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def seed(value, option="seed"):
    """A seed for NumPy's generators: a whole number >= 0."""
    return whole_number(option, value, minimum=0)


def name(value, option="name"):
    """A dataset name: ``None`` or a string."""
    if value is not None and not isinstance(value, str):
        _fail(option, "a string (or None)", value)
    return value


def pair(option, value, check):
    """A ``(low, high)`` pair with ``low <= high``, each passed through ``check(option, item)``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        _fail(option, "a pair (low, high)", value)
    low, high = (check(f"{option}[{i}]", item) for i, item in enumerate(value))
    if low > high:
        _fail(option, "a pair (low, high) with low <= high", value)
    return low, high
