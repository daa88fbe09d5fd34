"""``pyro-vrnn compare``: train and evaluate several models with one budget (the paper's Table 1)."""

from __future__ import annotations

import json
from pathlib import Path

from ..data.prepared import sequence_lengths
from ..models.zoo import SEED_MODELS
from ..report.compare import compare, markdown_table
from ..train.runs import load_data
from . import common

DESCRIPTION = """\
The VRNN paper's Table 1 for one dataset: train each model with the same steps, sizes and seed,
evaluate each on the test split, and write OUT/table.md and OUT/table.csv (one row a model; ELBO
">=" and IS estimate "≈" for latent models, "=" exact log-likelihood for RNNs), OUT/results.json,
OUT/samples.png (samples side by side, one column per model plus the data), OUT/training.png, and
one run folder per model (usable with evaluate and sample).

On binary music data every seed model uses a Bernoulli emission, so rnn-gmm and vrnn-gmm would
repeat rnn-normal and vrnn-normal: they are skipped (and say so).
""" + common.DEFAULTS_NOTE + """

examples:
  pyro-vrnn compare --data speech-synthetic --out table1            # offline, a few minutes on 2 CPUs
  pyro-vrnn compare --data music:/data/music/jsb_chorales.pickle --models rnn-normal,storn,vrnn-normal \\
                    --steps 3000 --particles 500 --out jsb
"""


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn compare`` to ``subparsers``."""
    p = subparsers.add_parser("compare", help="train and evaluate several models with one budget: the paper's Table 1",
                       description=DESCRIPTION, formatter_class=common.Formatter)
    p.add_argument("--models", default="rnn-normal,rnn-gmm,storn,vrnn-i,vrnn-normal,vrnn-gmm", metavar="A,B,...",
                   help="comma-separated model names [default: the VRNN paper's Table 1 (RNN-Gauss, RNN-GMM, "
                   "VRNN-I-Gauss, VRNN-Gauss, VRNN-GMM) and STORN]")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (one run folder per model inside)")
    p.add_argument("--resume", action="store_true", help="continue (or reuse, if already at --steps) the runs "
                   "in DIR and write the table of the models asked")
    p.add_argument("--overwrite", action="store_true", help="train the runs in DIR again from scratch and replace "
                   "its table (without --resume or --overwrite, a DIR holding an earlier comparison is refused)")
    p.add_argument("--particles", type=common.positive_int, default=None, metavar="K",
                   help="importance samples per test sequence [default: 50]")
    p.add_argument("--chunk-size", type=common.positive_int, default=None, metavar="C", help="particles run together")
    p.add_argument("--eval-batch-size", type=common.positive_int, default=8, metavar="B")
    p.add_argument("--max-eval-sequences", type=common.positive_int, default=None, metavar="N",
                   help="evaluate on N test sequences only, evenly spaced through the split")
    common.add_estimator_arg(p)
    p.add_argument("--num-samples", type=common.positive_int, default=3, metavar="N", help="samples per model in the figure")
    p.add_argument("--sample-length", type=common.positive_int, default=None, metavar="T")
    p.add_argument("--unit", choices=("sequence", "step"), default=None,
                   help="table unit: nats per sequence (VRNN paper) or per time step (music papers) "
                        "[default: step for music, else sequence]")
    common.add_preset_arg(p)
    common.add_model_args(p, with_model=False, num_components=common.COMPARE_DEFAULTS["num_components"])
    common.add_data_args(p, required=True)
    common.add_training_args(p, {**common.TRAIN_DEFAULTS, **common.COMPARE_DEFAULTS})
    common.add_runtime_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    common.apply_preset(args, common.log(args))
    device = common.setup_runtime(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SEED_MODELS]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; expected names from "
                         f"{', '.join(SEED_MODELS)}")
    sizes = common.spec_kwargs(args, defaults={**common.MODEL_DEFAULTS, "num_components": common.COMPARE_DEFAULTS["num_components"]})
    dataset = load_data({"data": args.data, "data_options": common.data_options(args)})
    lengths = sequence_lengths(dataset.train) if args.epochs else None
    training = common.training_settings(args, lengths, defaults={k: v for k, v in common.COMPARE_DEFAULTS.items()
                                                                 if k in common.TRAINING_FLAGS})
    steps = training.pop("steps")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other")
    rows = compare(args.data, models, steps=steps, out=args.out, seed=args.seed if args.seed is not None else 0,
                   data_options=common.data_options(args), training=training,
                   particles=args.particles or common.COMPARE_DEFAULTS["particles"], chunk_size=args.chunk_size,
                   eval_batch_size=args.eval_batch_size, max_eval_sequences=args.max_eval_sequences,
                   num_samples=args.num_samples, sample_length=args.sample_length, unit=args.unit, device=device,
                   resume=args.resume, overwrite=args.overwrite, progress=not args.quiet, log=common.log(args),
                   estimators=args.estimator, dataset=dataset, **sizes)
    results = json.loads((Path(args.out) / "results.json").read_text())
    print(markdown_table(rows, results))
    print(results["meaning"])
    print(f"written {args.out}/table.md, table.csv, results.json, samples.png, training.png")
    return 0
