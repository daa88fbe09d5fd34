"""``pyro-vrnn``: train, evaluate, sample and compare recurrent latent-variable models of sequences.

The workflow of Chung et al. (2015) from a shell::

    pyro-vrnn train    --model vrnn-gmm --data speech-synthetic --steps 500 --out runs/vrnn
    pyro-vrnn evaluate runs/vrnn --split test --particles 100 --json runs/vrnn/test.json
    pyro-vrnn sample   runs/vrnn --num 4 --out runs/vrnn/samples
    pyro-vrnn compare  --data speech-synthetic --models rnn-normal,rnn-gmm,storn,vrnn-i,vrnn-normal,vrnn-gmm \\
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

models (--model):  rnn-normal, rnn-gmm, storn, vrnn-i, vrnn-normal, vrnn-gmm, dmm
                   (--prior/--guide/--emission build any other combination)
data (--data):     offline, generated here: speech-synthetic, handwriting-synthetic, music-synthetic
                   files: music:PICKLE  speech:FOLDER  handwriting:NPZ_OR_IAM_FOLDER
                   prepared:DIR  (written once by 'pyro-vrnn prepare'; for corpora larger than memory)

start here:
  pyro-vrnn compare --data speech-synthetic --out table1     # Table 1 of the VRNN paper, offline
  pyro-vrnn train --help                                     # one model, all the knobs
"""

DISTRIBUTED_NOTE = """\
several processes or GPUs (one model, data parallel; docs/distributed.md):
  torchrun --standalone --nproc_per_node=N -m pyro_vrnn.cli train ... (or evaluate ...)
  --batch-size stays the global batch; rank 0 writes the run folder; --resume works on any N.
"""

TRAIN_DESCRIPTION = """\
Train one model by SVI and write a run folder: config.json (everything to rebuild the model),
checkpoint.pt (+ checkpoint.prev.pt, the last good copy) every --checkpoint-every steps and at the
end, checkpoint.best.pt (the best validation loss so far), history.json (loss per step, validation
loss) and training.png (both curves). Ctrl-C writes a checkpoint first. --steps is the step count
to reach: --resume continues a run exactly where it stopped (model, optimizer, learning-rate
schedule, early stopping, RNG, batch order) up to --steps. --patience N stops early after N
validations without a new best; --lr-schedule plateau lowers the learning rate on plateaus.
--preset NAME fills the flags not given ('pyro-vrnn presets' lists them).

examples:
  pyro-vrnn train --preset music --data music:jsb_chorales.pickle --out runs/jsb
  pyro-vrnn train --model vrnn-gmm --data speech-synthetic --steps 500 --out runs/vrnn-gmm
  pyro-vrnn train --model vrnn-gmm --data speech-synthetic --steps 1000 --out runs/vrnn-gmm --resume
  pyro-vrnn train --model storn --data music:jsb_chorales.pickle --epochs 20 --out runs/storn-jsb
  pyro-vrnn train --model vrnn-normal --guide smoothing --emission handwriting \\
                  --data handwriting:omniglot.npz --steps 2000 --out runs/hw
  paper sizes:  --preset paper (--h-dim 2000 --z-dim 200 --feature-dims 600,600,600,600 ...)

""" + DISTRIBUTED_NOTE

EVALUATE_DESCRIPTION = """\
Evaluate a run's best-on-validation checkpoint (checkpoint.best.pt; --checkpoint last: the latest)
on a split of its own dataset: the ELBO (">=", a lower bound) and the importance-sampled
log-likelihood ("≈", K particles from the guide), per sequence and per time step, with standard
errors over sequences. For an RNN both equal the exact log-likelihood.
Writes JSON (summary + per-sequence lists) and prints a short table. Same --seed and checkpoint,
same numbers.

example:
  pyro-vrnn evaluate runs/vrnn-gmm --split test --particles 500 --chunk-size 50 --json vrnn-test.json

""" + DISTRIBUTED_NOTE

SAMPLE_DESCRIPTION = """\
Generate sequences x ~ p(x) from a run's best-on-validation checkpoint (--checkpoint last: the
latest), un-normalized to data units, and write samples.png (generated beside real test
sequences: waveforms, pen strokes with pen-up gaps, or piano rolls), samples.pt, and for speech
sample_I.wav / real_I.wav (16-bit PCM).

--reconstruct instead draws the first N test sequences beside the model's reconstructions of them
(z from the guide, each step drawn given the true past: teacher forcing): reconstruction.png,
reconstruction.pt (+ data_I.wav / reconstruction_I.wav for speech).
--prime continues a prefix N times: the prefix's latents come from the guide, the --length T steps
after it from the prior. The prefix is a test-sequence index or a file (.npy / .pt of shape
(steps, x_dim) in data units, or an audio file for speech): primed.png (prefix black, continuation
red), primed.pt (+ primed_I.wav for speech).

examples:
  pyro-vrnn sample runs/vrnn-gmm --num 4 --length 80 --out runs/vrnn-gmm/samples
  pyro-vrnn sample runs/vrnn-gmm --reconstruct --num 3 --out runs/vrnn-gmm/reconstruction
  pyro-vrnn sample runs/vrnn-gmm --prime 0 --prime-steps 40 --length 40 --out runs/vrnn-gmm/primed
"""

PREPARE_DESCRIPTION = """\
Write a dataset once into a folder of NumPy .npy files (values and sequence offsets per split, plus
index.json with the normalizer fitted on the training split), exactly as --data SPEC would load it.
Then --data prepared:DIR trains from disk: DataLoader workers read each batch, the order is the
seeded one (a resumed run reads the same batches), and memory does not grow with the corpus.
A speech folder is read one file at a time (two passes), so it may be far larger than memory.

examples:
  pyro-vrnn prepare --data speech:/data/blizzard --out /data/blizzard-prepared
  pyro-vrnn train --model vrnn-gmm --data prepared:/data/blizzard-prepared --steps 100000 --out runs/blizzard
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


PRESETS_DESCRIPTION = """\
Named configurations: sizes, budgets and objectives per data kind. 'pyro-vrnn train --preset NAME'
(or compare) fills every flag not given on the command line; flags given explicitly win.

example:
  pyro-vrnn train --preset music --data music:jsb_chorales.pickle --out runs/jsb
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
_nonnegative_float = _checked(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
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
    group.add_argument("--clip-norm", type=_positive_float, help="gradient clip C: each gradient element is clamped to [-C, C] before the Adam step (Pyro's ClippedAdam clip_norm, an elementwise clamp despite its name) [default: 10]")
    group.add_argument("--weight-decay", type=_nonnegative_float, metavar="L2",
                       help="L2 weight decay of Adam, a regularizer against overfitting [default: 0]")
    group.add_argument("--elbo", choices=("trace", "meanfield", "iwae", "fivo"), help="trace (Monte-Carlo KL), "
                       "meanfield (analytic KL where possible) or iwae (the K-sample importance-weighted bound, "
                       "K = --train-particles) or fivo (the SMC bound of Maddison et al. 2017 with K particles) [default: trace]")
    group.add_argument("--train-particles", type=_positive_int, metavar="K",
                       help="latent samples per sequence in the training objective (the K of iwae) [default: 1]")
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
    group.add_argument("--patience", type=_nonnegative_int, metavar="N",
                       help="early stopping: stop after N validations in a row without a new best validation "
                            "loss; the best is kept as checkpoint.best.pt either way (0 = never stop early) "
                            "[default: 0]")
    group.add_argument("--lr-schedule", choices=("none", "plateau"),
                       help="plateau: multiply the learning rate by --lr-factor after --lr-patience validations "
                            "without improvement (torch's ReduceLROnPlateau) [default: none]")
    group.add_argument("--lr-factor", type=_checked(float, lambda v: 0 < v < 1, "a number in (0, 1)"),
                       metavar="F", help="learning-rate factor of the plateau schedule [default: 0.5]")
    group.add_argument("--lr-patience", type=_nonnegative_int, metavar="N",
                       help="validations without improvement before the plateau schedule lowers the rate "
                            "[default: 3]")
    group.add_argument("--min-lr", type=_nonnegative_float, metavar="LR",
                       help="the plateau schedule's lowest learning rate [default: 0]")


def _add_preset_arg(parser):
    from .presets import PRESETS

    parser.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                        help=f"fill every flag not given from a named configuration ({', '.join(PRESETS)}; "
                             "'pyro-vrnn presets' lists their flags); flags given explicitly win")


def _apply_preset(args) -> None:
    """Set each flag of ``args.preset`` that the command line left unset (``None``)."""
    if not getattr(args, "preset", None):
        return
    from .presets import get_preset

    for key, value in get_preset(args.preset).flags.items():
        if hasattr(args, key) and getattr(args, key) is None:
            setattr(args, key, list(value) if isinstance(value, (list, tuple)) else value)


def _add_checkpoint_arg(parser):
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="best: the best on validation (checkpoint.best.pt; the latest if the run has no "
                             "validation); last: the latest checkpoint")


def _estimators(text):
    from .evaluation import check_estimators

    try:
        return check_estimators(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_estimator_arg(parser):
    parser.add_argument("--estimator", type=_estimators, default=("is",), metavar="is[,smc]",
                        help="log-likelihood estimators: is (importance sampling; always run, it also gives the "
                             "ELBO) and smc (sequential Monte Carlo with the same K particles from the guide, "
                             "resampled when the ESS falls below K/2; ESS and resampling counts go to the JSON) "
                             "[default: is]")


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


def _add_precision_arg(parser):
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                        help="bf16: networks under bfloat16 autocast (for GPUs), log-densities in float32, "
                             "sums in float64 [default: fp32, or the run's own on --resume]")


# ---------------------------------------------------------------------------- defaults
TRAIN_DEFAULTS = {**DEFAULT_TRAINING, "valid_every": 100}
MODEL_DEFAULTS = {"transition": "lstm", "z_dim": 16, "h_dim": 64, "feature_dims": [64], "hidden_dims": [64],
                  "num_components": 20}
COMPARE_DEFAULTS = {"steps": 400, "batch_size": 32, "lr": 3e-3, "valid_every": 0, "checkpoint_every": 0,
                    "particles": 50, "num_components": 5}
TRAINING_FLAGS = {"steps": "steps", "batch_size": "batch_size", "lr": "lr", "clip_norm": "clip_norm",
                  "elbo": "elbo", "annealing_steps": "kl_anneal_steps", "annealing_start": "kl_anneal_start",
                  "valid_every": "valid_every", "checkpoint_every": "checkpoint_every",
                  "bucket_by_length": "bucket_by_length", "weight_decay": "weight_decay",
                  "num_particles": "train_particles", "patience": "patience", "lr_schedule": "lr_schedule",
                  "lr_factor": "lr_factor", "lr_patience": "lr_patience", "min_lr": "min_lr"}


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
    _add_preset_arg(p)
    _add_model_args(p)
    _add_data_args(p, required=False)
    _add_training_args(p, TRAIN_DEFAULTS)
    _add_runtime_args(p)
    _add_precision_arg(p)
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
    p.add_argument("--data-option", type=_data_option, action="append", default=None, metavar="KEY=VALUE",
                   help="replace one of the run's loader options for this evaluation, repeatable, e.g. "
                        "test_chunking=chunks (score a speech run on 0.5 s test chunks instead of whole "
                        "utterances); options that change the features or their normalization are refused")
    _add_checkpoint_arg(p)
    _add_estimator_arg(p)
    _add_runtime_args(p, seed_help="seed of the importance samples [default: 0]")
    _add_precision_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="generate sequences from a run: PNG figure (+ WAV for speech)",
                       description=SAMPLE_DESCRIPTION, formatter_class=_Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--num", type=_positive_int, default=4, metavar="N",
                   help="sequences to generate (with --reconstruct: test sequences; with --prime: continuations)")
    p.add_argument("--length", type=_positive_int, default=None, metavar="T",
                   help="time steps per sequence [default: median training length]; with --prime, steps after the "
                        "prefix [default: the prefix's length]; with --reconstruct, steps of each test sequence "
                        "[default: all]")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for samples.png, samples.pt, *.wav")
    p.add_argument("--no-real", action="store_true", help="do not load the data to show real sequences beside")
    _add_checkpoint_arg(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--reconstruct", action="store_true",
                      help="plot test sequences beside their reconstructions (guide's z, teacher forcing)")
    mode.add_argument("--prime", metavar="FILE_OR_INDEX",
                      help="continue this prefix: an index into the test split, or a .npy/.pt/audio file")
    p.add_argument("--prime-steps", type=_positive_int, default=None, metavar="P",
                   help="with --prime: use only the prefix's first P steps [default: all]")
    p.add_argument("--temperature", type=_checked(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0"),
                   default=1.0, metavar="TAU", help="scale of the sampling noise (0: the means; not with "
                   "--reconstruct) [default: 1]")
    _add_runtime_args(p, seed_help="seed of the samples [default: 0]")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("compare", help="train and evaluate several models with one budget: the paper's Table 1",
                       description=COMPARE_DESCRIPTION, formatter_class=_Formatter)
    p.add_argument("--models", default="rnn-normal,rnn-gmm,storn,vrnn-i,vrnn-normal,vrnn-gmm", metavar="A,B,...",
                   help="comma-separated model names [default: the VRNN paper's Table 1 (RNN-Gauss, RNN-GMM, "
                   "VRNN-I-Gauss, VRNN-Gauss, VRNN-GMM) and STORN]")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (one run folder per model inside)")
    p.add_argument("--resume", action="store_true", help="continue (or reuse, if already at --steps) the runs "
                   "in DIR; without it, runs already in DIR are trained again from scratch")
    p.add_argument("--particles", type=_positive_int, default=None, metavar="K",
                   help="importance samples per test sequence [default: 50]")
    p.add_argument("--chunk-size", type=_positive_int, default=None, metavar="C", help="particles run together")
    p.add_argument("--eval-batch-size", type=_positive_int, default=8, metavar="B")
    p.add_argument("--max-eval-sequences", type=_positive_int, default=None, metavar="N",
                   help="evaluate on N test sequences only, evenly spaced through the split")
    _add_estimator_arg(p)
    p.add_argument("--num-samples", type=_positive_int, default=3, metavar="N", help="samples per model in the figure")
    p.add_argument("--sample-length", type=_positive_int, default=None, metavar="T")
    p.add_argument("--unit", choices=("sequence", "step"), default=None,
                   help="table unit: nats per sequence (VRNN paper) or per time step (music papers) "
                        "[default: step for music, else sequence]")
    _add_preset_arg(p)
    _add_model_args(p, with_model=False, num_components=COMPARE_DEFAULTS["num_components"])
    _add_data_args(p, required=True)
    _add_training_args(p, {**TRAIN_DEFAULTS, **COMPARE_DEFAULTS})
    _add_runtime_args(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("presets", help="list the named configurations that --preset NAME fills in",
                       description=PRESETS_DESCRIPTION, formatter_class=_Formatter)
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("prepare", help="write a dataset once to disk for training from it (corpora larger "
                       "than memory)", description=PREPARE_DESCRIPTION, formatter_class=_Formatter)
    _add_data_args(p, required=True)
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (train/valid/test .npy + index.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a prepared corpus already in DIR")
    p.set_defaults(func=cmd_prepare)
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


def _log(args, parallel=None):
    quiet = args.quiet or (parallel is not None and not parallel.is_main)
    return (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))


def _setup_processes(args):
    """``(parallel, device)``: under torchrun, join the process group (``parallel`` a
    :class:`~pyro_vrnn.distributed.DataParallel`, one device per process); else ``(None, device)``."""
    from . import distributed

    device = _setup_runtime(args)
    return distributed.start(args.device) if distributed.launched() else (None, device)


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
def cmd_presets(args) -> int:
    from .presets import describe_presets

    print(describe_presets())
    return 0


def cmd_train(args) -> int:
    from .checkpoint import CHECKPOINT, PREVIOUS, CheckpointError, load_latest
    from .runs import load_data, make_config, train_run
    from .zoo import model_spec

    _apply_preset(args)
    parallel, device = _setup_processes(args)
    log = _log(args, parallel)
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
    precision = args.precision or (saved or {}).get("precision") or "fp32"
    result = train_run(config, run_dir, resume=args.resume, overwrite=args.overwrite, device=device,
                       dataset=dataset, progress=not args.quiet and (parallel is None or parallel.is_main), log=log,
                       parallel=parallel, precision=precision)
    log(f"{name}: steps {result['start_step']} -> {result['step']} in {result['seconds']:.1f} s; "
        f"loss (negative ELBO per step, last 50) {result['final_loss']:.4f}; run folder {run_dir}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate_run, format_summary
    from .outputs import check_writable, is_evaluation_result, write_text_atomic
    from .precision import autocast

    parallel, device = _setup_processes(args)
    seed = args.seed if args.seed is not None else 0
    path = Path(args.json) if args.json else Path(args.run_dir) / f"eval_{args.split}.json"
    if Path(args.run_dir).is_dir():  # refuse a bad --json before the work (a missing run says so itself)
        check_writable(path, is_evaluation_result, "an evaluation result of pyro-vrnn evaluate",
                       "give --json a new path (or one that holds an earlier evaluation)")
    with autocast(args.precision or "fp32", device):
        result = evaluate_run(args.run_dir, args.split, num_particles=args.particles, chunk_size=args.chunk_size,
                              batch_size=args.batch_size, seed=seed, device=device,
                              max_sequences=args.max_sequences, checkpoint=args.checkpoint, parallel=parallel,
                              estimators=args.estimator, data_options=_data_options(args))
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


def cmd_sample(args) -> int:
    from .sampling import prime_run, reconstruct_run, sample_run

    device = _setup_runtime(args)
    seed = args.seed if args.seed is not None else 0
    if args.prime_steps is not None and args.prime is None:
        raise ValueError("--prime-steps applies only with --prime")
    if args.reconstruct and args.temperature != 1.0:
        raise ValueError("--temperature does not apply to --reconstruct (reconstructions are drawn at temperature 1)")
    if args.reconstruct:
        written = reconstruct_run(args.run_dir, args.out, num=args.num, length=args.length, seed=seed, device=device,
                                  checkpoint=args.checkpoint)
    elif args.prime is not None:
        written = prime_run(args.run_dir, args.out, args.prime, num=args.num, length=args.length, seed=seed,
                            prime_steps=args.prime_steps, temperature=args.temperature, device=device,
                            checkpoint=args.checkpoint)
        print(f"prefix of {written.pop('prefix_steps')} steps, continued {args.num} times")
    else:
        written = sample_run(args.run_dir, args.out, num=args.num, length=args.length, seed=seed, device=device,
                             with_real=not args.no_real, temperature=args.temperature,
                             checkpoint=args.checkpoint)
    for key, value in written.items():
        for path in (value if isinstance(value, list) else [value]):
            print(f"written {path}")
    return 0


def cmd_prepare(args) -> int:
    from .data.prepared import open_prepared, prepare

    out = prepare(args.data, args.out, overwrite=args.overwrite, **_data_options(args))
    print(open_prepared(out).describe())
    print(f"written {out}; train from it with --data prepared:{out}")
    return 0


def cmd_compare(args) -> int:
    from .compare import compare, markdown_table, meaning
    from .zoo import SEED_MODELS

    _apply_preset(args)
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
                   resume=args.resume, progress=not args.quiet, log=_log(args), estimators=args.estimator, **sizes)
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

    from . import distributed

    threads, validation = torch.get_num_threads(), is_validation_enabled()
    finished = False
    with _one_line_warnings():
        try:
            if distributed.launched_processes() > 1 and args.command not in ("train", "evaluate"):
                raise ValueError(f"'{args.command}' runs in one process; under torchrun (RANK and WORLD_SIZE "
                                 "set) only train and evaluate run, data parallel")
            status = int(args.func(args) or 0)
            finished = True
            return status
        except (DataError, CheckpointError, ValueError, OSError) as error:
            return _fail(error, 2)
        except DivergenceError as error:
            return _fail(f"{error} (the last good checkpoint is kept; try a lower --lr)", 1)
        except Exception as error:  # out of memory: say which knob to turn; anything else: one line
            from .resources import COMMAND_KNOBS, OutOfMemoryError, is_out_of_memory, out_of_memory_message

            if isinstance(error, OutOfMemoryError):
                return _fail(error, 1)
            if is_out_of_memory(error):
                return _fail(out_of_memory_message(error, args.command, COMMAND_KNOBS.get(args.command, "")), 1)
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
            if distributed.launched():  # leave the process group train/evaluate joined
                distributed.stop(synchronize=finished)


if __name__ == "__main__":
    sys.exit(main())
