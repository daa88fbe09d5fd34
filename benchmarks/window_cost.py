"""A training update's cost against the window length and against the piece's length, in one run.

Windowed training (``--train-window N``, ``Trainer.window_steps``) cuts each batch of pieces into
windows of ``N`` steps and takes one update per window, the state carried across windows. An update
should then cost ``O(N)`` whatever the piece's length ``T``; whole-sequence training costs ``O(T)``.
An *update* here is everything the trainer does for it: the ELBO's loss and gradients on the window,
the clipped-Adam step, and (for every window but a batch's last) the carried state, one gradient-free
guide trace and recurrence over the window. Each case times whole batches (all their updates) and
reports the median milliseconds per update; the cases run interleaved after warm-up.

Two sweeps, side by side:

- **window**: pieces of ``--length`` steps, ``N`` in ``--windows`` (``0`` = the whole piece, today's
  training): ms per update grows with ``N``;
- **length**: a fixed window ``--window``, pieces of ``T`` in ``--lengths`` steps, next to whole-piece
  training of the same pieces: flat with the window, linear in ``T`` without.

    python benchmarks/window_cost.py --json benchmarks/results/window_cost_cpu.json
    python benchmarks/window_cost.py --fivo --particles 4 ...   # the length sweep trained by FIVO too

The model is a music-sized VRNN (88 binary keys, Bernoulli emission) of ``--h-dim``; the data random
piano rolls (the cost does not depend on the values).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, interleaved, median, setup_device, write_records  # noqa: E402

from pyro_vrnn import VRNN  # noqa: E402
from pyro_vrnn.train.trainer import Trainer  # noqa: E402


def make_case(length: int, window: int, args, device, elbo: str = "trace"):
    """``(run, updates)``: ``run()`` takes one batch's updates; ``updates`` is how many it takes."""
    pyro.clear_param_store()
    torch.manual_seed(args.seed)
    model = VRNN(88, args.z_dim, args.h_dim, "bernoulli", feature_dims=(args.h_dim,),
                 hidden_dims=(args.h_dim,)).to(device)
    x = (torch.rand(args.batch, length, 88, device=device) < 0.1).float()
    mask = torch.ones(args.batch, length, dtype=torch.bool, device=device)
    trainer = Trainer(model, lr=1e-4, train_window=window, elbo=elbo,
                      num_particles=args.particles if elbo != "trace" else 1)
    updates = 1 if not window or window >= length else -(-length // window)

    def run():
        for loss, _, _ in trainer.window_steps(x, mask):
            assert loss is not None

    return run, updates


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), default_repeats=5)
    parser.add_argument("--length", type=int, default=400, help="piece length of the window sweep")
    parser.add_argument("--windows", type=int, nargs="+", default=[25, 50, 100, 200, 0],
                        help="window lengths of the window sweep (0 = the whole piece)")
    parser.add_argument("--window", type=int, default=50, help="the fixed window of the length sweep")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 200, 400, 800],
                        help="piece lengths of the length sweep")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--h-dim", type=int, default=64)
    parser.add_argument("--z-dim", type=int, default=16)
    parser.add_argument("--fivo", action="store_true",
                        help="also the length sweep trained by FIVO with --particles K (the particles carried)")
    parser.add_argument("--particles", type=int, default=4)
    args = parser.parse_args(argv)
    device = setup_device(args)

    wanted = [("window", "trace", args.length, window) for window in args.windows]
    for elbo in ("trace", "fivo") if args.fivo else ("trace",):
        wanted += [("length", elbo, length, window) for length in args.lengths for window in (args.window, 0)]
    cases = {}  # (elbo, length, window) -> (run, updates): a case both sweeps want is built and timed once
    for _, elbo, length, window in wanted:
        if (elbo, length, window) not in cases:
            cases[(elbo, length, window)] = make_case(length, window, args, device, elbo)
    names = {key: f"{key[0]} T={key[1]} N={key[2] or 'whole'}" for key in cases}
    times = interleaved({names[key]: run for key, (run, _) in cases.items()}, device, args.repeats, args.warmup)

    records = []
    for sweep, elbo, length, window in wanted:
        _, updates = cases[(elbo, length, window)]
        batch_ms = median(times[names[(elbo, length, window)]])
        records.append({"sweep": sweep, "elbo": elbo, "particles": args.particles if elbo != "trace" else 1,
                        "length": length, "window": window or None, "updates_per_batch": updates,
                        "batch": args.batch, "h_dim": args.h_dim, "z_dim": args.z_dim, "ms_per_batch": batch_ms,
                        "ms_per_update": batch_ms / updates, "repeats": args.repeats})
    print(f"{'sweep':<7} {'elbo':<6} {'T':>5} {'window':>7} {'updates':>8} {'ms/update':>10} {'ms/batch':>10}")
    for r in records:
        print(f"{r['sweep']:<7} {r['elbo']:<6} {r['length']:>5} {str(r['window'] or 'whole'):>7} "
              f"{r['updates_per_batch']:>8} {r['ms_per_update']:>10.1f} {r['ms_per_batch']:>10.1f}")
    write_records(args.json, records, "window_cost.py", argv, device)
    return records


if __name__ == "__main__":
    main()
