"""Importance-sampled log-likelihood: a loop over particles against vectorized particle chunks.

Both sides run the very same code, ``pyro_vrnn.infer.importance.importance_log_weights``: the loop is
``chunk_size=1`` (one particle at a time), the vectorized runs use ``chunk_size`` particles per
chunk (a particle plate at ``dim=-2``, memory bounded by the chunk). Each particle draws its noise
from its own generator, so every chunk size gives the same estimate for the same seed (checked
here, and in ``tests/test_performance_paths.py``).

The loop over all ``K`` particles would take many minutes, so it is timed on ``--loop-particles``
of them and scaled linearly to ``K`` (its cost is the same for every particle); the JSON says so.

    python benchmarks/importance.py --device cpu --json benchmarks/results/importance_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, setup_device, sync, write_records  # noqa: E402

from pyro_vrnn import VRNN  # noqa: E402
from pyro_vrnn.infer.importance import importance_log_weights  # noqa: E402


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return (time.perf_counter() - start) * 1e3, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, default_repeats=1)
    parser.add_argument("--particles", type=int, default=1000, help="K")
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[100, 250, 50],
                        help="vectorized chunk sizes; the first one is the headline 'vectorized_ms'")
    parser.add_argument("--loop-particles", type=int, default=20,
                        help="particles the loop is timed on (scaled linearly to --particles)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--x-dim", type=int, default=3)
    parser.add_argument("--z-dim", type=int, default=16)
    parser.add_argument("--h-dim", type=int, default=64)
    parser.add_argument("--validation", default="off", choices=["off", "on"])
    args = parser.parse_args(argv)
    device = setup_device(args)
    pyro.enable_validation(args.validation == "on")
    torch.manual_seed(args.seed)
    model = VRNN(args.x_dim, args.z_dim, args.h_dim, feature_dims=(args.h_dim,),
                 hidden_dims=(args.h_dim,)).to(device)
    x = torch.randn(args.batch, args.steps, args.x_dim, device=device)

    def weights(num_particles, chunk_size):
        pyro.set_rng_seed(args.seed)
        return importance_log_weights(model.model, model.guide, x, None, num_particles, chunk_size)[0]

    weights(min(4, args.particles), 2)  # warm-up
    loop_n = min(args.loop_particles, args.particles)
    loop_raw_ms, loop_w = timed(lambda: weights(loop_n, 1), device)
    loop_ms = loop_raw_ms * args.particles / loop_n
    print(f"loop: {loop_n} particles one at a time in {loop_raw_ms:.0f} ms -> {loop_ms / 1e3:.1f} s for "
          f"K={args.particles} (scaled linearly)", flush=True)
    chunks, reference = {}, None
    for chunk in args.chunk_sizes:
        ms = []
        for _ in range(args.repeats):
            t, w = timed(lambda: weights(args.particles, chunk), device)
            ms.append(t)
        chunks[chunk] = min(ms)
        if reference is None:
            reference = w
        diff = (w - reference).abs().max().item()
        same_prefix = (w[:loop_n] - loop_w).abs().max().item()
        print(f"vectorized, chunks of {chunk}: {chunks[chunk] / 1e3:.2f} s, speed-up {loop_ms / chunks[chunk]:.1f}x "
              f"(max |log w - first chunking| {diff:.1e}, first {loop_n} vs loop {same_prefix:.1e})", flush=True)
        if max(diff, same_prefix) > 1e-3:
            raise SystemExit("chunked estimates differ: the per-particle noise is not chunk-invariant")
    headline = args.chunk_sizes[0]
    record = {"benchmark": "importance", "particles": args.particles, "batch": args.batch, "steps": args.steps,
              "x_dim": args.x_dim, "z_dim": args.z_dim, "h_dim": args.h_dim,
              "loop_ms": loop_ms, "loop_timed_particles": loop_n, "loop_scaled_linearly": loop_n < args.particles,
              "vectorized_ms": chunks[headline], "chunk_size": headline, "speedup": loop_ms / chunks[headline],
              "chunks_ms": {str(k): v for k, v in chunks.items()},
              "speedup_by_chunk": {str(k): loop_ms / v for k, v in chunks.items()},
              "pyro_validation": args.validation == "on"}
    write_records(args.json, [record], "importance.py", argv, device)
    return record


if __name__ == "__main__":
    main()
