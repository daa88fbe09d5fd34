"""Sphinx configuration of the API reference: autodoc from the docstrings, as Pyro's docs are made.

Build (warnings are errors, as in the test suite's ``tests/test_docs.py``)::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs/api docs/api/_build/html
"""

import inspect
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, ROOT)  # the checkout's package, whether or not it is installed

import pyro_vrnn  # noqa: E402

project = "pyro-vrnn"
author = "the pyro-vrnn authors"
copyright = "the pyro-vrnn authors, MIT licence"
version = release = pyro_vrnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # "Args:" / "Returns:" sections
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",  # [source] links, as in Pyro's docs
]
exclude_patterns = ["_build"]
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_mock_imports = []
napoleon_numpy_docstring = False
html_theme = "alabaster"
html_static_path = []


def _drop_type_docstrings(app, what, name, obj, options, lines):
    """A constant without a ``#:`` comment would show its type's docstring (``dict``'s, ``tuple``'s)."""
    if what == "data" and lines and type(obj).__doc__ and "\n".join(lines).strip() == inspect.cleandoc(type(obj).__doc__):
        lines.clear()


def setup(app):
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
