"""Where a data path is found: as given, else under ``$PYRO_VRNN_DATA`` (the same rule for every loader).

A relative ``PATH`` that does not exist is looked up under ``$PYRO_VRNN_DATA`` (first as given, then
under ``$PYRO_VRNN_DATA/KIND/``), so ``PYRO_VRNN_DATA=/data load_music("jsb_chorales.pickle")`` and
``load_dataset("music:jsb_chorales.pickle")`` both find ``/data/music/jsb_chorales.pickle``. A path
looked up there must stay inside it: ``../../etc/x`` is not searched for above ``$PYRO_VRNN_DATA``.

Every per-format loader (:func:`~pyro_vrnn.data.load_music`, :func:`~pyro_vrnn.data.load_speech`,
:func:`~pyro_vrnn.data.load_handwriting`, ...) calls :func:`resolve_data_path` on its ``path``, and
the registry calls it on a spec's ``PATH``; this module sits below both so that neither imports the other.
"""

import os

from .errors import DataError

DATA_ENV_VAR = "PYRO_VRNN_DATA"


def _inside(path, folder):
    """Whether ``path`` stays inside ``folder`` once ``..`` and ``.`` are resolved (lexically: a
    symbolic link inside the data folder may point elsewhere, as the user set it up)."""
    folder = os.path.normpath(os.path.abspath(folder))
    return os.path.commonpath([folder, os.path.normpath(os.path.abspath(path))]) == folder


def resolve_data_path(path, kind=None):
    """``path`` if it exists; else, when relative, the first existing of ``$PYRO_VRNN_DATA/path`` and
    ``$PYRO_VRNN_DATA/kind/path``. Raises :class:`DataError` listing the places tried."""
    path = os.path.expanduser(os.fspath(path))
    tried = [path]
    if os.path.lexists(path):
        return path
    root = os.environ.get(DATA_ENV_VAR)
    if root and not os.path.isabs(path):
        bases = [root] + ([os.path.join(root, kind)] if kind else [])
        for base in bases:
            candidate = os.path.join(base, path)
            if not _inside(candidate, base):
                raise DataError(f"a path looked up under ${DATA_ENV_VAR} must stay inside it; {path!r} leaves "
                                f"{base!r} (give an absolute path, or one relative to the current folder)", path)
            tried.append(candidate)
            if os.path.lexists(candidate):
                return candidate
    hint = "" if root else f" (set ${DATA_ENV_VAR} to look relative paths up in a data folder)"
    raise DataError(f"no such file or folder; tried {tried}{hint}", path)
