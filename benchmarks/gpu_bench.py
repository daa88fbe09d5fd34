"""The parts of ``benchmarks/gpu.sh``, one subcommand each; every part writes ``OUT/PART.json``.

    python benchmarks/gpu_bench.py tests      --out OUT --mode gpu   # pytest -m gpu
    python benchmarks/gpu_bench.py step       --out OUT --mode gpu   # paper-size training step, TF32 and BF16
    python benchmarks/gpu_bench.py importance --out OUT --mode gpu   # IS at K = 1000, paper-size model
    python benchmarks/gpu_bench.py ddp        --out OUT --mode gpu   # 2 processes x 1 GPU (NCCL), if 2 GPUs
    python benchmarks/gpu_bench.py summary    --out OUT --mode gpu   # OUT/summary.json from the parts

``--mode cpu-smoke`` runs ``step`` and ``importance`` on the CPU at the ``tiny`` size (fp32 and bf16
autocast) and marks ``tests`` and ``ddp`` skipped: the pipeline and its JSON, without a GPU. The
output format is documented in ``docs/performance.md`` ("The GPU script").

The training step is :meth:`pyro_vrnn.train.trainer.Trainer.step` (``Trace_ELBO`` loss and gradients and a
``ClippedAdam`` update), timed with CUDA events after warm-up; its matmul FLOPs come from
``torch.utils.flop_counter`` over one step, and the achieved FLOP/s is set against the card's dense
(not sparse) tensor-core peak: TF32 for ``fp32`` (TF32 matmuls allowed), BF16 for ``bf16`` autocast.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("tests", "step", "importance", "ddp")

SIZES = {
    "tiny": dict(x_dim=3, h_dim=8, z_dim=2, batch=4, steps=5, feature_dims=(8,), hidden_dims=(8,)),
    "paper": dict(x_dim=200, h_dim=2000, z_dim=200, batch=128, steps=40, feature_dims=(600,) * 4,
                  hidden_dims=(600,) * 4),
}

#: dense tensor-core peaks in TFLOP/s, (TF32, BF16): half the "with sparsity" figures of NVIDIA's
#: data sheets. Longer names are matched first ("H100 PCIe" before "H100", "L40S" before "L4").
PEAK_TFLOPS = {"H200": (494.7, 989.4), "H100 NVL": (417.5, 835.5), "H100 PCIe": (378.0, 756.0),
               "H100": (494.7, 989.4), "A100": (156.0, 312.0), "L40S": (183.0, 362.05), "L4": (60.0, 121.0),
               "A10": (62.5, 125.0)}


def peak_tflops(name: str, precision: str) -> float | None:
    """The dense peak of the card called ``name`` for ``precision`` (``"fp32"`` = TF32, ``"bf16"``)."""
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_TFLOPS[key][0 if precision == "fp32" else 1]
    return None


def write_part(out: Path, part: str, record: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{part}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{part}: {record['status']}" + (f" ({record['reason']})" if record.get("reason") else ""))
    return record


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason, "seconds": 0.0}


def device_info() -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": torch.cuda.device_count()}
    if torch.cuda.is_available():
        info["name"] = torch.cuda.get_device_name(0)
    return info


# ---------------------------------------------------------------------------- parts
def part_tests(args) -> dict:
    if args.mode != "gpu":
        return skipped("cpu-smoke mode: the GPU tests need a CUDA device")
    start = time.perf_counter()
    junit = args.out / "gpu_tests.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                           f"--junitxml={junit}", "tests"], cwd=ROOT, capture_output=True, text=True,
                          timeout=args.timeout)
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    if junit.is_file():
        import xml.etree.ElementTree as ElementTree

        suite = ElementTree.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        total = int(suite.get("tests", 0))
        counts = {"failed": int(suite.get("failures", 0)), "errors": int(suite.get("errors", 0)),
                  "skipped": int(suite.get("skipped", 0))}
        counts["passed"] = total - sum(counts.values())
    ok = done.returncode == 0 and counts["passed"] > 0
    return {"status": "ok" if ok else "failed", "seconds": time.perf_counter() - start, **counts,
            "returncode": done.returncode, "output_tail": (done.stdout + done.stderr)[-2000:]}


def _model_and_batch(size: dict, device):
    import pyro
    import torch

    from pyro_vrnn import VRNN

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model = VRNN(size["x_dim"], size["z_dim"], size["h_dim"], feature_dims=size["feature_dims"],
                 hidden_dims=size["hidden_dims"]).to(device)
    x = torch.randn(size["batch"], size["steps"], size["x_dim"], device=device)
    return model, x


def _in_place_addmm_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``self.addmm_(a, b)`` (the LSTM's recurrent product): torch's counter knows only ``addmm``."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def _time_ms(fn, device) -> float:
    """``_common.time_ms`` (imported here: torch is imported only once a GPU part runs)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import time_ms

    return time_ms(fn, device)


def part_step(args) -> dict:
    import pyro
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pyro_vrnn.train.precision import AutocastELBO
    from pyro_vrnn.train.trainer import Trainer, make_elbo

    device = torch.device("cuda" if args.mode == "gpu" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        return {"status": "failed", "reason": "torch sees no CUDA device", "seconds": 0.0}
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 runs as TF32 on tensor cores
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    size_name = "paper" if args.mode == "gpu" else "tiny"
    size = SIZES[size_name]
    start, runs = time.perf_counter(), []
    for precision in ("fp32", "bf16"):
        model, x = _model_and_batch(size, device)
        elbo = make_elbo("trace")
        trainer = Trainer(model, lr=1e-4, elbo=AutocastELBO(elbo, device.type) if precision == "bf16" else elbo)
        with pyro.validation_enabled(False):
            counting = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addmm_: _in_place_addmm_flops})
            with counting as counter:
                loss = trainer.step(x)
            flops = counter.get_total_flops()
            for _ in range(args.warmup):
                trainer.step(x)
            times = [_time_ms(lambda: trainer.step(x), device) for _ in range(args.repeats)]
        ms = statistics.median(times)
        peak = peak_tflops(name, precision)
        achieved = flops / (ms * 1e-3) / 1e12
        matmul = ("tf32" if device.type == "cuda" else "fp32") if precision == "fp32" else "bf16"
        runs.append({"precision": precision, "matmul": matmul,
                     "ms_median": ms, "ms_all": times, "gflop_per_step": flops / 1e9, "achieved_tflops": achieved,
                     "peak_tflops": peak, "fraction_of_peak": achieved / peak if peak else None,
                     "first_loss": loss, "memory_gb": (torch.cuda.max_memory_allocated(device) / 1e9
                                                       if device.type == "cuda" else None)})
        del model, trainer
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
    ok = all(r["first_loss"] is not None for r in runs)
    return {"status": "ok" if ok else "failed", "seconds": time.perf_counter() - start, "device": name,
            "size": size_name, **{k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
            "repeats": args.repeats, "runs": runs}


def part_importance(args) -> dict:
    import math

    import pyro
    import torch

    from pyro_vrnn.report.evaluation import auto_chunk_size
    from pyro_vrnn.infer.importance import importance_estimate
    from pyro_vrnn.train.precision import autocast

    device = torch.device("cuda" if args.mode == "gpu" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        return {"status": "failed", "reason": "torch sees no CUDA device", "seconds": 0.0}
    size_name = "paper" if args.mode == "gpu" else "tiny"
    size = {**SIZES[size_name], "batch": 16 if args.mode == "gpu" else 2}
    particles = 1000 if args.mode == "gpu" else 20
    start, runs = time.perf_counter(), []
    model, x = _model_and_batch(size, device)
    chunk = auto_chunk_size(model, size["batch"], size["steps"], particles)
    for precision in ("fp32", "bf16"):
        result = {}
        with torch.no_grad(), pyro.validation_enabled(False), autocast(precision, device):
            pyro.set_rng_seed(0)  # warm-up: one chunk
            importance_estimate(model.model, model.guide, x, num_particles=min(particles, chunk), chunk_size=chunk)
            pyro.set_rng_seed(0)
            seconds = _time_ms(lambda: result.update(estimate=importance_estimate(
                model.model, model.guide, x, num_particles=particles, chunk_size=chunk)), device) / 1e3
        est = result["estimate"]
        ll = est.log_likelihood
        runs.append({"precision": precision, "seconds": seconds, "particles_per_second": particles / seconds,
                     "log_likelihood_dtype": str(ll.dtype), "log_likelihood_per_sequence": ll.tolist(),
                     "ess_mean": float(est.ess.mean()), "finite": bool(torch.isfinite(ll).all())})
    ok = all(r["finite"] and r["log_likelihood_dtype"] == "torch.float64" for r in runs)
    fp32, bf16 = (r["log_likelihood_per_sequence"] for r in runs)
    diff = max(abs(a - b) for a, b in zip(fp32, bf16))
    return {"status": "ok" if ok else "failed", "seconds": time.perf_counter() - start, "size": size_name,
            "batch": size["batch"], "steps": size["steps"], "particles": particles, "chunk_size": chunk,
            "bf16_minus_fp32_max_abs": diff if math.isfinite(diff) else None, "runs": runs}


def part_ddp(args) -> dict:
    import torch

    if args.mode != "gpu":
        return skipped("cpu-smoke mode: the DDP smoke run needs two CUDA devices")
    if torch.cuda.device_count() < 2:
        return skipped(f"{torch.cuda.device_count()} CUDA device(s); the DDP smoke run needs two")
    run = args.out / "ddp_run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
               "pyro_vrnn.cli", "train", "--model", "vrnn-gmm", "--data", "speech-synthetic", "--steps", "20",
               "--batch-size", "64", "--h-dim", "512", "--z-dim", "64", "--feature-dims", "512", "--hidden-dims",
               "512", "--device", "cuda", "--out", str(run), "--overwrite", "--quiet", "--checkpoint-every", "10"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    seconds = time.perf_counter() - start
    record = {"status": "ok" if done.returncode == 0 else "failed", "seconds": seconds,
              "command": " ".join(command[1:]), "returncode": done.returncode,
              "output_tail": (done.stdout + done.stderr)[-2000:]}
    if done.returncode == 0:
        config = json.loads((run / "config.json").read_text())
        history = json.loads((run / "history.json").read_text())["train"]
        step_seconds = [r["seconds"] for r in history]
        record.update(world_size=config["world_size"], steps=len(history), final_loss=history[-1]["loss"],
                      median_step_seconds=statistics.median(step_seconds))
    return record


def part_summary(args) -> dict:
    parts = {}
    for part in PARTS:
        path = args.out / f"{part}.json"
        parts[part] = (json.loads(path.read_text()) if path.is_file() else
                       {"status": "failed", "reason": f"no {path.name} (crashed or timed out; see {part}.log)"})
    summary = {"mode": args.mode, "device": device_info(),
               "wall_seconds": time.time() - args.started if args.started else None,
               "ok": all(p["status"] in ("ok", "skipped") for p in parts.values()), "parts": parts}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"summary: {'ok' if summary['ok'] else 'FAILED'}; " +
          ", ".join(f"{k} {v['status']}" for k, v in parts.items()) + f"; written {args.out / 'summary.json'}")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=PARTS + ("summary",))
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON files")
    parser.add_argument("--mode", choices=("gpu", "cpu-smoke"), default="gpu")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for a part's subprocess")
    parser.add_argument("--repeats", type=int, default=10, help="timed training steps per precision")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--started", type=float, default=None, help="summary: the pipeline's start (Unix time)")
    args = parser.parse_args(argv)
    if args.mode == "cpu-smoke":
        args.repeats, args.warmup = min(args.repeats, 2), min(args.warmup, 1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.part == "summary":
        return 0 if part_summary(args)["ok"] else 1
    try:
        parts = {"tests": part_tests, "step": part_step, "importance": part_importance, "ddp": part_ddp}
        record = parts[args.part](args)
    except subprocess.TimeoutExpired as error:
        record = {"status": "failed", "reason": f"timed out after {error.timeout:.0f} s", "seconds": error.timeout}
    write_part(args.out, args.part, record)
    return 0 if record["status"] in ("ok", "skipped") else 1


if __name__ == "__main__":
    sys.exit(main())
