"""Shared helpers for the benchmarks: devices, interleaved A/B timing, JSON output, machine info.

Timing rules used by every script:

- warm-up runs first (allocator, autograd graph caches, lazy inits), then timed runs;
- A and B alternate (A B, B A, A B, ...), so drift in the machine (thermal, other load) hits both;
- on CUDA every timed region is bracketed by CUDA events and synchronised, so queued kernels are
  counted where they run, not where they are launched;
- we report medians (and the median of the per-pair ratios), never means.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch


def add_common_args(parser, default_repeats: int = 20):
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default: cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads on CPU (default 1: a single-threaded A/B)")
    parser.add_argument("--repeats", type=int, default=default_repeats, help="timed runs of each side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs of each side first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the records to this JSON file")
    return parser


def setup_device(args) -> torch.device:
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda was asked for but torch sees no CUDA device")
    else:
        torch.set_num_threads(args.threads)
    return device


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of one call in milliseconds (CUDA events on a GPU, perf_counter on a CPU)."""
    if device.type == "cuda":
        sync(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def interleaved(fns: dict[str, Callable[[], object]], device, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Time every function ``repeats`` times, interleaved, rotating the order each round."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    sync(device)
    times = {name: [] for name in names}
    for i in range(repeats):
        order = names[i % len(names):] + names[:i % len(names)]
        if i % 2:
            order = order[::-1]
        for name in order:
            times[name].append(time_ms(fns[name], device))
    return times


def median(xs):
    return float(statistics.median(xs))


def ratio_stats(num: list[float], den: list[float]) -> dict:
    pairs = [a / b for a, b in zip(num, den)]
    return {"ratio": median(num) / median(den), "pair_ratio_median": median(pairs),
            "pair_ratio_min": min(pairs), "pair_ratio_max": max(pairs)}


def machine_info(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": str(device)}
    try:
        import pyro
        info["pyro"] = pyro.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def model_name(config: dict) -> str:
    """The model's name in a run's config (its ``model`` is a spec dict, or a name in older runs)."""
    return config["model"]["name"] if isinstance(config["model"], dict) else config["model"]


def write_json(path: Path | None, payload):
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


def write_records(path: Path | None, records: list[dict], script: str, argv, device: torch.device) -> None:
    """Stamp every record with the command that made it and the machine, then :func:`write_json`."""
    command = " ".join(["python", f"benchmarks/{script}"] + list(sys.argv[1:] if argv is None else argv))
    machine = machine_info(device)
    for record in records:
        record.update(command=command, machine=machine)
    write_json(path, records)
