"""``pyro-vrnn``: train, evaluate, sample and compare recurrent latent-variable models of sequences.

The workflow of Chung et al. (2015) from a shell::

    pyro-vrnn train    --model vrnn-gmm --data speech-synthetic --steps 500 --out runs/vrnn
    pyro-vrnn evaluate runs/vrnn --split test --particles 100 --json runs/vrnn/test.json
    pyro-vrnn sample   runs/vrnn --num 4 --out runs/vrnn/samples
    pyro-vrnn compare  --data speech-synthetic --models rnn-normal,rnn-gmm,storn,vrnn-normal,vrnn-gmm \\
                       --steps 300 --out runs/table1

Each subcommand is a thin layer over a library function (:func:`pyro_vrnn.runs.train_run`,
:func:`pyro_vrnn.evaluation.evaluate_run`, :func:`pyro_vrnn.sampling.sample_run`,
:func:`pyro_vrnn.compare.compare`). Errors a user can fix (unknown model, missing file, bad size,
unreadable checkpoint, a checkpoint of another run, an output path that holds a file the command
did not write) end the program with one line on stderr, ``pyro-vrnn: error: ...``, and exit status
2; so does any unexpected error (``PYRO_VRNN_TRACEBACK=1`` shows its traceback). Running out of
memory in training or evaluation exits 1 naming the flags that bound memory; running out while
loading data is a data error. No command writes over a file it did not create
(:mod:`pyro_vrnn.outputs`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from pathlib import Path

from .runs import DEFAULT_TRAINING

PROG = "pyro-vrnn"
#: set it (to anything) to see the traceback of an unexpected error instead of its one-line summary
TRACEBACK_ENV_VAR = "PYRO_VRNN_TRACEBACK"

MAIN_DESCRIPTION = """\
Recurrent latent-variable models of sequences as Pyro programs: the VRNN (Chung et al. 2015),
STORN (Bayer & Osendorfer 2014) and RNN baselines, trained by stochastic variational inference
and judged by importance-sampled log-likelihood.

models (--model):  rnn-normal, rnn-gmm, storn, vrnn-normal, vrnn-gmm
                   (--prior/--guide/--emission build any other combination)
data (--data):     offline, generated here: speech-synthetic, handwriting-synthetic, music-synthetic
                   files: music:PICKLE  speech:FOLDER  handwriting:NPZ_OR_IAM_FOLDER

start here:
  pyro-vrnn compare --data speech-synthetic --out table1     # Table 1 of the VRNN paper, offline
  pyro-vrnn train --help                                     # one model, all the knobs
"""

TRAIN_DESCRIPTION = """\
Train one model by SVI and write a run folder: config.json (everything to rebuild the model),
checkpoint.pt (+ checkpoint.prev.pt, the last good copy) every --checkpoint-every steps and at the
end, and history.json (loss per step, validation loss). Ctrl-C writes a checkpoint first.
--resume continues a run exactly where it stopped (model, optimizer, RNG, batch order).

examples:
  pyro-vrnn train --model vrnn-gmm --data speech-synthetic --steps 500 --out runs/vrnn-gmm
  pyro-vrnn train --model vrnn-gmm --data speech-synthetic --steps 1000 --out runs/vrnn-gmm --resume
  pyro-vrnn train --model storn --data music:jsb_chorales.pickle --epochs 20 --out runs/storn-jsb
  pyro-vrnn train --model vrnn-normal --guide smoothing --emission handwriting \\
                  --data handwriting:omniglot.npz --steps 2000 --out runs/hw
  paper sizes:  --h-dim 2000 --z-dim 200 --feature-dims 600,600,600,600 --hidden-dims 600,600,600,600
"""

EVALUATE_DESCRIPTION = """\
Evaluate a run's latest checkpoint on a split of its own dataset: the ELBO (">=", a lower bound)
and the importance-sampled log-likelihood ("≈", K particles from the guide), per sequence and per
time step, with standard errors over sequences. For an RNN both equal the exact log-likelihood.
Writes JSON (summary + per-sequence lists) and prints a short table. Same --seed and checkpoint,
same numbers.

example:
  pyro-vrnn evaluate runs/vrnn-gmm --split test --particles 500 --chunk-size 50 --json vrnn-test.json
"""

SAMPLE_DESCRIPTION = """\
Generate sequences x ~ p(x) from a run's latest checkpoint, un-normalized to data units, and write
samples.png (generated beside real test sequences: waveforms, pen strokes with pen-up gaps, or
piano rolls), samples.pt, and for speech sample_I.wav / real_I.wav (16-bit PCM).

example:
  pyro-vrnn sample runs/vrnn-gmm --num 4 --length 80 --out runs/vrnn-gmm/samples
"""

COMPARE_DESCRIPTION = """\
The VRNN paper's Table 1 for one dataset: train each model with the same steps, sizes and seed,
evaluate each on the test split, and write OUT/table.md and OUT/table.csv (one row a model; ELBO
">=" and IS estimate "≈" for latent models, "=" exact log-likelihood for RNNs), OUT/results.json,
OUT/samples.png (samples side by side, one column per model plus the data), OUT/training.png, and
one run folder per model (usable with evaluate and sample).

On binary music data every seed model uses a Bernoulli emission, so rnn-gmm and vrnn-gmm would
repeat rnn-normal and vrnn-normal: they are skipped (and say so).

examples:
  pyro-vrnn compare --data speech-synthetic --out table1            # offline, a few minutes on 2 CPUs
  pyro-vrnn compare --data music:/data/music/jsb_chorales.pickle --models rnn-normal,storn,vrnn-normal \\
                    --steps 3000 --particles 500 --out jsb
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``pyro-vrnn: error: ...`` (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' layout; shows a default only where one is set and not already told."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "[default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} [default: %(default)s]"


# ---------------------------------------------------------------------------- argument types
def _checked(cast, accept, expected: str):
    """An argparse type: ``cast(text)``, refused with one clear line unless ``accept(value)``."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_nonnegative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _checked(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
_unit_interval = _checked(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_seed = _checked(int, lambda v: 0 <= v < 2 ** 32, "an integer from 0 to 2**32 - 1")
MAX_THREADS = 1024
_thread_count = _checked(int, lambda v: 1 <= v <= MAX_THREADS, f"a whole number from 1 to {MAX_THREADS}")


def _dims(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def _data_option(text):
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import ast

    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value  # a plain string
    return key.strip().replace("-", "_"), parsed


# ---------------------------------------------------------------------------- argument groups
def _add_model_args(parser, *, with_model: bool = True, num_components: int = 20):
    from .zoo import EMISSIONS, GUIDES, PRIORS, SEED_MODELS, TRANSITIONS

    group = parser.add_argument_group("model (defaults are CPU-sized; sizes are fixed once a run starts)")
    if with_model:
        group.add_argument("--model", choices=list(SEED_MODELS), metavar="NAME",
                           help=f"one of {', '.join(SEED_MODELS)} (required unless --resume)")
    group.add_argument("--prior", choices=PRIORS, help="override p(z_t|.): standard = N(0, I) as in STORN, "
                       "conditional = N(mu(h_{t-1}), sigma(h_{t-1})^2) as in the VRNN")
    group.add_argument("--guide", choices=GUIDES, help="override q(z_t|.): filtering q(z_t|x_t,h_{t-1}) (VRNN), "
                       "smoothing (sees the future through a backward RNN), storn q(z_t|x_{<=t})")
    group.add_argument("--emission", choices=EMISSIONS, help="override p(x_t|.): normal, gmm (mixture of "
                       "diagonal Gaussians), bernoulli (binary, music), handwriting (bivariate mixture + pen bit); "
                       "default: the model's own, bernoulli on music")
    group.add_argument("--transition", choices=TRANSITIONS, default=None, help="recurrence h_t = f(...) "
                       "[default: lstm]")
    group.add_argument("--z-dim", type=_positive_int, help="latent size per step [default: 16]")
    group.add_argument("--h-dim", type=_positive_int, help="recurrent state size [default: 64; paper 2000]")
    group.add_argument("--feature-dims", type=_dims, metavar="D1,D2,...",
                       help="hidden widths of phi_x and phi_z [default: 64; paper 600,600,600,600]")
    group.add_argument("--hidden-dims", type=_dims, metavar="D1,D2,...",
                       help="hidden widths of the prior, guide and emission nets [default: 64]")
    group.add_argument("--num-components", type=_positive_int,
                       help=f"mixture components of the gmm/handwriting emission [default: {num_components}"
                       + (", as the paper]" if num_components == 20 else "; the paper used 20]"))


def _add_data_args(parser, *, required: bool):
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="SPEC", required=required,
                       help="speech-synthetic | handwriting-synthetic | music-synthetic (offline, generated) or "
                            "KIND:PATH with KIND music (a .pickle of piano rolls), speech (a folder of audio; "
                            "train*/test* sub-folders become the splits), handwriting (stroke-3 .npz or an "
                            "IAM-OnDB folder); relative paths are also looked up under $PYRO_VRNN_DATA"
                            + ("" if required else " (required unless --resume)"))
    group.add_argument("--data-option", type=_data_option, action="append", default=None, metavar="KEY=VALUE",
                       help="loader option, repeatable, e.g. max_files=50, chunk_frames=40, frame_size=200, "
                            "test_chunking=chunks (speech); num_train=100 (synthetic sets)")


def _add_training_args(parser, defaults: dict):
    group = parser.add_argument_group("training")
    budget = group.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=_nonnegative_int, help="SVI steps (minibatches) in total; with --resume "
                        f"the run continues up to this step [default: {defaults['steps']}]")
    budget.add_argument("--epochs", type=_positive_int, help="instead of --steps: passes over the training split")
    group.add_argument("--batch-size", type=_positive_int, help=f"sequences per minibatch [default: {defaults['batch_size']}]")
    group.add_argument("--lr", type=_positive_float, help=f"Adam learning rate [default: {defaults['lr']:g}]")
    group.add_argument("--clip-norm", type=_positive_float, help="per-parameter gradient-norm clip [default: 10]")
    group.add_argument("--elbo", choices=("trace", "meanfield", "iwae"), help="trace (Monte-Carlo KL), "
                       "meanfield (analytic KL where possible) or iwae [default: trace]")
    group.add_argument("--kl-anneal-steps", type=_nonnegative_int, metavar="N",
                       help="KL annealing: scale the latent terms from --kl-anneal-start up to 1 over N steps "
                            "[default: 0 = off]")
    group.add_argument("--kl-anneal-start", type=_unit_interval, metavar="BETA",
                       help="initial KL weight, in (0, 1] [default: 0.1]")
    group.add_argument("--bucket-by-length", action="store_true", default=None,
                       help="batch sequences of similar length together (less padding)")
    group.add_argument("--valid-every", type=_nonnegative_int, metavar="N",
                       help="validation loss (negative ELBO per step) every N steps; 0 = never "
                            f"[default: {defaults['valid_every']}]")
    group.add_argument("--checkpoint-every", type=_nonnegative_int, metavar="N",
                       help="write a checkpoint every N steps (and always at the end; 0 = only at the end) "
                       f"[default: {defaults['checkpoint_every']}]")


def _add_runtime_args(parser, *, seed_help="seed of parameters, batches and latent noise [default: 0]"):
    group = parser.add_argument_group("runtime")
    group.add_argument("--seed", type=_seed, default=None, help=seed_help)
    group.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]")
    group.add_argument("--threads", type=_thread_count, help="torch CPU threads [default: 1 on CPU: nets of the "
                       "default sizes gain nothing from more, and on a busy machine extra threads slow torch down "
                       "many times; raise it for paper-sized models]")
    group.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    group.add_argument("--validate", action="store_true",
                       help="turn Pyro's distribution argument checks on (slower; off by default)")


# ---------------------------------------------------------------------------- defaults
TRAIN_DEFAULTS = {**DEFAULT_TRAINING, "valid_every": 100}
MODEL_DEFAULTS = {"transition": "lstm", "z_dim": 16, "h_dim": 64, "feature_dims": [64], "hidden_dims": [64],
                  "num_components": 20}
COMPARE_DEFAULTS = {"steps": 400, "batch_size": 32, "lr": 3e-3, "valid_every": 0, "checkpoint_every": 0,
                    "particles": 50, "num_components": 5}
TRAINING_FLAGS = {"steps": "steps", "batch_size": "batch_size", "lr": "lr", "clip_norm": "clip_norm",
                  "elbo": "elbo", "annealing_steps": "kl_anneal_steps", "annealing_start": "kl_anneal_start",
                  "valid_every": "valid_every", "checkpoint_every": "checkpoint_every",
                  "bucket_by_length": "bucket_by_length"}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=MAIN_DESCRIPTION, formatter_class=_Formatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train one model into a run folder", description=TRAIN_DESCRIPTION,
                       formatter_class=_Formatter)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write (or resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR from its latest checkpoint (exactly; flags not given are "
                        "taken from the run, and flags that contradict it are an error)")
    p.add_argument("--overwrite", action="store_true", help="start again even if RUN_DIR holds a run")
    _add_model_args(p)
    _add_data_args(p, required=False)
    _add_training_args(p, TRAIN_DEFAULTS)
    _add_runtime_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="ELBO and importance-sampled log-likelihood of a run on a split",
                       description=EVALUATE_DESCRIPTION, formatter_class=_Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--particles", type=_positive_int, default=100, metavar="K",
                   help="importance samples per sequence (the DMM paper used 2000)")
    p.add_argument("--chunk-size", type=_positive_int, default=None, metavar="C",
                   help="particles run together (bounds memory; does not change the result) [default: auto]")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="sequences evaluated together")
    p.add_argument("--max-sequences", type=_positive_int, default=None, metavar="N",
                   help="evaluate only N sequences, evenly spaced through the split (a quick look)")
    p.add_argument("--json", metavar="FILE", help="where to write the results [default: RUN_DIR/eval_SPLIT.json]")
    _add_runtime_args(p, seed_help="seed of the importance samples [default: 0]")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="generate sequences from a run: PNG figure (+ WAV for speech)",
                       description=SAMPLE_DESCRIPTION, formatter_class=_Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--num", type=_positive_int, default=4, metavar="N", help="sequences to generate")
    p.add_argument("--length", type=_positive_int, default=None, metavar="T",
                   help="time steps per sequence [default: median training length]")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for samples.png, samples.pt, *.wav")
    p.add_argument("--no-real", action="store_true", help="do not load the data to show real sequences beside")
    _add_runtime_args(p, seed_help="seed of the samples [default: 0]")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("compare", help="train and evaluate several models with one budget: the paper's Table 1",
                       description=COMPARE_DESCRIPTION, formatter_class=_Formatter)
    p.add_argument("--models", default="rnn-normal,rnn-gmm,storn,vrnn-normal,vrnn-gmm", metavar="A,B,...",
                   help="comma-separated model names")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (one run folder per model inside)")
    p.add_argument("--resume", action="store_true", help="continue (or reuse, if already at --steps) the runs "
                   "in DIR; without it, runs already in DIR are trained again from scratch")
    p.add_argument("--particles", type=_positive_int, default=None, metavar="K",
                   help="importance samples per test sequence [default: 50]")
    p.add_argument("--chunk-size", type=_positive_int, default=None, metavar="C", help="particles run together")
    p.add_argument("--eval-batch-size", type=_positive_int, default=8, metavar="B")
    p.add_argument("--max-eval-sequences", type=_positive_int, default=None, metavar="N",
                   help="evaluate on N test sequences only, evenly spaced through the split")
    p.add_argument("--num-samples", type=_positive_int, default=3, metavar="N", help="samples per model in the figure")
    p.add_argument("--sample-length", type=_positive_int, default=None, metavar="T")
    p.add_argument("--unit", choices=("sequence", "step"), default=None,
                   help="table unit: nats per sequence (VRNN paper) or per time step (music papers) "
                        "[default: step for music, else sequence]")
    _add_model_args(p, with_model=False, num_components=COMPARE_DEFAULTS["num_components"])
    _add_data_args(p, required=True)
    _add_training_args(p, {**TRAIN_DEFAULTS, **COMPARE_DEFAULTS})
    _add_runtime_args(p)
    p.set_defaults(func=cmd_compare)
    return parser


def _setup_runtime(args):
    import pyro
    import torch

    from .training import resolve_device

    device = resolve_device(args.device)
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    pyro.enable_validation(bool(args.validate))
    return device


def _log(args):
    return (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))


def _data_options(args, saved=None):
    if args.data_option is None:
        return dict(saved or {})
    return dict(args.data_option)


def _spec_kwargs(args, saved=None, defaults=MODEL_DEFAULTS):
    """Model sizes and parts from the flags, else the saved spec, else the defaults."""
    out = {}
    for key in ("prior", "guide", "emission"):
        value = getattr(args, key)
        out[key] = value if value is not None else (saved or {}).get(key)
    for key, default in defaults.items():
        value = getattr(args, key)
        out[key] = value if value is not None else (saved or {}).get(key) or default
    return out


def _training_settings(args, dataset_size=None, saved=None, defaults=None):
    from .runs import DEFAULT_TRAINING

    base = {**DEFAULT_TRAINING, **(defaults or {}), **(saved or {})}
    settings = {}
    for key, flag in TRAINING_FLAGS.items():
        value = getattr(args, flag)
        settings[key] = value if value is not None else base[key]
    if getattr(args, "epochs", None):
        settings["steps"] = args.epochs * math.ceil(dataset_size / settings["batch_size"])
    if args.steps is None and not getattr(args, "epochs", None) and saved is not None:
        settings["steps"] = saved["steps"]
    return settings


# ---------------------------------------------------------------------------- subcommands
def cmd_train(args) -> int:
    from .checkpoint import CHECKPOINT, PREVIOUS, CheckpointError, load_latest
    from .runs import load_data, make_config, train_run
    from .zoo import model_spec

    device = _setup_runtime(args)
    log = _log(args)
    run_dir = Path(args.out)
    saved = None
    if args.resume and ((run_dir / CHECKPOINT).exists() or (run_dir / PREVIOUS).exists()):
        saved = load_latest(run_dir, map_location="cpu")[0]["config"]
    elif args.resume:
        log(f"{run_dir}: no checkpoint yet; starting a new run")
    elif not args.overwrite and ((run_dir / CHECKPOINT).exists() or (run_dir / PREVIOUS).exists()):
        raise CheckpointError(f"{run_dir} already holds a run; pass --resume to continue it or --overwrite "
                              "to start again")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other")
    name = args.model or (saved and saved["model"]["name"])
    data = args.data or (saved and saved["data"])
    if not name:
        raise ValueError("--model is required (unless --resume finds a run)")
    if not data:
        raise ValueError("--data is required (unless --resume finds a run)")
    if saved is not None and name != saved["model"]["name"]:
        raise CheckpointError(f"{run_dir} holds a checkpoint of model {saved['model']['name']!r}, not {name!r}")
    options = _data_options(args, saved and saved.get("data_options"))
    dataset = load_data({"data": data, "data_options": options})
    spec = model_spec(name, dataset.x_dim, kind=dataset.kind, **_spec_kwargs(args, saved and saved["model"]))
    training = _training_settings(args, len(dataset.train), saved and saved["training"])
    seed = args.seed if args.seed is not None else (saved["seed"] if saved else 0)
    if saved is None and args.valid_every is None:
        training["valid_every"] = TRAIN_DEFAULTS["valid_every"]
    config = make_config(spec, data, data_options=options, seed=seed, **training)
    log(dataset.describe())
    result = train_run(config, run_dir, resume=args.resume, overwrite=args.overwrite, device=device,
                       dataset=dataset, progress=not args.quiet, log=log)
    log(f"{name}: steps {result['start_step']} -> {result['step']} in {result['seconds']:.1f} s; "
        f"loss (negative ELBO per step, last 50) {result['final_loss']:.4f}; run folder {run_dir}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate_run, format_summary
    from .outputs import check_writable, is_evaluation_result, write_text_atomic

    device = _setup_runtime(args)
    seed = args.seed if args.seed is not None else 0
    path = Path(args.json) if args.json else Path(args.run_dir) / f"eval_{args.split}.json"
    if Path(args.run_dir).is_dir():  # refuse a bad --json before the work (a missing run says so itself)
        check_writable(path, is_evaluation_result, "an evaluation result of pyro-vrnn evaluate",
                       "give --json a new path (or one that holds an earlier evaluation)")
    result = evaluate_run(args.run_dir, args.split, num_particles=args.particles, chunk_size=args.chunk_size,
                          batch_size=args.batch_size, seed=seed, device=device, max_sequences=args.max_sequences)
    check_writable(path, is_evaluation_result, "an evaluation result of pyro-vrnn evaluate",
                   "give --json a new path (or one that holds an earlier evaluation)")
    write_text_atomic(path, json.dumps(result, indent=2))
    print(f"{result['model']} at step {result['step']} on {result['data']} ({args.split})")
    print(format_summary(result))
    print(f"written {path}")
    return 0


def cmd_sample(args) -> int:
    from .sampling import sample_run

    device = _setup_runtime(args)
    written = sample_run(args.run_dir, args.out, num=args.num, length=args.length,
                         seed=args.seed if args.seed is not None else 0, device=device, with_real=not args.no_real)
    for key, value in written.items():
        for path in (value if isinstance(value, list) else [value]):
            print(f"written {path}")
    return 0


def cmd_compare(args) -> int:
    from .compare import compare, markdown_table, meaning
    from .zoo import SEED_MODELS

    device = _setup_runtime(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SEED_MODELS]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; expected names from "
                         f"{', '.join(SEED_MODELS)}")
    sizes = _spec_kwargs(args, defaults={**MODEL_DEFAULTS, "num_components": COMPARE_DEFAULTS["num_components"]})
    training = _training_settings(args, defaults={k: v for k, v in COMPARE_DEFAULTS.items()
                                                  if k in TRAINING_FLAGS})
    if args.epochs:
        from .runs import load_data

        size = len(load_data({"data": args.data, "data_options": _data_options(args)}).train)
        training["steps"] = args.epochs * math.ceil(size / training["batch_size"])
    steps = training.pop("steps")
    from .outputs import check_comparison_folder

    check_comparison_folder(args.out, models)
    rows = compare(args.data, models, steps=steps, out=args.out, seed=args.seed if args.seed is not None else 0,
                   data_options=_data_options(args), training=training,
                   particles=args.particles or COMPARE_DEFAULTS["particles"], chunk_size=args.chunk_size,
                   eval_batch_size=args.eval_batch_size, max_eval_sequences=args.max_eval_sequences,
                   num_samples=args.num_samples, sample_length=args.sample_length, unit=args.unit, device=device,
                   resume=args.resume, progress=not args.quiet, log=_log(args), **sizes)
    results = json.loads((Path(args.out) / "results.json").read_text())
    print(markdown_table(rows, results))
    print(results["meaning"])
    print(f"written {args.out}/table.md, table.csv, results.json, samples.png, training.png")
    return 0


# ---------------------------------------------------------------------------- entry point
@contextlib.contextmanager
def _one_line_warnings():
    """Show warnings as ``pyro-vrnn: warning: ...`` lines (no source echo), once each."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"{PROG}: warning: {text}", file=sys.stderr)

    warnings.showwarning = show
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = show
            yield
    finally:
        warnings.showwarning = original


def _fail(error, status=2) -> int:
    text = " ".join(str(error).split("\nTrace Shapes:")[0].split()) or type(error).__name__  # no Pyro shape dump
    print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)
    return status


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    from .checkpoint import CheckpointError
    from .data import DataError
    from .training import DivergenceError

    import pyro
    import torch
    from pyro.poutine.util import is_validation_enabled

    threads, validation = torch.get_num_threads(), is_validation_enabled()
    with _one_line_warnings():
        try:
            return int(args.func(args) or 0)
        except (DataError, CheckpointError, ValueError, OSError) as error:
            return _fail(error, 2)
        except DivergenceError as error:
            return _fail(f"{error} (the last good checkpoint is kept; try a lower --lr)", 1)
        except Exception as error:  # out of memory: say which knob to turn; anything else: one line
            from .resources import COMMAND_KNOBS, OutOfMemoryError, is_out_of_memory, out_of_memory_message

            if isinstance(error, OutOfMemoryError):
                return _fail(error, 1)
            if is_out_of_memory(error):
                return _fail(out_of_memory_message(error, args.command, COMMAND_KNOBS[args.command]), 1)
            if os.environ.get(TRACEBACK_ENV_VAR):
                raise
            first_line = (str(error).strip().splitlines() or [""])[0]
            return _fail(f"unexpected {type(error).__name__}: {first_line} (a bug in pyro-vrnn or an input it does "
                         f"not check yet; please report it. {TRACEBACK_ENV_VAR}=1 shows the traceback)", 2)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        finally:  # leave an in-process caller (a notebook, a test) as it was
            torch.set_num_threads(threads)
            pyro.enable_validation(validation)


if __name__ == "__main__":
    sys.exit(main())
