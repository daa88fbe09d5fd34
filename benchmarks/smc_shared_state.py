"""What SMC saves by keeping a state that no latent reaches shared by the particles.

The SRNN's deterministic recurrence ``d_t = f(d_{t-1}, x_{t-1})`` reads the data alone, so the particle
filter (``pyro_vrnn.infer.smc.particle_filter``) keeps it ``(B, H)`` and runs it once per sequence; the
VRNN's ``h_t`` reads ``z_t`` and gains the particle dims after the first step. The reference is the same
filter with every leaf of the initial state expanded to ``(K, B, D)`` (as it ran before), on the same
sequences and the same noise: both sides are timed interleaved, and their ``log p_hat(x)`` compared.

    python benchmarks/smc_shared_state.py RUN_DIR --particles 100 --max-sequences 8 --max-steps 100 \\
        --json benchmarks/results/smc_shared_state.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (add_common_args, interleaved, median, model_name, ratio_stats, setup_device,  # noqa: E402
                     write_records)

from pyro_vrnn.data.batching import pad_batch  # noqa: E402
from pyro_vrnn.infer.smc import SequenceNoise, particle_filter  # noqa: E402
from pyro_vrnn.train.runs import load_data, load_run  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run folder (pyro-vrnn train --out ...)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--particles", type=int, default=100, help="K")
    parser.add_argument("--max-sequences", type=int, default=8, help="the first N sequences of the split, one batch")
    parser.add_argument("--max-steps", type=int, default=100, help="each sequence's first T steps")
    add_common_args(parser, default_repeats=5)
    args = parser.parse_args(argv)
    device = setup_device(args)
    pyro.enable_validation(False)
    model, config, _, payload = load_run(args.run_dir, device)
    sequences = [s[:args.max_steps] for s in load_data(config).split(args.split)[:args.max_sequences]]
    x, mask = (t.to(device) for t in pad_batch(sequences)[:2])
    k, batch = args.particles, x.shape[0]

    def run(initial_state):
        with torch.no_grad():
            return particle_filter(model, x, mask, num_particles=k, initial_state=initial_state,
                                   noise=SequenceNoise(range(args.seed, args.seed + batch), device))

    def per_particle_start():
        return model.initial_state((k, batch), x)

    shared, expanded = run(None), run(per_particle_start())
    times = interleaved({"shared": lambda: run(None), "per_particle": lambda: run(per_particle_start())},
                        device, args.repeats, args.warmup)
    name = model_name(config)
    record = {"run_dir": str(args.run_dir), "model": name, "train_steps": payload["step"],
              "num_particles": k, "num_sequences": batch, "num_steps": int(mask.sum()),
              "shared_ms": median(times["shared"]), "per_particle_ms": median(times["per_particle"]),
              "per_particle_over_shared": ratio_stats(times["per_particle"], times["shared"]),
              "max_abs_log_z_difference": float((shared.log_z - expanded.log_z).abs().max()),
              "log_z_per_step": float(shared.log_z.sum() / mask.sum()), "repeats": args.repeats}
    print(f"{name}: K={k}, {batch} sequences, {record['num_steps']} steps: shared start "
          f"{record['shared_ms']:.0f} ms, per-particle start {record['per_particle_ms']:.0f} ms "
          f"({record['per_particle_over_shared']['ratio']:.2f}x); max |log Z difference| "
          f"{record['max_abs_log_z_difference']:.2e} nats", flush=True)
    write_records(args.json, [record], "smc_shared_state.py", argv, device)
    return [record]


if __name__ == "__main__":
    main()
