"""``pyro-vrnn score``: per-step scores ``log p(x_t | x_{<t})`` of every sequence, as a CSV."""

from __future__ import annotations

from ..report.scoring import score_run, write_scores_csv
from ..train.outputs import check_writable, is_scores_file
from . import common

DESCRIPTION = """\
Score every step of every sequence: log p(x_t | x_{<t}), how surprising the new observation is given
the past under a run's best-on-validation checkpoint (--checkpoint last: the latest). It is the
quantity an anomaly detector thresholds: flag the steps whose log_prob falls below a threshold (e.g.
a low quantile of the scores of data known to be normal).

For a latent model log_prob is an estimate: the SMC filter's log of the step's mean incremental
weight (K particles from the guide, systematic resampling when ESS < K/2); its sum over a sequence is
the SMC estimate of log p(x) (evaluate --estimator smc). Exact for an RNN. The ess column is the
step's effective sample size: near 1, the estimate is loose (raise --particles).

--data SPEC: every sequence of SPEC (all splits: nothing is held out), normalized as the run's own
data were; without --data, the run's test split. Writes --out as CSV: comment lines saying what the
numbers are, then sequence,step,log_prob,ess, one row per real step (step 0-based). Never writes
over a file it did not create.

examples:
  pyro-vrnn score runs/sensors --data series:sensors.csv --data-option id_column=unit --out scores.csv
  pyro-vrnn score runs/vrnn-gmm --particles 200 --out runs/vrnn-gmm/test-scores.csv
"""


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn score`` to ``subparsers``."""
    p = subparsers.add_parser("score", help="per-step scores log p(x_t | x_{<t}) of every sequence (anomaly "
                              "scores), as CSV", description=DESCRIPTION, formatter_class=common.Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    common.add_sequence_data_args(p)
    p.add_argument("--out", required=True, metavar="FILE", help="the CSV to write")
    p.add_argument("--particles", type=common.positive_int, default=100, metavar="K",
                   help="SMC particles per sequence (ignored for an RNN: exact) [default: 100]")
    p.add_argument("--batch-size", type=common.positive_int, default=8, help="sequences filtered together "
                   "(bounds memory; does not change the numbers) [default: 8]")
    common.add_checkpoint_arg(p)
    common.add_runtime_args(p, seed_help="seed of the particles (sequence i: SEED * 1000003 + i) [default: 0]")
    p.set_defaults(func=run)


def run(args) -> int:
    device = common.setup_runtime(args)
    seed = args.seed if args.seed is not None else 0
    check_writable(args.out, is_scores_file, "a scores file of pyro-vrnn score",
                   "give --out a new path (or one that holds earlier scores)")
    result = score_run(args.run_dir, args.data, common.data_options(args), num_particles=args.particles,
                       batch_size=args.batch_size, seed=seed, device=device, checkpoint=args.checkpoint)
    path = write_scores_csv(result, args.out)
    steps = sum(len(values) for values in result["log_prob"])
    total = sum(sum(values) for values in result["log_prob"])
    if not args.quiet:
        print(f"{result['model']} at step {result['step']} on {result['source']}: {len(result['names'])} sequences, "
              f"{steps} steps, mean log_prob {total / steps:.4f} per step ({result['label']})")
        print(f"written {path}")
    return 0
