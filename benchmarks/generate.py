"""Time ancestral sampling, ``VRNN.generate`` (a Pyro program under ``poutine.block``), against a
plain-PyTorch sampler of the same networks (``reference_vrnn.torch_generate``).

Both draw the same noise in the same order: the samples are checked equal before timing. The two
sides are timed interleaved after warm-up; medians and the ratio (Pyro over PyTorch) are printed
and written as JSON.

    python benchmarks/generate.py --device cpu --json benchmarks/results/generate_cpu.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (add_common_args, interleaved, median, ratio_stats,  # noqa: E402
                     setup_device, write_records)
from reference_vrnn import torch_generate  # noqa: E402
from train_step import SIZES, build  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, default_repeats=20)
    parser.add_argument("--sizes", nargs="+", default=["small", "large"], choices=sorted(SIZES))
    parser.add_argument("--num-sequences", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--validation", default="off", choices=["off", "on"])
    args = parser.parse_args(argv)
    device = setup_device(args)
    records = []
    with pyro.validation_enabled(args.validation == "on"):
        for name in args.sizes:
            vrnn, _ = build(SIZES[name], device, args.seed)
            n, steps = args.num_sequences, args.steps
            torch.manual_seed(args.seed)
            ours = vrnn.generate(n, steps)
            torch.manual_seed(args.seed)
            theirs = torch_generate(vrnn, n, steps)
            diff = (ours - theirs).abs().max().item()
            if diff > 1e-3:
                raise SystemExit(f"{name}: generate and the reference sampler differ by {diff}")
            times = interleaved({"torch": lambda: torch_generate(vrnn, n, steps),
                                 "pyro": lambda: vrnn.generate(n, steps)}, device, args.repeats, args.warmup)
            record = {"benchmark": "generate", "size": name, "num_sequences": n, "steps": steps,
                      "torch_ms": median(times["torch"]), "pyro_ms": median(times["pyro"]),
                      **ratio_stats(times["pyro"], times["torch"]), "max_abs_diff": diff,
                      "pyro_validation": args.validation == "on", "repeats": args.repeats}
            records.append(record)
            print(f"{name:6s} torch {record['torch_ms']:8.2f} ms  pyro {record['pyro_ms']:8.2f} ms  "
                  f"ratio {record['ratio']:.3f} (pairs: median {record['pair_ratio_median']:.3f})", flush=True)
    write_records(args.json, records, "generate.py", argv, device)
    return records


if __name__ == "__main__":
    main()
