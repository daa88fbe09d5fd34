"""Training curves: the loss per time step against the step, the best validation step marked.

matplotlib is imported only when a figure is drawn (:func:`pyplot`), with the non-interactive Agg
backend, so importing the library never needs a display or pays matplotlib's import time. A caller
that already uses pyplot (a notebook, a script with a window) keeps its own backend: the library's
figures are saved to files and closed, whatever the backend.
"""

from __future__ import annotations

import sys

import numpy as np


def pyplot():
    """``matplotlib.pyplot``, imported on first use on the Agg backend; if the caller imported pyplot
    already, its backend is left as it is (switching it would stop a notebook's inline figures)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def loss_label(elbo: str = "trace", num_particles: int = 1) -> str:
    """What a run's loss is, named by its training objective (``TrainingSettings.elbo``), for plots and logs."""
    return {"trace": "negative ELBO", "meanfield": "negative ELBO (analytic KL)",
            "iwae": f"negative IWAE bound (K = {num_particles})",
            "fivo": f"negative FIVO bound (K = {num_particles})"}.get(elbo, f"loss ({elbo})")


def plot_history(histories: dict, path, *, title: str | None = None, loss: str = "negative ELBO"):
    """Training (and validation) loss per time step against step, one line per run in ``histories``
    (``{label: {"train": [{"step", "loss"}, ...], "valid": [...], "best_step": s}}``); the best
    validation step, when given (or marked ``best`` in ``valid``), is drawn as a star. ``loss`` names the
    objective (:func:`loss_label`)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    shown = []  # the values that set the y range: the first steps' losses would flatten the rest
    for i, (label, history) in enumerate(histories.items()):
        color = f"C{i % 10}"
        train = history.get("train", [])
        if train:
            steps = np.array([r["step"] for r in train])
            loss = np.array([r["loss"] for r in train])
            window = max(1, len(loss) // 50)
            smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1:], smooth, color=color, label=f"{label} train")
            shown += list(smooth[len(smooth) // 20:])
        valid = history.get("valid", [])
        if valid:
            ax.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o--", color=color, markersize=3,
                    label=f"{label} valid")
            shown += [r["loss"] for r in valid]
            best = history.get("best_step")
            best = [r for r in valid if r["step"] == best] if best is not None else []
            if not best and any(r.get("best") for r in valid):
                best = [[r for r in valid if r.get("best")][-1]]
            if best:
                ax.plot([best[0]["step"]], [best[0]["loss"]], "*", color=color, markersize=12,
                        markeredgecolor="black", label=f"{label} best valid {best[0]['loss']:.4g}")
    finite = np.array([v for v in shown if np.isfinite(v)])
    if len(finite):
        low, high = finite.min(), finite.max()
        pad = 0.05 * (high - low) if high > low else 0.5
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{loss} per time step")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
