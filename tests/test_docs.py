"""The API reference (``docs/api``, Sphinx autodoc from the docstrings) builds with warnings as errors,
covers every public name, and links every tutorial.

One build (a subprocess running ``python -m sphinx -W --keep-going -b html``) into a temporary
folder serves all the tests of this module.
"""

import ast
import glob
import importlib
import inspect
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("sphinx")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "docs", "api")
#: the modules users import; their public names must all be in the reference
USER_MODULES = ("pyro_vrnn.data", "pyro_vrnn.train.trainer", "pyro_vrnn.infer", "pyro_vrnn.infer.importance",
                "pyro_vrnn.models", "pyro_vrnn.components.priors", "pyro_vrnn.components.emissions", "pyro_vrnn.components.guides",
                "pyro_vrnn.components.transitions", "pyro_vrnn.components.heads", "pyro_vrnn.components.nn", "pyro_vrnn.components.registry", "pyro_vrnn.models.zoo",
                "pyro_vrnn.models.predictive", "pyro_vrnn.models.base", "pyro_vrnn.models.seeds",
                "pyro_vrnn.train.settings", "pyro_vrnn.train.schedules")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The HTML folder of a fresh build; fails listing every warning."""
    out = tmp_path_factory.mktemp("api-html")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d",
                             str(out / ".doctrees"), SOURCE, str(out)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr[-5000:]}"
    return out


def documented_ids(html_dir):
    ids = set()
    for path in glob.glob(os.path.join(html_dir, "*.html")):
        with open(path, encoding="utf-8") as f:
            ids.update(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', f.read()))
    return ids


def public_names(module) -> list:
    """``__all__``, or else the names a module defines itself: its classes and functions, and the
    constants assigned at its top level (not those it imports)."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    tree = ast.parse(inspect.getsource(module))
    assigned = {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)}
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == module.__name__:
            names.append(name)
        elif name in assigned and not (inspect.isclass(obj) or inspect.isfunction(obj)):
            names.append(name)
    return names


def where_documented(module_name, name):
    """The ids a name may be documented under: the module users import it from, or, for a class or
    function, the module that defines it or a package above it that re-exports it
    (``pyro_vrnn.infer.FIVO`` for ``pyro_vrnn.infer.fivo.FIVO``)."""
    obj = getattr(importlib.import_module(module_name), name)
    places = [f"{module_name}.{name}"]
    if inspect.isclass(obj) or inspect.isfunction(obj):
        parts = obj.__module__.split(".")
        places += [f"{'.'.join(parts[:n])}.{obj.__qualname__}" for n in range(1, len(parts) + 1)]
    return places


def test_the_reference_builds_without_warnings(built):
    assert os.path.isfile(os.path.join(built, "index.html"))


def test_every_public_name_is_in_the_reference(built):
    import pyro_vrnn

    ids = documented_ids(built)
    wanted = [("pyro_vrnn", name) for name in pyro_vrnn.__all__]
    wanted += [(module, name) for module in USER_MODULES for name in public_names(importlib.import_module(module))]
    assert len(wanted) > 100
    missing = [f"{module}.{name}" for module, name in wanted if not ids.intersection(where_documented(module, name))]
    assert not missing, f"public names missing from docs/api: {missing}"


def test_every_tutorial_is_linked_and_shipped_with_the_reference(built):
    notebooks = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))
    assert notebooks
    with open(os.path.join(built, "tutorials.html"), encoding="utf-8") as f:
        page = f.read()
    for name in notebooks:
        assert re.search(rf'href="_downloads/[0-9a-f]+/{re.escape(name)}"', page), f"{name} is not linked"
        assert glob.glob(os.path.join(built, "_downloads", "*", name)), f"{name} is not shipped"
