"""``pyro-vrnn evaluate``: ELBO, importance-sampled and SMC log-likelihood of a run on a split."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..report.evaluation import evaluate_run, format_summary
from ..train.outputs import check_writable, is_evaluation_result, write_text_atomic
from ..train.precision import autocast
from . import common

DESCRIPTION = """\
Evaluate a run's best-on-validation checkpoint (checkpoint.best.pt; --checkpoint last: the latest)
on a split of its own dataset: the ELBO (">=", a lower bound) and the importance-sampled
log-likelihood ("≈", K particles from the guide), per sequence and per time step, with standard
errors over sequences. For an RNN both equal the exact log-likelihood.
Writes JSON (summary + per-sequence lists) and prints a short table. Same --seed and checkpoint,
same numbers.

example:
  pyro-vrnn evaluate runs/vrnn-gmm --split test --particles 500 --chunk-size 50 --json vrnn-test.json

""" + common.DISTRIBUTED_NOTE


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn evaluate`` to ``subparsers``."""
    p = subparsers.add_parser("evaluate", help="ELBO and importance-sampled log-likelihood of a run on a split",
                       description=DESCRIPTION, formatter_class=common.Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--particles", type=common.positive_int, default=100, metavar="K",
                   help="importance samples per sequence (the DMM paper used 2000)")
    p.add_argument("--chunk-size", type=common.positive_int, default=None, metavar="C",
                   help="particles run together (bounds memory; does not change the result) [default: auto]")
    p.add_argument("--batch-size", type=common.positive_int, default=8, help="sequences evaluated together")
    p.add_argument("--max-sequences", type=common.positive_int, default=None, metavar="N",
                   help="evaluate only N sequences, evenly spaced through the split (a quick look)")
    p.add_argument("--json", metavar="FILE", help="where to write the results [default: RUN_DIR/eval_SPLIT.json; "
                   "with --data-option KEY=VALUE RUN_DIR/eval_SPLIT.KEY-VALUE.json, with --max-sequences "
                   "...partial.json, each beside the full one]")
    p.add_argument("--data-option", type=common.data_option, action="append", default=None, metavar="KEY=VALUE",
                   help="replace one of the run's loader options for this evaluation, repeatable, e.g. "
                        "test_chunking=chunks (score a speech run on 0.5 s test chunks instead of whole "
                        "utterances); options that change the features or their normalization are refused")
    common.add_checkpoint_arg(p)
    common.add_estimator_arg(p)
    common.add_max_memory_arg(p)
    common.add_runtime_args(p, seed_help="seed of the importance samples [default: 0]")
    common.add_precision_arg(p)
    p.set_defaults(func=run)


def default_json_name(split: str, max_sequences: int | None, data_options: dict | None = None) -> str:
    """``eval_SPLIT.json`` for the whole split as the run loads it; ``eval_SPLIT.KEY-VALUE.json`` when
    ``--data-option`` cut it otherwise (e.g. ``eval_test.test_chunking-chunks.json``); ``.partial`` before
    ``.json`` for a quick look at ``--max-sequences N`` of it. So neither another cut nor a quick look ever
    replaces the full evaluation beside it (which ``benchmarks/results_table.py`` reads)."""
    name = f"eval_{split}"
    for key, value in sorted((data_options or {}).items()):
        name += "." + re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{key}-{value}")
    return name + (".json" if max_sequences is None else ".partial.json")


def run(args) -> int:
    parallel, device = common.setup_processes(args)
    seed = args.seed if args.seed is not None else 0
    path = Path(args.json) if args.json else Path(args.run_dir) / default_json_name(
        args.split, args.max_sequences, dict(args.data_option or ()))
    if Path(args.run_dir).is_dir():  # refuse a bad --json before the work (a missing run says so itself)
        check_writable(path, is_evaluation_result, "an evaluation result of pyro-vrnn evaluate",
                       "give --json a new path (or one that holds an earlier evaluation)")
    with autocast(args.precision or "fp32", device):
        result = evaluate_run(args.run_dir, args.split, num_particles=args.particles, chunk_size=args.chunk_size,
                              batch_size=args.batch_size, seed=seed, device=device,
                              max_sequences=args.max_sequences, checkpoint=args.checkpoint, parallel=parallel,
                              estimators=args.estimator, data_options=common.data_options(args),
                              max_memory=args.max_memory,
                              progress=not args.quiet and (parallel is None or parallel.is_main))
    result["precision"] = args.precision or "fp32"
    if parallel is not None and not parallel.is_main:
        return 0
    check_writable(path, is_evaluation_result, "an evaluation result of pyro-vrnn evaluate",
                   "give --json a new path (or one that holds an earlier evaluation)")
    write_text_atomic(path, json.dumps(result, indent=2))
    print(f"{result['model']} at step {result['step']} ({Path(result['checkpoint']).name}) on {result['data']} "
          f"({args.split})")
    print(format_summary(result))
    print(f"written {path}")
    return 0
