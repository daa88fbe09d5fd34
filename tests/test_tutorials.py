"""Every tutorial notebook executes top to bottom in smoke-test mode (``CI=1``), so none can rot.

Each notebook reads ``smoke_test = "CI" in os.environ`` in its first code cells and shrinks its data,
training steps and particle counts accordingly; executed here with ``nbclient`` on a kernel that runs
this very interpreter, with ``tutorials/`` as the working directory. The committed notebooks keep the
outputs of a full (non-smoke) run; they are executed on a copy and never rewritten by the tests.
"""

import glob
import json
import os
import re
import sys
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = os.path.join(ROOT, "tutorials")
NOTEBOOKS = sorted(glob.glob(os.path.join(TUTORIALS, "*.ipynb")))
KERNEL_NAME = "python3"
SMOKE_TEST_LINE = re.compile(r"""^smoke_test\s*=\s*\(?\s*["']CI["']\s+in\s+os\.environ\s*\)?""", re.M)
MAX_NOTEBOOK_BYTES = 1_000_000
CELL_TIMEOUT_S = 300


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


@pytest.fixture(scope="module")
def smoke_kernel(tmp_path_factory):
    """A ``python3`` kernelspec that runs the interpreter running the tests, first on ``JUPYTER_PATH``,
    and ``CI=1`` in the environment the kernel inherits.

    On a fresh machine where only ``pip install -e .[test]`` ran there may be no kernelspec at all, or a
    user-level ``python3`` spec pointing at another Python without ``pyro_vrnn``; this one wins over both.
    """
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (pyro-vrnn tests)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    patch = pytest.MonkeyPatch()
    previous = os.environ.get("JUPYTER_PATH")
    patch.setenv("JUPYTER_PATH", os.pathsep.join([str(root)] + ([previous] if previous else [])))
    patch.setenv("CI", "1")
    from jupyter_client.kernelspec import KernelSpecManager  # a dependency of nbclient

    assert KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
    yield KERNEL_NAME
    patch.undo()


def test_there_are_tutorials_and_each_reads_smoke_test_from_ci_first():
    assert NOTEBOOKS, f"no notebooks found in {TUTORIALS}"
    for path in NOTEBOOKS:
        cells = _code_cells(nbformat.read(path, as_version=4))
        assert cells, f"{path} has no code cells"
        first = "\n".join(cell.source for cell in cells[:2])
        assert SMOKE_TEST_LINE.search(first), f'{os.path.basename(path)}: no `smoke_test = "CI" in os.environ` in its first code cells'


def test_committed_notebooks_keep_outputs_of_a_clean_run_and_stay_small():
    for path in NOTEBOOKS:
        name = os.path.basename(path)
        assert os.path.getsize(path) < MAX_NOTEBOOK_BYTES, f"{name} is {os.path.getsize(path)} bytes"
        cells = _code_cells(nbformat.read(path, as_version=4))
        counts = [cell.get("execution_count") for cell in cells]
        assert all(counts), f"{name}: committed without running every code cell"
        assert counts == list(range(1, len(cells) + 1)), f"{name}: cells were not run once, top to bottom: {counts}"
        errors = [out for cell in cells for out in cell.outputs if out.output_type == "error"]
        assert not errors, f"{name}: committed with an error output: {errors[0].get('ename')}"
        assert any("image/png" in out.get("data", {}) for cell in cells for out in cell.outputs), \
            f"{name}: no plots in the committed outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_executes_in_smoke_test_mode(path, smoke_kernel):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=smoke_kernel, timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": TUTORIALS}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell on any exception
    print(f"{os.path.basename(path)} executed in {time.perf_counter() - start:.1f} s")
