"""Plots: handwriting drawn as strokes with pen-up gaps, waveforms and piano rolls saved as PNGs."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from pyro_vrnn.report import plots
from pyro_vrnn.train import curves


def test_strokes_split_where_the_pen_lifts_and_accumulate_offsets():
    seq = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [5.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0],
                        [2.0, 2.0, 0.0]])
    parts = plots.strokes(seq)
    assert [len(p) for p in parts] == [2, 3, 1]
    np.testing.assert_allclose(parts[0], [[1, 0], [2, 1]])
    np.testing.assert_allclose(parts[1], [[7, 1], [7, 2], [8, 2]])  # a gap: (2,1) -> (7,1) is not drawn
    np.testing.assert_allclose(parts[2], [[10, 4]])


def test_handwriting_axes_hold_one_line_per_stroke():
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    seq = np.array([[1, 0, 0], [1, 1, 1], [5, 0, 0], [0, 1, 0], [1, 0, 1]], dtype=float)
    plots.draw_handwriting(ax, seq)
    assert len(ax.lines) == 2
    plt.close(fig)


@pytest.mark.parametrize("kind,shape", [("speech", (6, 20)), ("handwriting", (30, 3)), ("music", (16, 88))])
def test_plot_samples_and_grid_write_pngs(tmp_path, kind, shape):
    rng = np.random.default_rng(0)
    make = (lambda: rng.normal(size=shape)) if kind != "music" else (lambda: (rng.random(shape) > 0.9) * 1.0)
    if kind == "handwriting":
        make = lambda: np.concatenate([rng.normal(size=(shape[0], 2)), (rng.random((shape[0], 1)) > 0.8)], 1)  # noqa
    path = plots.plot_samples(kind, [make(), make()], [make()], tmp_path / "s.png", title="t")
    assert path.stat().st_size > 1000
    grid = plots.plot_sample_grid(kind, {"A": [make()], "B": [make(), make()]}, tmp_path / "g.png")
    assert grid.stat().st_size > 1000


def test_piano_rolls_of_a_grid_share_the_key_range_of_every_note_drawn(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: saved.append(fig))
    low, high = np.zeros((8, 88)), np.zeros((8, 88))
    low[:, 10] = 1      # MIDI note 31 (the lowest key is 21)
    high[:, 70] = 1     # MIDI note 91
    plots.plot_sample_grid("music", {"generated": [low], "data": [high, high]}, tmp_path / "g.png")
    (fig,) = saved
    drawn = [ax for ax in fig.axes if ax.axison]
    assert len(drawn) == 3 and not fig.axes[2].axison  # the generated column's empty second row
    assert {tuple(ax.get_ylim()) for ax in drawn} == {(31 - 3, 91 + 3)}


def test_plot_history_and_unknown_kind(tmp_path):
    history = {"train": [{"step": i, "loss": 1.0 / i} for i in range(1, 30)], "valid": [{"step": 10, "loss": 0.2}]}
    assert curves.plot_history({"m": history, "empty": {}}, tmp_path / "h.png").stat().st_size > 1000
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="unknown data kind"):
        plots.draw(ax, "video", np.zeros((2, 2)))
    plt.close(fig)


def test_drawing_a_figure_keeps_the_backend_of_a_caller_that_uses_pyplot(tmp_path):
    """A notebook's inline backend must survive training (which draws training.png): the library picks
    Agg only when pyplot is not imported yet. Run in a fresh interpreter, whose backend is its own."""
    script = (
        "import matplotlib; matplotlib.use('pdf'); import matplotlib.pyplot\n"
        "from pyro_vrnn.train.curves import plot_history\n"
        "history = {'run': {'train': [{'step': 1, 'loss': 2.0}], 'valid': []}}\n"
        f"plot_history(history, {str(tmp_path / 'h.png')!r})\n"
        "print(matplotlib.get_backend())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pdf" and (tmp_path / "h.png").stat().st_size > 1000
