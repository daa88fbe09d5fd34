"""Training from a prepared corpus: resident memory against the corpus size, and throughput against
the same sequences held in memory.

    # a synthetic corpus of GB gigabytes: (50, 200) float32 sequences (the `large` size's T and x)
    python benchmarks/prepared_memory.py write --gigabytes 1 --out /work/tmp-scale/corpus-1gb
    # train from it in a child process, sampling the memory of the child and its DataLoader workers
    python benchmarks/prepared_memory.py measure --corpus /work/tmp-scale/corpus-1gb --steps 30 \\
        --json benchmarks/results/prepared_memory_1gb.json
    # the same sequences read into memory first (a list of tensors, as the loaders return)
    python benchmarks/prepared_memory.py measure --corpus /work/tmp-scale/corpus-1gb --in-memory 25000 ...
    # throughput, interleaved in one process: a step on a batch from disk, then on the same batch from memory
    python benchmarks/prepared_memory.py throughput --corpus /work/tmp-scale/corpus-1gb --pairs 20 \
        --json benchmarks/results/prepared_throughput_1gb.json

The child trains the ``large`` VRNN (x 200, h 256, z 64, one hidden layer of 256 in every network,
batch 128, T 50; see benchmarks/train_step.py) with :class:`pyro_vrnn.train.trainer.Trainer` on one
thread, and reports the wall time between consecutive steps (loading included). The parent reads
``/proc/PID/smaps_rollup`` of the child and of every process under it every 0.2 s: ``Rss`` (what
``top`` shows; pages shared between the trainer and its forked workers are counted in each) and
``Pss`` (shared pages divided among the processes that share them: the sum is the memory the
training really holds). ``--in-memory N`` reads the first N training sequences into a list first.

``throughput`` times pairs of training steps in one process on the same batches (one seeded epoch
order): one fed by the prepared split's DataLoader workers (:meth:`PreparedSplit.batches`), one by
padding the same sequences held in memory, each timed from asking for the batch to the end of the
optimizer step, the order within a pair alternating; it reports the medians and the median of the
per-pair ratios, as ``benchmarks/_common.py`` does for every A/B here. Step times on this shared
2-core machine drift by tens of percent between runs minutes apart, so only interleaved pairs can
resolve a 10% difference.
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

LARGE = dict(x_dim=200, h_dim=256, z_dim=64, batch=128, steps=50)


def write(args) -> None:
    import numpy as np
    import torch

    from pyro_vrnn.data import Normalizer
    from pyro_vrnn.data.prepared import write_prepared

    T, D = LARGE["steps"], LARGE["x_dim"]
    count = int(args.gigabytes * 1e9 // (T * D * 4))

    def sequences(n, seed):  # smooth random walks, a new generator per split
        rng = np.random.default_rng(seed)
        for _ in range(n):
            yield (rng.standard_normal((T, D), dtype=np.float32).cumsum(0) * np.float32(0.2))

    start = time.perf_counter()
    splits = {"train": ([T] * count, sequences(count, 0)), "valid": ([T] * 64, sequences(64, 1)),
              "test": ([T] * 64, sequences(64, 2))}
    normalizer = Normalizer(torch.zeros(D), torch.ones(D), "identity (synthetic benchmark data)")
    write_prepared(args.out, name="synthetic-benchmark", kind="speech", normalizer=normalizer, splits=splits,
                   info={"generator": f"random walks, {count} training sequences of ({T}, {D}) float32"},
                   synthetic=True, overwrite=True)
    size = sum(p.stat().st_size for p in Path(args.out).glob("*.npy")) / 1e9
    print(json.dumps({"corpus": str(args.out), "train_sequences": count, "gigabytes_on_disk": size,
                      "seconds": time.perf_counter() - start}))


def train(args) -> None:
    """The child: train and print one JSON line of timings."""
    import pyro
    import torch

    from pyro_vrnn import VRNN
    from pyro_vrnn.data.prepared import open_prepared
    from pyro_vrnn.train.trainer import Trainer

    torch.set_num_threads(1)
    dataset = open_prepared(args.corpus, workers=args.workers)
    train_split = dataset.train
    if args.in_memory:
        train_split = train_split.read(range(min(args.in_memory, len(train_split))))
    pyro.set_rng_seed(0)
    model = VRNN(LARGE["x_dim"], LARGE["z_dim"], LARGE["h_dim"], feature_dims=(LARGE["h_dim"],),
                 hidden_dims=(LARGE["h_dim"],))
    trainer = Trainer(model, lr=1e-4)
    stamps = [time.perf_counter()]
    with pyro.validation_enabled(False):
        trainer.fit(train_split, args.steps, LARGE["batch"], progress=False,
                    callback=lambda trainer_, record: stamps.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(stamps[1:], stamps[2:])]  # from the end of step 1 on: warm
    print(json.dumps({"steps": trainer.step_count, "step_seconds_median": statistics.median(gaps),
                      "step_seconds": gaps, "first_step_seconds": stamps[1] - stamps[0],
                      "train_sequences": len(train_split)}), flush=True)


def throughput(args) -> None:
    import pyro
    import torch

    from pyro_vrnn import VRNN
    from pyro_vrnn.data.batching import batch_indices
    from pyro_vrnn.data.prepared import load_batches, open_prepared
    from pyro_vrnn.train.trainer import Trainer

    torch.set_num_threads(1)
    split = open_prepared(args.corpus, workers=args.workers).train
    memory = split.read(range(len(split)))
    batches = batch_indices(split.lengths, LARGE["batch"], True, torch.Generator().manual_seed(0))
    sources = {"prepared": split.batches(iter(batches)), "memory": load_batches(memory, iter(batches))}
    pyro.set_rng_seed(0)
    model = VRNN(LARGE["x_dim"], LARGE["z_dim"], LARGE["h_dim"], feature_dims=(LARGE["h_dim"],),
                 hidden_dims=(LARGE["h_dim"],))
    trainer = Trainer(model, lr=1e-4)
    times = {name: [] for name in sources}

    def timed_step(name):
        start = time.perf_counter()
        x, mask = next(sources[name])
        trainer.step(x, mask)
        return time.perf_counter() - start

    with pyro.validation_enabled(False):
        for name in sources:  # warm-up: worker start-up, first allocations
            timed_step(name)
        for i in range(args.pairs):
            for name in (("prepared", "memory") if i % 2 == 0 else ("memory", "prepared")):
                times[name].append(timed_step(name))
    pairs = [a / b for a, b in zip(times["prepared"], times["memory"])]
    record = {"command": " ".join(["python", "benchmarks/prepared_memory.py", *sys.argv[1:]]),
              "corpus": str(args.corpus), "workers": args.workers, "pairs": args.pairs,
              "prepared_step_seconds_median": statistics.median(times["prepared"]),
              "memory_step_seconds_median": statistics.median(times["memory"]),
              "ratio": statistics.median(times["prepared"]) / statistics.median(times["memory"]),
              "pair_ratio_median": statistics.median(pairs), "pair_ratio_min": min(pairs),
              "pair_ratio_max": max(pairs), "load_average": os.getloadavg(), "seconds": times}
    print(json.dumps({k: v for k, v in record.items() if k != "seconds"}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")


def _memory_kb(pid: int) -> dict:
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Anonymous"):
                    fields[key] = int(rest.split()[0])
    except OSError:
        pass
    return fields


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        p = pending.pop()
        pids.append(p)
        try:
            pending += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return pids


def measure(args) -> None:
    command = [sys.executable, __file__, "train", "--corpus", str(args.corpus), "--steps", str(args.steps),
               "--workers", str(args.workers)] + (["--in-memory", str(args.in_memory)] if args.in_memory else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    peak = {"main_rss_mb": 0.0, "main_pss_mb": 0.0, "tree_rss_mb": 0.0, "tree_pss_mb": 0.0, "processes": 1}
    samples = []
    while child.poll() is None:
        pids = _tree(child.pid)
        mem = {p: _memory_kb(p) for p in pids}
        main = mem.get(child.pid, {})
        sample = {"t": time.monotonic(), "main_rss_mb": main.get("Rss", 0) / 1024,
                  "main_pss_mb": main.get("Pss", 0) / 1024,
                  "tree_rss_mb": sum(m.get("Rss", 0) for m in mem.values()) / 1024,
                  "tree_pss_mb": sum(m.get("Pss", 0) for m in mem.values()) / 1024, "processes": len(pids)}
        samples.append(sample)
        for key in peak:
            peak[key] = max(peak[key], sample[key])
        time.sleep(0.2)
    result = json.loads(child.stdout.read().strip().splitlines()[-1])
    corpus_gb = sum(p.stat().st_size for p in Path(args.corpus).glob("*.npy")) / 1e9
    record = {"command": " ".join(["python", "benchmarks/prepared_memory.py", *sys.argv[1:]]),
              "corpus": str(args.corpus), "corpus_gigabytes": corpus_gb,
              "source": "in memory (list of tensors)" if args.in_memory else "prepared corpus (DataLoader workers)",
              "workers": args.workers, **{f"peak_{k}": v for k, v in peak.items()}, **result,
              "memory_samples": samples[::5], "load_average": os.getloadavg()}
    print(json.dumps({k: v for k, v in record.items() if k not in ("memory_samples", "step_seconds")}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("write", help="write a synthetic prepared corpus")
    p.add_argument("--gigabytes", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=write)
    for name, func in (("measure", measure), ("train", train), ("throughput", throughput)):
        p = sub.add_parser(name)
        p.add_argument("--corpus", type=Path, required=True)
        p.add_argument("--steps", type=int, default=30)
        p.add_argument("--workers", type=int, default=2, help="DataLoader workers")
        p.add_argument("--in-memory", type=int, default=0, metavar="N",
                       help="read the first N training sequences into memory first")
        p.add_argument("--pairs", type=int, default=20, help="throughput: timed pairs of steps")
        p.add_argument("--json", type=Path, default=None)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
