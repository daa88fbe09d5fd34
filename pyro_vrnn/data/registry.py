"""``load_dataset(spec)``: one string names any dataset — an offline default or ``KIND:PATH``.

- Offline defaults (no files, no network; see :mod:`pyro_vrnn.data.synthetic`):
  ``"handwriting-synthetic"``, ``"speech-synthetic"``, ``"music-synthetic"``.
- ``"music:PATH"`` (a Boulanger-Lewandowski pickle), ``"speech:PATH"`` (a folder of audio),
  ``"handwriting:PATH"`` (a stroke-3 ``.npz`` or an IAM-OnDB folder).
- ``"prepared:DIR"``: a corpus written by ``pyro-vrnn prepare`` (:mod:`pyro_vrnn.data.prepared`),
  read lazily from disk.

A relative ``PATH`` that does not exist is looked up under ``$PYRO_VRNN_DATA`` (first as given, then
under ``$PYRO_VRNN_DATA/KIND/``), so ``PYRO_VRNN_DATA=/data load_dataset("music:jsb_chorales.pickle")``
finds ``/data/music/jsb_chorales.pickle``.
"""

import os

from .errors import DataError
from .handwriting import load_handwriting
from .music import load_music
from .prepared import open_prepared
from .speech import load_speech
from .synthetic import synthetic_handwriting, synthetic_music, synthetic_speech

DATA_ENV_VAR = "PYRO_VRNN_DATA"
OFFLINE_DATASETS = ["handwriting-synthetic", "speech-synthetic", "music-synthetic"]
_OFFLINE_BUILDERS = {
    "handwriting-synthetic": synthetic_handwriting,
    "speech-synthetic": synthetic_speech,
    "music-synthetic": synthetic_music,
}
_FILE_LOADERS = {"music": load_music, "speech": load_speech, "handwriting": load_handwriting,
                 "prepared": open_prepared}
DATA_KINDS = tuple(_FILE_LOADERS)


def resolve_data_path(path, kind=None):
    """``path`` if it exists; else, when relative, the first existing of ``$PYRO_VRNN_DATA/path`` and
    ``$PYRO_VRNN_DATA/kind/path``. Raises :class:`DataError` listing the places tried."""
    path = os.path.expanduser(os.fspath(path))
    tried = [path]
    if os.path.exists(path):
        return path
    root = os.environ.get(DATA_ENV_VAR)
    if root and not os.path.isabs(path):
        candidates = [os.path.join(root, path)] + ([os.path.join(root, kind, path)] if kind else [])
        for candidate in candidates:
            tried.append(candidate)
            if os.path.exists(candidate):
                return candidate
    hint = "" if root else f" (set ${DATA_ENV_VAR} to look relative paths up in a data folder)"
    raise DataError(f"no such file or folder; tried {tried}{hint}", path)


def load_dataset(spec, **kwargs):
    """Load a dataset from a spec string (see module docstring). ``kwargs`` go to the loader or
    generator (e.g. ``frame_size=``, ``num_train=``, ``seed=``). Returns a :class:`SequenceDataset`."""
    if not isinstance(spec, str) or not spec:
        raise DataError(f"dataset spec must be a non-empty string, got {spec!r}")
    if spec in _OFFLINE_BUILDERS:
        try:
            return _OFFLINE_BUILDERS[spec](**kwargs)
        except TypeError as exc:
            raise DataError(f"bad options for {spec}: {exc}") from None
    kind, sep, path = spec.partition(":")
    if not sep or kind not in _FILE_LOADERS or not path:
        raise DataError(f"unknown dataset {spec!r}: expected one of {OFFLINE_DATASETS} or KIND:PATH with "
                        f"KIND in {list(DATA_KINDS)}")
    resolved = resolve_data_path(path, kind)
    try:
        return _FILE_LOADERS[kind](resolved, name=spec, **kwargs)
    except TypeError as exc:
        raise DataError(f"bad options for {kind} data: {exc}", resolved) from None
