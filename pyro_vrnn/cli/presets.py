"""``pyro-vrnn presets``: list the named configurations ``--preset NAME`` fills in."""

from __future__ import annotations

from ..train.presets import describe_presets
from . import common

DESCRIPTION = """\
Named configurations: sizes, budgets and objectives per data kind. 'pyro-vrnn train --preset NAME'
(or compare) fills every flag not given on the command line; flags given explicitly win.

example:
  pyro-vrnn train --preset music --data music:jsb_chorales.pickle --out runs/jsb
"""


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn presets`` to ``subparsers``."""
    p = subparsers.add_parser("presets", help="list the named configurations that --preset NAME fills in",
                       description=DESCRIPTION, formatter_class=common.Formatter)
    p.set_defaults(func=run)


def run(args) -> int:
    print(describe_presets())
    return 0
