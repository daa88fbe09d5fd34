"""The command line, ``pyro-vrnn COMMAND``: one module per command (:mod:`~pyro_vrnn.cli.train`,
:mod:`~pyro_vrnn.cli.evaluate`, :mod:`~pyro_vrnn.cli.sample`, :mod:`~pyro_vrnn.cli.compare`,
:mod:`~pyro_vrnn.cli.presets`, :mod:`~pyro_vrnn.cli.prepare`), each with its own ``add_parser`` and
``run``; :mod:`~pyro_vrnn.cli.common` holds what they share and :mod:`~pyro_vrnn.cli.main` the
entry point. ``python -m pyro_vrnn.cli`` (and so ``torchrun -m pyro_vrnn.cli``) runs it too."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
