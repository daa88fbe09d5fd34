"""``pyro-vrnn prepare``: write a dataset once to disk (NumPy files) for corpora larger than memory."""

from __future__ import annotations

from ..data.preparation import prepare
from ..data.prepared import open_prepared
from . import common

DESCRIPTION = """\
Write a dataset once into a folder of NumPy .npy files (values and sequence offsets per split, plus
index.json with the normalizer fitted on the training split), exactly as --data SPEC would load it.
Then --data prepared:DIR trains from disk: DataLoader workers read each batch, the order is the
seeded one (a resumed run reads the same batches), and memory does not grow with the corpus.
A speech folder is read one file at a time (two passes), so it may be far larger than memory.

examples:
  pyro-vrnn prepare --data speech:/data/blizzard --out /data/blizzard-prepared
  pyro-vrnn train --model vrnn-gmm --data prepared:/data/blizzard-prepared --steps 100000 --out runs/blizzard
"""


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn prepare`` to ``subparsers``."""
    p = subparsers.add_parser("prepare", help="write a dataset once to disk for training from it (corpora larger "
                       "than memory)", description=DESCRIPTION, formatter_class=common.Formatter)
    common.add_data_args(p, required=True)
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (train/valid/test .npy + index.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a prepared corpus already in DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    out = prepare(args.data, args.out, overwrite=args.overwrite, **common.data_options(args))
    print(open_prepared(out).describe())
    print(f"written {out}; train from it with --data prepared:{out}")
    return 0
