"""Helpers of the fuzz suites (``tests/test_fuzz_*.py``): time limits that make a hang fail fast, and
a separate process for inputs that, unguarded, would eat the test runner's memory or crash it.

- :func:`deadline` — a block that takes longer than ``seconds`` raises :class:`Hang` (``SIGALRM``;
  it interrupts a blocking ``open()`` of a FIFO too). Main thread only, as pytest runs tests.
- :func:`isolated` — run statements in a fresh Python under a 2 GiB address-space limit and a
  wall-clock timeout; returns, per statement, what it raised, how long it took and how much its
  peak memory grew (one process for all, since importing the library costs seconds).
- :data:`FUZZ` — hypothesis settings of the suites: few examples, no per-example deadline.
"""

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

import pyro_vrnn

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
#: the library under test, so that a child process imports the same one
LIBRARY_ROOT = str(Path(pyro_vrnn.__file__).resolve().parent.parent)
MEMORY_LIMIT = 2 << 30


class Hang(AssertionError):
    """The block ran past its time limit."""


@contextlib.contextmanager
def deadline(seconds, what="the call"):
    """Raise :class:`Hang` if the block runs longer than ``seconds``."""
    def expire(signum, frame):
        raise Hang(f"{what} did not return within {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_CHILD = """\
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
{imports}
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
for name, statement in {cases!r}.items():
    before, start = peak_mb(), time.perf_counter()
    try:
        exec(statement)
        raised, message = None, ""
    except BaseException as error:
        raised, message = type(error).__name__, str(error)
    print(json.dumps({{"case": name, "raised": raised, "message": message, "seconds": time.perf_counter() - start,
                      "memory_growth_mb": peak_mb() - before}}), flush=True)
"""


def isolated_process(cases, imports="from pyro_vrnn.data import *", cwd=None):
    """Start a child Python that runs each statement of ``cases`` (name -> statement) in turn under a
    2 GiB address-space limit; see :func:`outcomes`."""
    code = _CHILD.format(limit=MEMORY_LIMIT, imports=imports, cases=dict(cases))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": LIBRARY_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def outcomes(process, cases, timeout=60):
    """For each case: ``{"raised", "message", "seconds", "memory_growth_mb"}`` (how much the process's
    peak resident memory grew during the case; the cases run in turn, so each is measured against
    the peak the ones before it left). A case the child
    never reported (it died: a crash, the memory limit; or ran past ``timeout``) says so."""
    try:
        out, err = process.communicate(timeout=timeout)
        death = f"the process died with status {process.returncode}: {err.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        death = f"still running after {timeout} s (a hang)"
    reported = {}
    for line in out.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            reported[result.pop("case")] = result
    missing = {"raised": "never returned", "message": death, "seconds": math.nan, "memory_growth_mb": math.nan}
    return {case: reported.get(case, missing) for case in cases}


def isolated(cases, imports="from pyro_vrnn.data import *", cwd=None, timeout=60):
    """Run each statement of ``cases`` in one fresh Python (2 GiB address space); see :func:`outcomes`."""
    return outcomes(isolated_process(cases, imports, cwd), cases, timeout)
