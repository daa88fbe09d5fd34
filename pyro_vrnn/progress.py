"""A dependency-free progress bar: ``[#####.....] 500/1000 loss 1.234 12.3 it/s``.

On a terminal it redraws one line; elsewhere (logs, CI) it prints a line every ``log_every``
updates so that logs stay short.
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Progress of ``total`` steps with free-form metrics, written to ``stream`` (stderr)."""

    def __init__(self, total: int, desc: str = "", stream=None, enabled: bool = True, width: int = 24,
                 log_every: int | None = None, initial: int = 0):
        self.total, self.desc, self.width, self.enabled = max(int(total), 1), desc, width, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = log_every or max(1, self.total // 10)
        self.count = self.initial = initial
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return (self.count - self.initial) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1, **metrics) -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self._last_draw < 0.1 and self.count < self.total:
                return
            self._last_draw = now
            self.stream.write("\r" + self._line(metrics))
        elif self.count % self.log_every == 0 or self.count == self.total:
            self.stream.write(self._line(metrics) + "\n")
        self.stream.flush()

    def _line(self, metrics) -> str:
        done = int(self.width * min(self.count, self.total) / self.total)
        bar = "#" * done + "." * (self.width - done)
        extra = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        return f"{self.desc} [{bar}] {self.count}/{self.total} {extra} {self.rate():.2f} it/s".strip()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
