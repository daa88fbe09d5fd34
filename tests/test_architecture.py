"""The package's folders are its layers, and imports point one way (docs/architecture.md):
data -> components -> models -> infer -> train -> report -> cli. No module imports a later layer,
no two modules import each other, and no import of ours hides inside a function."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "pyro_vrnn"
LAYERS = ("data", "components", "models", "infer", "train", "report", "cli")
#: imports allowed inside a function body, each loaded only where it is used: plotting when a figure
#: is drawn, libsndfile when a FLAC/SPHERE file is read, the Hershey fonts when synthetic handwriting is drawn
LAZY_ALLOWED = ("matplotlib", "soundfile", "HersheyFonts")


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, parts[-1] == "__init__"


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The absolute names an ``ImportFrom`` brings in (each imported name, as a module if it is one)."""
    if node.level == 0:
        base = node.module or ""
    else:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" for alias in node.names]


def our_imports(name: str, path: pathlib.Path, is_package: bool):
    """``(target, inside_function)`` for each import of a ``pyro_vrnn`` name in the module."""
    tree = ast.parse(path.read_text())
    functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        inside = id(node) in functions
        if isinstance(node, ast.ImportFrom):
            for target in resolve(name, is_package, node):
                yield target, inside
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, inside


def layer(name: str):
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def existing_module(target: str) -> str:
    """``pyro_vrnn.x.y.Name`` -> the module it lives in (``pyro_vrnn.x.y``)."""
    names = {name for name, _, _ in modules()}
    while target not in names and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


EDGES = sorted({(name, existing_module(target)) for name, path, pkg in modules()
                for target, _ in our_imports(name, path, pkg) if target.startswith("pyro_vrnn")})


def test_every_layer_imports_only_the_layers_before_it():
    upward = [(a, b) for a, b in EDGES if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert not upward, f"imports against the arrows: {upward}"
    assert any(layer(a) == LAYERS.index("cli") and layer(b) == LAYERS.index("report") for a, b in EDGES)


def test_nothing_below_the_package_root_imports_the_root():
    assert not [(a, b) for a, b in EDGES if b == "pyro_vrnn" and a != "pyro_vrnn"]


def test_no_two_modules_import_each_other():
    edges = {(a, b) for a, b in EDGES if a != b}
    mutual = sorted((a, b) for a, b in edges if (b, a) in edges and a < b and not (b.startswith(a + ".")
                                                                                 or a.startswith(b + ".")))
    assert not mutual, f"modules importing each other: {mutual}"


def test_no_import_of_ours_hides_inside_a_function():
    hidden = [(name, target) for name, path, pkg in modules() for target, inside in our_imports(name, path, pkg)
              if inside and target.startswith("pyro_vrnn")]
    assert not hidden, f"imports inside functions: {hidden}"
    lazy = {target.split(".")[0] for name, path, pkg in modules() for target, inside in our_imports(name, path, pkg)
            if inside}
    assert lazy <= set(LAZY_ALLOWED) | {"__future__"}, f"other imports inside functions: {sorted(lazy)}"


def test_the_package_root_keeps_only_what_a_user_meets_first():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == sorted(LAYERS)


@pytest.mark.parametrize("command", ["train", "evaluate", "sample", "compare", "presets", "prepare"])
def test_each_command_is_one_module_with_its_own_parser(command):
    import importlib

    module = importlib.import_module(f"pyro_vrnn.cli.{command}")
    assert callable(module.add_parser) and callable(module.run)
