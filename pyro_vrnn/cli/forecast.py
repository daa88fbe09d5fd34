"""``pyro-vrnn forecast``: posterior-predictive continuations of every sequence, as a CSV."""

from __future__ import annotations

from ..models.predictive import MAX_TEMPERATURE
from ..report.forecasting import forecast_run, write_forecast_csv
from ..train.outputs import check_writable, is_forecast_file
from . import common

DESCRIPTION = """\
Forecast every sequence --horizon H steps past its last step: --num-samples S draws from the
posterior predictive of a run's best-on-validation checkpoint (--checkpoint last: the latest) -- the
sequence's latents from the guide, the future from the model -- summarized per future step and
feature by the mean and the 5%, 50% and 95% quantiles of the draws, in the data's own units (the
run's normalization undone).

--data SPEC: every sequence of SPEC (all splits: nothing is held out), normalized as the run's own
data were; without --data, the run's test split. Writes --out as CSV: comment lines, then
sequence,step,feature,mean,q05,q50,q95 (step: 0-based, continuing the sequence's own steps).
Never writes over a file it did not create.

examples:
  pyro-vrnn forecast runs/sensors --data series:sensors.csv --horizon 24 --num-samples 200 --out forecast.csv
"""


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn forecast`` to ``subparsers``."""
    p = subparsers.add_parser("forecast", help="posterior-predictive forecasts of every sequence (mean and "
                              "5/50/95%% quantiles), as CSV", description=DESCRIPTION, formatter_class=common.Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    common.add_sequence_data_args(p)
    p.add_argument("--horizon", type=common.positive_int, required=True, metavar="H", help="steps to forecast")
    p.add_argument("--num-samples", type=common.positive_int, default=100, metavar="S",
                   help="draws per sequence behind the mean and quantiles [default: 100]")
    p.add_argument("--out", required=True, metavar="FILE", help="the CSV to write")
    p.add_argument("--batch-size", type=common.positive_int, default=8,
                   help="sequences continued together (S draws each; bounds memory) [default: 8]")
    p.add_argument("--temperature", type=common.temperature, default=1.0, metavar="TAU",
                   help=f"scale of the sampling noise (1: the model's own; at most {MAX_TEMPERATURE:g}) [default: 1]")
    common.add_checkpoint_arg(p)
    common.add_runtime_args(p, seed_help="seed of the draws [default: 0]")
    p.set_defaults(func=run)


def run(args) -> int:
    device = common.setup_runtime(args)
    seed = args.seed if args.seed is not None else 0
    check_writable(args.out, is_forecast_file, "a forecast file of pyro-vrnn forecast",
                   "give --out a new path (or one that holds an earlier forecast)")
    result = forecast_run(args.run_dir, args.data, common.data_options(args), horizon=args.horizon,
                          num_samples=args.num_samples, batch_size=args.batch_size, seed=seed, device=device,
                          checkpoint=args.checkpoint, temperature=args.temperature)
    path = write_forecast_csv(result, args.out)
    if not args.quiet:
        print(f"{result['model']} at step {result['step']} on {result['source']}: {len(result['names'])} sequences "
              f"forecast {args.horizon} steps ahead from {args.num_samples} draws each")
        print(f"written {path}")
    return 0
