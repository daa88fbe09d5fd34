"""``benchmarks/gpu.sh --cpu-smoke``: the GPU script's whole pipeline on the CPU at a tiny size, its
GPU-only parts skipped, and the JSON it writes (documented in docs/performance.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_script_runs_on_the_cpu_and_writes_its_documented_json(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--cpu-smoke", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "cpu-smoke" and summary["ok"] and summary["wall_seconds"] > 0
    parts = summary["parts"]
    assert set(parts) == {"tests", "step", "importance", "ddp"}
    assert parts["tests"]["status"] == parts["ddp"]["status"] == "skipped" and "CUDA" in parts["ddp"]["reason"]
    for part in parts:
        assert json.loads((tmp_path / f"{part}.json").read_text()) == parts[part]
    step = parts["step"]
    assert step["status"] == "ok" and [r["precision"] for r in step["runs"]] == ["fp32", "bf16"]
    for run in step["runs"]:
        assert run["ms_median"] > 0 and run["achieved_tflops"] > 0 and run["peak_tflops"] is None
    assert step["runs"][0]["gflop_per_step"] == step["runs"][1]["gflop_per_step"] > 0  # the same matmuls
    importance = parts["importance"]
    assert importance["status"] == "ok" and importance["particles"] == 20
    assert all(r["log_likelihood_dtype"] == "torch.float64" and r["finite"] for r in importance["runs"])
