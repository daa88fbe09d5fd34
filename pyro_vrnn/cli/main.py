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

import contextlib
import os
import sys
import warnings

import pyro
import torch
from pyro.poutine.util import is_validation_enabled

from ..data import DataError
from ..train import distributed
from ..train.checkpoint import CheckpointError
from ..train.resources import COMMAND_KNOBS, OutOfMemoryError, is_out_of_memory, out_of_memory_message
from ..train.trainer import DivergenceError
from ..version import __version__
from . import common, compare, evaluate, forecast, prepare, presets, sample, score, train
from .common import PROG

#: set it (to anything) to see the traceback of an unexpected error instead of its one-line summary
TRACEBACK_ENV_VAR = "PYRO_VRNN_TRACEBACK"
#: the commands, in the order ``pyro-vrnn --help`` lists them; each module has ``add_parser`` and ``run``
COMMANDS = (train, evaluate, sample, score, forecast, compare, presets, prepare)

MAIN_DESCRIPTION = """\
Recurrent latent-variable models of sequences as Pyro programs: the VRNN (Chung et al. 2015),
STORN (Bayer & Osendorfer 2014) and RNN baselines, trained by stochastic variational inference
and judged by importance-sampled log-likelihood.

models (--model):  rnn-normal, rnn-gmm, storn, vrnn-i, vrnn-normal, vrnn-gmm, dmm
                   (--prior/--guide/--emission build any other combination)
data (--data):     offline, generated here: speech-synthetic, handwriting-synthetic, music-synthetic
                   files: music:PICKLE_OR_MIDI  speech:FOLDER  handwriting:NPZ_OR_IAM_FOLDER
                          series:CSV_TSV_NPZ_OR_FOLDER (your own time series)
                   prepared:DIR  (written once by 'pyro-vrnn prepare'; for corpora larger than memory)

start here:
  pyro-vrnn compare --data speech-synthetic --out table1     # Table 1 of the VRNN paper, offline
  pyro-vrnn train --help                                     # one model, all the knobs
  pyro-vrnn score RUN --data series:my.csv --out scores.csv  # per-step log p(x_t | x_<t): anomaly scores
  pyro-vrnn forecast RUN --data series:my.csv --horizon 24 --out forecast.csv
"""


def build_parser():
    parser = common.Parser(prog=PROG, description=MAIN_DESCRIPTION, formatter_class=common.Formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


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
    threads, validation, flushed = torch.get_num_threads(), is_validation_enabled(), common.denormals_flushed()
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
            torch.set_flush_denormal(flushed)
            if distributed.launched():  # leave the process group train/evaluate joined
                distributed.stop(synchronize=finished)


if __name__ == "__main__":
    sys.exit(main())
