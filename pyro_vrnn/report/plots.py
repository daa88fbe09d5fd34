"""Pictures of sequences: waveforms, handwriting as pen strokes, piano rolls; samples beside data.

matplotlib is imported lazily with the non-interactive Agg backend, so importing this module (and
the library) never needs a display. Every ``draw_*`` function draws one sequence on an ``ax``;
:func:`plot_samples` and :func:`plot_sample_grid` lay several out and save a PNG.

Sequences are ``(T, D)`` arrays or tensors in data units (un-normalized):

- speech: ``(T, F)`` frames of ``F`` samples, drawn as one waveform of ``T * F`` samples;
- handwriting: ``(T, 3)`` rows ``(dx, dy, pen_lifted)``; the pen leaves the paper after a row
  with ``pen_lifted > 0.5``, so no line joins that point to the next;
- music: ``(T, 88)`` binary piano roll (MIDI 21..108), time on the x axis;
- series (tabular time series): ``(T, D)``, one line per feature against the time step.
"""

from __future__ import annotations

import numpy as np

from ..train.curves import pyplot as _pyplot

LOWEST_NOTE = 21




def _array(seq) -> np.ndarray:
    if hasattr(seq, "detach"):
        seq = seq.detach().cpu().numpy()
    return np.asarray(seq, dtype=np.float64)


def strokes(seq, pen_threshold: float = 0.5) -> list[np.ndarray]:
    """``(T, 3)`` offsets -> list of ``(n_i, 2)`` absolute pen trajectories, split where the pen lifts."""
    seq = _array(seq)
    points = np.cumsum(seq[:, :2], axis=0)
    lifted = seq[:, 2] > pen_threshold
    out, start = [], 0
    for t in range(len(seq)):
        if lifted[t] or t == len(seq) - 1:
            out.append(points[start:t + 1])
            start = t + 1
    return [s for s in out if len(s)]


def draw_handwriting(ax, seq, color="black", linewidth=1.2):
    """Pen strokes with gaps where the pen is up; y grows upwards, equal aspect."""
    for stroke in strokes(seq):
        if len(stroke) == 1:
            ax.plot(stroke[:, 0], stroke[:, 1], ".", color=color, markersize=linewidth * 2)
        else:
            ax.plot(stroke[:, 0], stroke[:, 1], "-", color=color, linewidth=linewidth)
    ax.set_aspect("equal", adjustable="datalim")
    ax.axis("off")


def draw_waveform(ax, seq, sample_rate: int | None = 16000, color="tab:blue"):
    """Frames ``(T, F)`` (or a waveform ``(N,)``) as amplitude against time."""
    wave = _array(seq).reshape(-1)
    t = np.arange(len(wave)) / sample_rate if sample_rate else np.arange(len(wave))
    ax.plot(t, wave, color=color, linewidth=0.5)
    ax.set_xlim(t[0], t[-1] if len(t) > 1 else 1)
    ax.set_xlabel("seconds" if sample_rate else "sample")


def draw_piano_roll(ax, seq, lowest_note: int = LOWEST_NOTE):
    """A binary ``(T, 88)`` roll: notes on the y axis (MIDI numbers), time steps on the x axis."""
    roll = _array(seq)
    ax.imshow(roll.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(0, roll.shape[0], lowest_note - 0.5, lowest_note + roll.shape[1] - 0.5), vmin=0, vmax=1)
    active = np.nonzero(roll.max(0) > 0.5)[0]
    if len(active):
        ax.set_ylim(lowest_note + active.min() - 3, lowest_note + active.max() + 3)
    ax.set_xlabel("time step")
    ax.set_ylabel("MIDI note")


def draw_series(ax, seq):
    """A ``(T, D)`` time series: one line per feature (colours in feature order) against the time step."""
    values = _array(seq)
    values = values.reshape(len(values), -1)
    for d in range(values.shape[1]):
        ax.plot(np.arange(len(values)), values[:, d], color=f"C{d % 10}", linewidth=0.8)
    ax.set_xlabel("time step")


def draw(ax, kind: str, seq, **kwargs):
    """Draw one sequence of data ``kind`` (``"speech"``, ``"handwriting"``, ``"music"`` or ``"series"``)."""
    if kind == "speech":
        draw_waveform(ax, seq, **kwargs)
    elif kind == "handwriting":
        draw_handwriting(ax, seq)
    elif kind == "music":
        draw_piano_roll(ax, seq)
    elif kind == "series":
        draw_series(ax, seq)
    else:
        raise ValueError(f"unknown data kind {kind!r}; expected speech, handwriting, music or series")


def draw_primed(ax, kind: str, seq, prefix_steps: int, sample_rate: int | None = 16000):
    """One sequence whose first ``prefix_steps`` steps were given: the prefix in black, the rest in red,
    and (waveforms, piano rolls) a dashed line where the continuation starts."""
    seq = _array(seq)
    prefix, rest = seq[:prefix_steps], seq[prefix_steps:]
    if kind == "handwriting":
        draw_handwriting(ax, prefix, color="black")
        if len(rest):  # offsets continue from the prefix's last point, joined to it unless the pen lifted there
            end = prefix[:, :2].sum(0)
            if len(prefix) and prefix[-1, 2] <= 0.5:
                rest = np.concatenate([[[end[0], end[1], 0.0]], rest])
            else:
                rest = rest.copy()
                rest[0, :2] += end
            draw_handwriting(ax, rest, color="tab:red")
    elif kind == "speech":
        frame = seq.shape[1] if seq.ndim == 2 else 1
        wave = seq.reshape(-1)
        t = np.arange(len(wave)) / sample_rate if sample_rate else np.arange(len(wave))
        cut = prefix_steps * frame
        ax.plot(t[:cut], wave[:cut], color="black", linewidth=0.5)
        ax.plot(t[cut:], wave[cut:], color="tab:red", linewidth=0.5)
        ax.axvline(t[min(cut, len(t) - 1)], color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlim(t[0], t[-1] if len(t) > 1 else 1)
        ax.set_xlabel("seconds" if sample_rate else "sample")
    elif kind == "music":
        draw_piano_roll(ax, seq)
        ax.axvline(prefix_steps, color="tab:red", linestyle="--", linewidth=1.0)
    elif kind == "series":
        draw_series(ax, seq)
        ax.axvspan(prefix_steps - 0.5, len(seq) - 0.5, color="tab:red", alpha=0.08, linewidth=0)
        ax.axvline(prefix_steps - 0.5, color="tab:red", linestyle="--", linewidth=1.0)
    else:
        raise ValueError(f"unknown data kind {kind!r}; expected speech, handwriting, music or series")


def plot_primed(kind: str, sequences, prefix_steps: int, path, *, title: str | None = None, sample_rate: int = 16000):
    """Save a PNG with one row per sequence (continuations of one prefix), each drawn by :func:`draw_primed`."""
    plt = _pyplot()
    wide = kind != "handwriting"
    rows = max(1, len(sequences))
    fig, axes = plt.subplots(rows, 1, figsize=(8.0 if wide else 5.0, (1.8 if wide else 1.6) * rows + 0.6),
                             squeeze=False)
    for ax, seq in zip(axes[:, 0], sequences):
        draw_primed(ax, kind, seq, prefix_steps, sample_rate=sample_rate)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_samples(kind: str, generated, real, path, *, title: str | None = None, sample_rate: int = 16000):
    """Save a PNG with generated sequences (left column, red for waveforms) beside real ones."""
    wide = kind != "handwriting"
    return plot_sample_grid(kind, {"generated": generated, "data": real}, path, title=title,
                            sample_rate=sample_rate, colors={"generated": "tab:red"},
                            column_width=4.8 if wide else 3.8, row_height=1.8 if wide else 1.6, dpi=100,
                            title_size=None)


def plot_sample_grid(kind: str, columns: dict, path, *, title: str | None = None, sample_rate: int = 16000,
                     colors: dict | None = None, column_width: float | None = None, row_height: float | None = None,
                     dpi: int = 90, title_size: float | None = 10):
    """Save a PNG with one column per entry of ``columns`` (``{label: [seq, ...]}``), e.g. one per
    model and one for the data, the sequences of each column stacked. ``colors`` picks a waveform
    colour per column label. Piano rolls share one key range (that of every note drawn), so the
    registers of generated and real pieces compare at a glance."""
    plt = _pyplot()
    labels = list(columns)
    rows = max((len(v) for v in columns.values()), default=1) or 1
    wide = kind != "handwriting"
    column_width = column_width if column_width is not None else (3.6 if wide else 2.8)
    row_height = row_height if row_height is not None else (1.6 if wide else 1.4)
    fig, axes = plt.subplots(rows, len(labels), figsize=(column_width * len(labels) + 0.4, row_height * rows + 0.6),
                             squeeze=False)
    for col, label in enumerate(labels):
        extra = {"sample_rate": sample_rate} if kind == "speech" else {}
        if kind == "speech" and colors and label in colors:
            extra["color"] = colors[label]
        for row in range(rows):
            ax = axes[row][col]
            if row < len(columns[label]):
                draw(ax, kind, columns[label][row], **extra)
            else:
                ax.axis("off")
            if row == 0:
                ax.set_title(label, **({"fontsize": title_size} if title_size else {}))
    if kind == "music":
        drawn = [ax for row in axes for ax in row if ax.axison]
        low, high = min(min(ax.get_ylim()) for ax in drawn), max(max(ax.get_ylim()) for ax in drawn)
        for ax in drawn:
            ax.set_ylim(low, high)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
