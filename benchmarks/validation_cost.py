"""What a validation costs in batches cut from the file order against the length-sorted order.

The trainer's validation (``Trainer.loss_per_step``) pads every batch to its longest sequence, and a
padded step costs what a real one does. This script counts the steps each batching computes and times
the validation loss of a run's model both ways on its validation split, interleaved (same model, same
batch size; the figure differs only by the ELBO's sampled latents).

    python benchmarks/validation_cost.py runs/musedata/vrnn-ar --batch-size 16 --repeats 2 \\
        --json benchmarks/results/validation_cost.json
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

from pyro_vrnn.data.batching import batch_indices, pad_batch  # noqa: E402
from pyro_vrnn.train.runs import load_data, load_run  # noqa: E402
from pyro_vrnn.train.trainer import Trainer  # noqa: E402


def computed_steps(lengths, batch_size: int, sorted_batches: bool) -> int:
    """Steps the networks run over, padding included: ``sum_b |b| * max_{i in b} T_i``."""
    return sum(len(idx) * max(lengths[i] for i in idx)
               for idx in batch_indices(lengths, batch_size, shuffle=False, bucket_by_length=sorted_batches))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run folder (pyro-vrnn train --out ...)")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences a batch (the training batch size)")
    add_common_args(parser, default_repeats=2)
    parser.set_defaults(warmup=0)
    args = parser.parse_args(argv)
    device = setup_device(args)
    pyro.enable_validation(False)
    model, config, _, payload = load_run(args.run_dir, device)
    valid = load_data(config).valid
    lengths = [len(s) for s in valid]
    trainer = Trainer(model)
    losses = {}

    def validation(sorted_batches: bool):
        def run():
            total = 0.0
            with torch.no_grad():
                for idx in batch_indices(lengths, args.batch_size, shuffle=False, bucket_by_length=sorted_batches):
                    x, mask = pad_batch([valid[i] for i in idx])
                    total += trainer.elbo.loss(model.model, trainer.guide, x.to(device), mask.to(device))
            losses.setdefault(sorted_batches, []).append(total / sum(lengths))
        return run

    times = interleaved({"file_order": validation(False), "sorted": validation(True)}, device, args.repeats,
                        args.warmup)
    name = model_name(config)
    record = {"run_dir": str(args.run_dir), "model": name, "data": config["data"], "train_steps": payload["step"],
              "num_sequences": len(valid), "real_steps": sum(lengths), "batch_size": args.batch_size,
              "computed_steps_file_order": computed_steps(lengths, args.batch_size, False),
              "computed_steps_sorted": computed_steps(lengths, args.batch_size, True),
              "file_order_s": median(times["file_order"]) / 1e3, "sorted_s": median(times["sorted"]) / 1e3,
              "file_order_over_sorted": ratio_stats(times["file_order"], times["sorted"]),
              "loss_per_step_file_order": losses[False], "loss_per_step_sorted": losses[True],
              "repeats": args.repeats}
    print(f"{name} on {config['data']}: {len(valid)} validation sequences, {record['real_steps']} steps; computed "
          f"in file order {record['computed_steps_file_order']} ({record['computed_steps_file_order'] / record['real_steps']:.2f}x), "
          f"sorted {record['computed_steps_sorted']} ({record['computed_steps_sorted'] / record['real_steps']:.2f}x); "
          f"{record['file_order_s']:.1f} s against {record['sorted_s']:.1f} s "
          f"({record['file_order_over_sorted']['ratio']:.2f}x)", flush=True)
    write_records(args.json, [record], "validation_cost.py", argv, device)
    return [record]


if __name__ == "__main__":
    main()
