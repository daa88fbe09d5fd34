"""What the commands share: the one-line-error parser, argument types, flag groups, defaults,
presets and the runtime set-up (threads, device, Pyro validation, torchrun processes).

Every command module (:mod:`~pyro_vrnn.cli.train`, ...) builds its parser from these groups, so a
flag means the same in every command.
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
import textwrap

import pyro
import torch

from ..data.batching import updates_per_epoch
from ..models.predictive import MAX_TEMPERATURE
from ..models.zoo import EMISSIONS, GUIDES, PRIORS, SEED_MODELS, TRANSITIONS
from ..report.evaluation import check_estimators
from ..train import distributed
from ..train.devices import resolve_device
from ..train.presets import PRESETS, get_preset
from ..train.settings import DEFAULT_TRAINING

PROG = "pyro-vrnn"

DISTRIBUTED_NOTE = """\
several processes or GPUs (one model, data parallel; docs/distributed.md):
  torchrun --standalone --nproc_per_node=N -m pyro_vrnn.cli train ... (or evaluate ...)
  --batch-size stays the global batch; rank 0 writes the run folder; --resume works on any N.
  RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT are checked before the processes meet;
  each waits at most $PYRO_VRNN_RENDEZVOUS_TIMEOUT seconds (default 300) for the others.
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``pyro-vrnn: error: ...`` (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' layout; shows a default only where one is set and not already told."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "[default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} [default: %(default)s]"


# ---------------------------------------------------------------------------- argument types
def checked(cast, accept, expected: str):
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


positive_int = checked(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = checked(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
nonnegative_float = checked(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
unit_interval = checked(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
seed = checked(int, lambda v: 0 <= v < 2 ** 32, "an integer from 0 to 2**32 - 1")
MAX_THREADS = 1024
thread_count = checked(int, lambda v: 1 <= v <= MAX_THREADS, f"a whole number from 1 to {MAX_THREADS}")
#: --temperature of sample and forecast: the range generate() accepts
temperature = checked(float, lambda v: 0 <= v <= MAX_TEMPERATURE, f"a number from 0 to {MAX_TEMPERATURE:g}")


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "G": 1 << 30, "GB": 1 << 30,
          "T": 1 << 40, "TB": 1 << 40}


def memory_size(text):
    """``--max-memory``: bytes, as a number with an optional unit (``64G``, ``512MB``, ``1e11``)."""
    stripped = text.strip().upper()
    number = stripped.rstrip("KMGTB")
    unit = stripped[len(number):]
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 64G, 512M or 1e11, got {text!r}") from None
    if not (math.isfinite(value) and value >= 1):
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 64G, 512M or 1e11, got {text!r}")
    return int(value)


def add_max_memory_arg(parser):
    parser.add_argument("--max-memory", type=memory_size, default=None, metavar="BYTES",
                        help="memory the particles may take (e.g. 64G); work that needs more is refused before it "
                             "starts [default: the memory available now]")


def dims(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def data_option(text):
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value  # a plain string
    return key.strip().replace("-", "_"), parsed


# ---------------------------------------------------------------------------- argument groups
def add_model_args(parser, *, with_model: bool = True, num_components: int = 20):
    group = parser.add_argument_group("model (defaults are CPU-sized; sizes are fixed once a run starts)")
    if with_model:
        group.add_argument("--model", choices=list(SEED_MODELS), metavar="NAME",
                           help=f"one of {', '.join(SEED_MODELS)} (required unless --resume)")
    group.add_argument("--prior", choices=PRIORS, help="override p(z_t|.): standard = N(0, I) as in STORN, "
                       "conditional = N(mu(h_{t-1}), sigma(h_{t-1})^2) as in the VRNN")
    group.add_argument("--guide", choices=GUIDES, help="override q(z_t|.): filtering q(z_t|x_t,h_{t-1}) (VRNN), "
                       "smoothing (sees the future through a backward RNN), storn q(z_t|x_{<=t})")
    group.add_argument("--emission", choices=EMISSIONS, help="override p(x_t|.): normal, gmm (mixture of "
                       "diagonal Gaussians), bernoulli (binary, music), autoregressive (binary, the keys of a "
                       "step jointly, as RNN-NADE), handwriting (bivariate mixture + pen bit); "
                       "default: the model's own, bernoulli on music")
    group.add_argument("--transition", choices=TRANSITIONS, default=None, help="recurrence h_t = f(...) "
                       "[default: lstm]")
    group.add_argument("--z-dim", type=positive_int, help="latent size per step [default: 16; dmm 100]")
    group.add_argument("--h-dim", type=positive_int, help="recurrent state size; the DMM's gated transition width "
                       "[default: 64; paper 2000; dmm 200]")
    group.add_argument("--feature-dims", type=dims, metavar="D1,D2,...",
                       help="hidden widths of phi_x and phi_z [default: 64; paper 600,600,600,600]")
    group.add_argument("--hidden-dims", type=dims, metavar="D1,D2,...",
                       help="hidden widths of the prior, guide and emission nets [default: 64; dmm: its emission's "
                       "100,100]")
    group.add_argument("--num-components", type=positive_int,
                       help=f"mixture components of the gmm/handwriting emission [default: {num_components}"
                       + (", as the paper]" if num_components == 20 else "; the paper used 20]"))


def add_data_args(parser, *, required: bool):
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="SPEC", required=required,
                       help="speech-synthetic | handwriting-synthetic | music-synthetic (offline, generated) or "
                            "KIND:PATH with KIND music (a .pickle of piano rolls, a .mid file or a folder of "
                            "them), speech (a folder of audio; train*/test* sub-folders become the splits), "
                            "handwriting (stroke-3 .npz or an IAM-OnDB folder), series (a CSV/TSV in long form, "
                            "a folder of CSV/.npy files, an .npz); relative paths are also looked up under "
                            "$PYRO_VRNN_DATA"
                            + ("" if required else " (required unless --resume)"))
    group.add_argument("--data-option", type=data_option, action="append", default=None, metavar="KEY=VALUE",
                       help="loader option, repeatable, e.g. max_files=50, chunk_frames=40, frame_size=200, "
                            "test_chunking=chunks (speech); num_train=100 (synthetic sets); steps_per_beat=4 "
                            "(MIDI); id_column=NAME, time_column=NAME, missing=drop (series)")


def add_sequence_data_args(p) -> None:
    """``--data`` and ``--data-option`` of ``score`` and ``forecast``."""
    p.add_argument("--data", metavar="SPEC", default=None,
                   help="the sequences to read, any --data spec of train (e.g. series:FILE.csv, music:FOLDER); "
                        "all of them, no split [default: the run's test split]")
    p.add_argument("--data-option", type=data_option, action="append", default=None, metavar="KEY=VALUE",
                   help="loader option for --data, repeatable (e.g. id_column=unit time_column=t)")


def add_training_args(parser, defaults: dict):
    group = parser.add_argument_group("training")
    budget = group.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=nonnegative_int, help="SVI steps (updates: one per minibatch, or per window "
                        "with --train-window) in total; with --resume the run continues up to this step "
                        f"[default: {defaults['steps']}]")
    budget.add_argument("--epochs", type=positive_int, help="instead of --steps: passes over the training split (with "
                        "--train-window, the windows of its length-sorted batches; needs --bucket-by-length)")
    group.add_argument("--batch-size", type=positive_int, help=f"sequences per minibatch [default: {defaults['batch_size']}]")
    group.add_argument("--lr", type=positive_float, help=f"Adam learning rate [default: {defaults['lr']:g}]")
    group.add_argument("--clip-norm", type=positive_float, help="gradient clip C: each gradient element is clamped to [-C, C] before the Adam step (Pyro's ClippedAdam clip_norm, an elementwise clamp despite its name) [default: 10]")
    group.add_argument("--weight-decay", type=nonnegative_float, metavar="L2",
                       help="L2 weight decay of Adam, a regularizer against overfitting [default: 0]")
    group.add_argument("--elbo", choices=("trace", "meanfield", "iwae", "fivo"), help="trace (Monte-Carlo KL), "
                       "meanfield (analytic KL where possible) or iwae (the K-sample importance-weighted bound, "
                       "K = --train-particles) or fivo (the SMC bound of Maddison et al. 2017 with K particles) [default: trace]")
    group.add_argument("--train-particles", type=positive_int, metavar="K",
                       help="latent samples per sequence in the training objective (the K of iwae) [default: 1]")
    group.add_argument("--kl-anneal-steps", type=nonnegative_int, metavar="N",
                       help="KL annealing: scale the latent terms from --kl-anneal-start up to 1 over N steps "
                            "[default: 0 = off]")
    group.add_argument("--kl-anneal-start", type=unit_interval, metavar="BETA",
                       help="initial KL weight, in (0, 1] [default: 0.1]")
    group.add_argument("--train-window", type=nonnegative_int, metavar="N",
                       help="truncated backpropagation through time for long sequences: one update per window of "
                            "N steps of each batch, the recurrent state carried to the next window and detached, "
                            "so an update costs N steps whatever the pieces' lengths; guides that read the future "
                            "(smoothing, DMM) see the window's future only; validation and evaluation run whole "
                            "sequences; 0 = whole sequences [default: 0]")
    group.add_argument("--bucket-by-length", action="store_true", default=None,
                       help="batch sequences of similar length together (less padding)")
    group.add_argument("--valid-every", type=nonnegative_int, metavar="N",
                       help="validation loss (negative ELBO per step) every N steps; 0 = never "
                            f"[default: {defaults['valid_every']}]")
    group.add_argument("--checkpoint-every", type=nonnegative_int, metavar="N",
                       help="write a checkpoint every N steps (and always at the end; 0 = only at the end) "
                       f"[default: {defaults['checkpoint_every']}]")
    group.add_argument("--patience", type=nonnegative_int, metavar="N",
                       help="early stopping: stop after N validations in a row without a new best validation "
                            "loss; the best is kept as checkpoint.best.pt either way (0 = never stop early) "
                            "[default: 0]")
    group.add_argument("--lr-schedule", choices=("none", "plateau"),
                       help="plateau: multiply the learning rate by --lr-factor after --lr-patience validations "
                            "without improvement (torch's ReduceLROnPlateau) [default: none]")
    group.add_argument("--lr-factor", type=checked(float, lambda v: 0 < v < 1, "a number in (0, 1)"),
                       metavar="F", help="learning-rate factor of the plateau schedule [default: 0.5]")
    group.add_argument("--lr-patience", type=nonnegative_int, metavar="N",
                       help="validations without improvement before the plateau schedule lowers the rate "
                            "[default: 3]")
    group.add_argument("--min-lr", type=nonnegative_float, metavar="LR",
                       help="the plateau schedule's lowest learning rate [default: 0]")


def add_preset_arg(parser):
    parser.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                        help=f"fill every flag not given from a named configuration ({', '.join(PRESETS)}; "
                             "'pyro-vrnn presets' lists their flags); flags given explicitly win")


#: objectives under which KL annealing is not KL annealing (it scales terms inside a log-mean-exp)
UNANNEALED_ELBOS = ("iwae", "fivo")


def apply_preset(args, log=None) -> dict:
    """Set each flag of ``args.preset`` that the command line left unset (``None``); returns the flags
    it filled (argparse name -> value) and says so in one line through ``log`` (the command's log:
    stderr unless --quiet).

    With ``--elbo iwae`` or ``fivo``, a preset's KL annealing is left off (annealing inside a
    log-mean-exp of weights is not KL annealing, nor a bound); an explicit ``--kl-anneal-steps N > 0``
    with those objectives is an error. With ``--valid-every 0``, a preset's ``--patience`` and
    ``--lr-schedule plateau`` (which need validation) are named as the cause, with the way out."""
    log = log or (lambda message: None)
    elbo = getattr(args, "elbo", None)
    if elbo in UNANNEALED_ELBOS and getattr(args, "kl_anneal_steps", None):
        raise ValueError(f"--kl-anneal-steps {args.kl_anneal_steps} with --elbo {elbo}: annealing scales log p(z) - "
                         f"log q(z) inside the log-mean-exp of the weights, which is not KL annealing (nor a bound); "
                         f"drop --kl-anneal-steps, or use --elbo trace or meanfield")
    if not getattr(args, "preset", None):
        return {}
    preset = get_preset(args.preset)
    filled = {}
    for key, value in preset.flags.items():
        if hasattr(args, key) and getattr(args, key) is None:
            if key in ("kl_anneal_steps", "kl_anneal_start") and elbo in UNANNEALED_ELBOS:
                continue  # left off (see above); said below
            filled[key] = list(value) if isinstance(value, (list, tuple)) else value
            setattr(args, key, filled[key])
    if getattr(args, "valid_every", None) == 0:
        needs = {k: filled[k] for k in ("patience", "lr_schedule") if k in filled and filled[k] not in (0, "none")}
        if needs:
            given = " and ".join(f"--{k.replace('_', '-')} {v}" for k, v in needs.items())
            raise ValueError(f"--valid-every 0 turns validation off, but --preset {args.preset} sets {given}, which "
                             f"are driven by the validation loss; add --patience 0 --lr-schedule none to train "
                             f"without validation (or give --valid-every N > 0)")
    from_preset = type(preset)(preset.name, "", filled).command_line()
    dropped = "kl_anneal_steps" in preset.flags and elbo in UNANNEALED_ELBOS
    log(f"preset {args.preset} fills in: {from_preset or '(nothing: every flag was given)'}"
        + (f"; its KL annealing (--kl-anneal-steps {preset.flags['kl_anneal_steps']}) is left off with --elbo {elbo}"
           if dropped else ""))
    return filled


def add_checkpoint_arg(parser):
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="best: the best on validation (checkpoint.best.pt; the latest if the run has no "
                             "validation); last: the latest checkpoint")


def estimators(text):
    try:
        return check_estimators(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_estimator_arg(parser):
    parser.add_argument("--estimator", type=estimators, default=("is",), metavar="is[,smc]",
                        help="log-likelihood estimators: is (importance sampling; always run, it also gives the "
                             "ELBO) and smc (sequential Monte Carlo with the same K particles from the guide, "
                             "resampled when the ESS falls below K/2; ESS and resampling counts go to the JSON) "
                             "[default: is]")


def add_runtime_args(parser, *, seed_help="seed of parameters, batches and latent noise [default: 0]"):
    group = parser.add_argument_group("runtime")
    group.add_argument("--seed", type=seed, default=None, help=seed_help)
    group.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]")
    group.add_argument("--threads", type=thread_count, help="torch CPU threads [default: 1 on CPU: nets of the "
                       "default sizes gain nothing from more, and on a busy machine extra threads slow torch down "
                       "many times; raise it for paper-sized models]")
    group.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    group.add_argument("--validate", action="store_true",
                       help="turn Pyro's distribution argument checks on (slower; off by default)")


def add_precision_arg(parser):
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                        help="bf16: networks under bfloat16 autocast (for GPUs), log-densities in float32, "
                             "sums in float64 [default: fp32, or the run's own on --resume]")


# ---------------------------------------------------------------------------- defaults
TRAIN_DEFAULTS = {**DEFAULT_TRAINING, "valid_every": 100}
MODEL_DEFAULTS = {"transition": "lstm", "z_dim": None, "h_dim": None, "feature_dims": [64], "hidden_dims": None,
                  "num_components": 20}  # None: the model family's own (models.zoo.SIZE_DEFAULTS)
COMPARE_DEFAULTS = {"steps": 400, "batch_size": 32, "lr": 3e-3, "valid_every": 0, "checkpoint_every": 0,
                    "particles": 50, "num_components": 5}
DEFAULTS_NOTE = textwrap.fill((
    "train and compare have different defaults: train --steps {t[steps]} --lr {t[lr]:g} --num-components 20, "
    "validation every {t[valid_every]} steps; compare (sized for the few-minute Table 1) --steps {c[steps]} "
    "--lr {c[lr]:g} --num-components {c[num_components]} --particles {c[particles]}, no validation and no "
    "checkpoints before the end. Sizes are the same: h 64, z 16, 64-unit layers (the DMM: Pyro's "
    "examples/dmm.py sizes)."
).format(t=TRAIN_DEFAULTS, c=COMPARE_DEFAULTS), width=100, break_on_hyphens=False)
TRAINING_FLAGS = {"steps": "steps", "batch_size": "batch_size", "lr": "lr", "clip_norm": "clip_norm",
                  "elbo": "elbo", "annealing_steps": "kl_anneal_steps", "annealing_start": "kl_anneal_start",
                  "valid_every": "valid_every", "checkpoint_every": "checkpoint_every",
                  "bucket_by_length": "bucket_by_length", "weight_decay": "weight_decay",
                  "num_particles": "train_particles", "patience": "patience", "lr_schedule": "lr_schedule",
                  "lr_factor": "lr_factor", "lr_patience": "lr_patience", "min_lr": "min_lr",
                  "train_window": "train_window"}


def denormals_flushed() -> bool:
    """Whether torch flushes denormal floats to zero now (torch has no getter: a denormal product tells)."""
    return bool(torch.tensor(2e-40, dtype=torch.float32) * 0.5 == 0)


def setup_runtime(args):
    """The process's device, CPU threads (``--threads``) and Pyro's validation flag. On CPU, denormal
    floats (below 1.2e-38) are flushed to zero (``torch.set_flush_denormal``): weights that weight decay
    drives towards zero (``--weight-decay``; the masked entries of the autoregressive emission) become
    denormal, and each matmul that reads them runs several times slower on x86 (a Piano-midi VRNN's
    evaluation 4.5x, the same figures to every digit; docs/performance.md)."""
    device = resolve_device(args.device)
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # False (and nothing changes) where the CPU lacks the mode
    pyro.enable_validation(bool(args.validate))
    return device


def log(args, parallel=None):
    quiet = args.quiet or (parallel is not None and not parallel.is_main)
    return (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))


def setup_processes(args):
    """``(parallel, device)``: under torchrun, join the process group (``parallel`` a
    :class:`~pyro_vrnn.distributed.DataParallel`, one device per process); else ``(None, device)``."""
    device = setup_runtime(args)
    if distributed.launched_processes() > 1 or distributed.launched():
        return distributed.start(args.device, log=log(args))
    return None, device


def data_options(args, saved=None):
    if args.data_option is None:
        return dict(saved or {})
    return dict(args.data_option)


def spec_kwargs(args, saved=None, defaults=MODEL_DEFAULTS):
    """Model sizes and parts from the flags, else the saved spec, else the defaults."""
    out = {}
    for key in ("prior", "guide", "emission"):
        value = getattr(args, key)
        out[key] = value if value is not None else (saved or {}).get(key)
    for key, default in defaults.items():
        value = getattr(args, key)
        out[key] = value if value is not None else (saved or {}).get(key) or default
    return out


def training_settings(args, train_lengths=None, saved=None, defaults=None):
    """The training settings from the flags, else ``saved`` (a resumed run's), else ``defaults``;
    ``--epochs`` becomes the updates of that many passes over sequences of ``train_lengths``
    (:func:`~pyro_vrnn.data.batching.updates_per_epoch`: batches, or windows with ``--train-window``)."""
    base = {**DEFAULT_TRAINING, **(defaults or {}), **(saved or {})}
    settings = {}
    for key, flag in TRAINING_FLAGS.items():
        value = getattr(args, flag)
        settings[key] = value if value is not None else base[key]
    if getattr(args, "epochs", None):
        settings["steps"] = args.epochs * updates_per_epoch(train_lengths, settings["batch_size"],
                                                            settings["train_window"], settings["bucket_by_length"])
    if args.steps is None and not getattr(args, "epochs", None) and saved is not None:
        settings["steps"] = saved["steps"]
    return settings
