"""benchmarks/fidelity.sh, the issue-12 tables' one command, runs end to end on a tiny music file:
each model trained under the wall-clock budget (cut by SIGINT, which still leaves its checkpoints),
evaluated, and the table printed from the run folders; a second call reuses what is finished."""

import json
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fidelity.sh"


def _songs(rng, count):
    return [[sorted(rng.sample(range(48, 72), 3)) for _ in range(rng.randint(6, 10))] for _ in range(count)]


def test_fidelity_script_trains_within_the_budget_evaluates_and_tabulates(tmp_path):
    rng = random.Random(0)
    (tmp_path / "data" / "music").mkdir(parents=True)
    splits = {"train": _songs(rng, 8), "valid": _songs(rng, 2), "test": _songs(rng, 3)}
    (tmp_path / "data" / "music" / "jsb_chorales.pickle").write_bytes(pickle.dumps(splits))
    env = {**os.environ, "PYRO_VRNN_DATA": str(tmp_path / "data"), "BUDGET": "12", "PARTICLES": "2",
           "MODELS": "rnn dmm", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = ["bash", str(SCRIPT), "jsb", str(tmp_path / "runs")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = tmp_path / "runs" / "jsb"
    for name, label in (("rnn", "RNN-Bernoulli"), ("dmm", "DMM-Bernoulli")):
        evaluation = json.loads((runs / name / "eval_test.json").read_text())
        assert evaluation["num_sequences"] == 3 and evaluation["split"] == "test"
        assert (runs / name / "checkpoint.pt").is_file() and (runs / name / "history.json").is_file()
        assert f"| {label} |" in done.stdout
    assert json.loads((runs / "rnn" / "eval_test.json").read_text())["exact"]
    assert done.stdout.strip().endswith((runs / "table.md").read_text().strip())
    before = (runs / "dmm" / "eval_test.json").stat().st_mtime_ns
    again = subprocess.run(command, env={**env, "BUDGET": "1"}, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (runs / "dmm" / "eval_test.json").stat().st_mtime_ns == before  # finished evaluations are reused
    # a run trained further (its best checkpoint newer than its evaluations) is evaluated again
    best = runs / "dmm" / "checkpoint.best.pt"
    later = (runs / "dmm" / "eval_test.json").stat().st_mtime + 5
    os.utime(best, (later, later))
    third = subprocess.run(command, env={**env, "BUDGET": "1"}, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    for name in ("eval_test.json", "eval_test_smc100.json"):
        assert (runs / "dmm" / name).stat().st_mtime > later, name
    assert (runs / "rnn" / "eval_test.json").stat().st_mtime < later  # the other run's are still reused
