"""Steps per second of data-parallel training on 1 and on 2 processes (one CPU thread each), through
the command line, at the ``large`` size (x 200, h 256, z 64, one hidden layer of 256 in every
network, global batch 128, T 50; see benchmarks/train_step.py), rounds interleaved::

    python benchmarks/ddp_steps.py --corpus /work/tmp-scale/corpus-1gb --steps 20 --rounds 2 \\
        --json benchmarks/results/ddp_steps_cpu.json

The corpus is one written by ``benchmarks/prepared_memory.py write`` ((50, 200) sequences). One
process runs ``pyro-vrnn train``, two run it under ``torchrun --standalone --nproc_per_node=2``
(each 64 sequences of every batch, gloo). A step's time is the trainer's own (``history.json``:
loss and gradients, the all-reduce, the optimizer step); the first step (warm-up) is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["train", "--model", "vrnn-normal", "--h-dim", "256", "--z-dim", "64", "--feature-dims", "256",
         "--hidden-dims", "256", "--batch-size", "128", "--valid-every", "0", "--checkpoint-every", "0",
         "--threads", "1", "--quiet"]


def run(processes: int, corpus: Path, steps: int, workers: int, out: Path) -> dict:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    command = [*launcher, "-m", "pyro_vrnn.cli", *FLAGS, "--data", f"prepared:{corpus}", "--data-option",
               f"workers={workers}", "--steps", str(steps), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    history = json.loads((out / "history.json").read_text())["train"]
    seconds = [r["seconds"] for r in history[1:]]
    return {"processes": processes, "command": " ".join(["python" if c == sys.executable else c for c in command]),
            "step_seconds_median": statistics.median(seconds), "steps_per_second": 1 / statistics.median(seconds),
            "step_seconds": seconds, "wall_seconds": wall, "load_average": os.getloadavg(),
            "world_size": json.loads((out / "config.json").read_text())["world_size"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="1-process and 2-process runs, alternated")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers per process")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    records = []
    with tempfile.TemporaryDirectory(dir=args.corpus.parent) as tmp:
        for round_ in range(args.rounds):
            for processes in ((1, 2) if round_ % 2 == 0 else (2, 1)):
                record = run(processes, args.corpus, args.steps, args.workers, Path(tmp) / f"r{round_}-p{processes}")
                records.append({"round": round_, **record})
                print(f"round {round_}: {processes} process(es): {record['steps_per_second']:.3f} steps/s "
                      f"(median step {record['step_seconds_median']:.2f} s; load {record['load_average'][0]:.1f})",
                      flush=True)
    summary = {p: statistics.median([r["steps_per_second"] for r in records if r["processes"] == p]) for p in (1, 2)}
    print(f"median steps/s: 1 process {summary[1]:.3f}, 2 processes {summary[2]:.3f} "
          f"(x{summary[2] / summary[1]:.2f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join(["python", "benchmarks/ddp_steps.py", *sys.argv[1:]]),
                                         "median_steps_per_second": {str(k): v for k, v in summary.items()},
                                         "speedup": summary[2] / summary[1], "runs": records}, indent=2) + "\n")


if __name__ == "__main__":
    main()
