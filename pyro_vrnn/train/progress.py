"""The training progress bar: ``tqdm`` (installed with Pyro), shown only where someone watches.

``train:  40%|████      | 400/1000 [00:12<00:18, 33.1it/s, loss 1.234 valid 1.31]`` on a terminal; nothing
under ``--quiet``, when the stream is not a terminal (a log file, a pipe) or when ``CI`` is set, so
logs stay short. The trainer's own log lines (resume, early stop, summary) are printed either way.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def shows_progress(stream=None) -> bool:
    """Whether a bar would be seen: ``stream`` (stderr) is a terminal and ``CI`` is not set."""
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and "CI" not in os.environ


def progress_bar(total: int, *, desc: str = "", initial: int = 0, enabled: bool = True, stream=None) -> tqdm:
    """A ``tqdm`` bar over ``total`` steps starting at ``initial``; disabled unless ``enabled`` and
    :func:`shows_progress`. Metrics go in with ``bar.set_postfix_str("loss 1.234", refresh=False)``."""
    stream = stream if stream is not None else sys.stderr
    return tqdm(total=total, initial=initial, desc=desc, file=stream, dynamic_ncols=True, leave=True,
                disable=not (enabled and shows_progress(stream)), mininterval=0.1)
