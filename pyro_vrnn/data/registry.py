"""``load_dataset(spec)``: one string names any dataset — an offline default or ``KIND:PATH``.

- Offline defaults (no files, no network; see :mod:`pyro_vrnn.data.synthetic`):
  ``"handwriting-synthetic"``, ``"speech-synthetic"``, ``"music-synthetic"``.
- ``"music:PATH"`` (a Boulanger-Lewandowski pickle, a MIDI file or a folder of them),
  ``"speech:PATH"`` (a folder of audio), ``"handwriting:PATH"`` (a stroke-3 ``.npz`` or an IAM-OnDB
  folder), ``"series:PATH"`` (tabular time series: CSV/TSV, ``.npy``, ``.npz`` or a folder; see
  :mod:`pyro_vrnn.data.series`).
- ``"prepared:DIR"``: a corpus written by ``pyro-vrnn prepare`` (:mod:`pyro_vrnn.data.prepared`),
  read lazily from disk.

A relative ``PATH`` that does not exist is looked up under ``$PYRO_VRNN_DATA`` (first as given, then
under ``$PYRO_VRNN_DATA/KIND/``), so ``PYRO_VRNN_DATA=/data load_dataset("music:jsb_chorales.pickle")``
finds ``/data/music/jsb_chorales.pickle``; the per-format loaders follow the same rule
(:mod:`pyro_vrnn.data.locations`). A path looked up there must stay inside it:
``music:../../etc/x`` is not searched for above ``$PYRO_VRNN_DATA``. :func:`resolved_spec` gives the
spec with its ``PATH`` as found (absolute), for a run folder to record beside the spec as typed.

Loader options are checked by the loaders (a :class:`DataError` naming the option, the value and
what is allowed); running out of memory while loading is a :class:`DataError` too, not advice about
training sizes.
"""

import inspect
import os

from .errors import DataError
from .handwriting import load_handwriting, load_iam_ondb, load_stroke3
from .locations import resolve_data_path
from .music import load_music
from .prepared import open_prepared
from .series import load_series
from .speech import load_speech
from .synthetic import synthetic_handwriting, synthetic_music, synthetic_speech

OFFLINE_DATASETS = ["handwriting-synthetic", "speech-synthetic", "music-synthetic"]
_OFFLINE_BUILDERS = {
    "handwriting-synthetic": synthetic_handwriting,
    "speech-synthetic": synthetic_speech,
    "music-synthetic": synthetic_music,
}
_FILE_LOADERS = {"music": load_music, "speech": load_speech, "handwriting": load_handwriting,
                 "prepared": open_prepared, "series": load_series}
DATA_KINDS = tuple(_FILE_LOADERS)


def _check_option_names(function, kwargs, what):
    """Refuse keyword options ``function`` does not take, listing those it does."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters
                if p.kind == p.KEYWORD_ONLY or (p.kind == p.POSITIONAL_OR_KEYWORD and p.name not in ("path", "name"))]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise DataError(f"bad options for {what}: unknown option{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))}; its options are {', '.join(accepted)}")


def _allocation_failed(error):
    """A ``MemoryError``, or torch's allocator reporting it could not allocate."""
    return isinstance(error, MemoryError) or any(text in str(error).lower() for text in (
        "out of memory", "can't allocate memory", "cannot allocate memory"))


def load_dataset(spec, **kwargs):
    """Load a dataset from a spec string (see module docstring). ``kwargs`` go to the loader or
    generator (e.g. ``frame_size=``, ``num_train=``, ``seed=``). Returns a :class:`SequenceDataset`."""
    if not isinstance(spec, str) or not spec:
        raise DataError(f"dataset spec must be a non-empty string, got {spec!r}")
    if spec in _OFFLINE_BUILDERS:
        _check_option_names(_OFFLINE_BUILDERS[spec], kwargs, spec)
        try:
            return _OFFLINE_BUILDERS[spec](**kwargs)
        except TypeError as exc:
            raise DataError(f"bad options for {spec}: {exc}") from None
        except (MemoryError, RuntimeError) as exc:
            if not _allocation_failed(exc):
                raise
            raise DataError(f"out of memory generating {spec} with options {kwargs}; ask for fewer or shorter "
                            "sequences") from None
    kind, sep, path = spec.partition(":")
    if not sep or kind not in _FILE_LOADERS or not path:
        raise DataError(f"unknown dataset {spec!r}: expected one of {OFFLINE_DATASETS} or KIND:PATH with "
                        f"KIND in {list(DATA_KINDS)}")
    resolved = resolve_data_path(path, kind)
    _check_option_names(load_iam_ondb if kind == "handwriting" and os.path.isdir(resolved) else
                        load_stroke3 if kind == "handwriting" else _FILE_LOADERS[kind], kwargs, f"{kind} data")
    try:
        return _FILE_LOADERS[kind](resolved, name=spec, **kwargs)
    except TypeError as exc:
        raise DataError(f"bad options for {kind} data: {exc}", resolved) from None
    except (MemoryError, RuntimeError) as exc:
        if not _allocation_failed(exc):
            raise
        raise DataError("out of memory while loading this data (the data are larger than this machine's memory; "
                        "a part of it, e.g. --data-option max_files=N for speech, may fit)", resolved) from None


def resolved_spec(spec):
    """``spec`` with its ``PATH`` replaced by the absolute path it is found at (the lookup of
    :func:`load_dataset`): ``"music:jsb_chorales.pickle"`` -> ``"music:/data/music/jsb_chorales.pickle"``
    under ``PYRO_VRNN_DATA=/data``. An offline name is returned unchanged. Raises :class:`DataError`
    for an unknown spec or a path that is not found."""
    if not isinstance(spec, str) or not spec:
        raise DataError(f"dataset spec must be a non-empty string, got {spec!r}")
    if spec in _OFFLINE_BUILDERS:
        return spec
    kind, sep, path = spec.partition(":")
    if not sep or kind not in _FILE_LOADERS or not path:
        raise DataError(f"unknown dataset {spec!r}: expected one of {OFFLINE_DATASETS} or KIND:PATH with "
                        f"KIND in {list(DATA_KINDS)}")
    return f"{kind}:{os.path.abspath(resolve_data_path(path, kind))}"
