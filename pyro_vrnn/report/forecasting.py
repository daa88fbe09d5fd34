"""Forecasts of a run's sequences (``pyro-vrnn forecast``), in the data's own units, as a CSV.

:func:`forecast_run` continues every sequence (:func:`~pyro_vrnn.report.sequences.load_run_sequences`:
``--data SPEC``, all of it, or the run's test split) ``horizon`` steps past its last real step with
:func:`~pyro_vrnn.models.predictive.forecast` (``num_samples`` draws from the posterior predictive:
the sequence's latents from the guide, the future from the model), un-normalizes the draws with the
run's normalizer and summarizes each future step and feature by the mean and the 5%, 50% and 95%
quantiles of the draws (Monte-Carlo estimates from ``num_samples`` draws). ``seed`` seeds Pyro once;
the same seed and ``batch_size`` give the same numbers.

:func:`write_forecast_csv` writes ``sequence, step, feature, mean, q05, q50, q95`` (``step``: the
0-based index of the future step in the sequence's own time line, ``L, L+1, ...`` after ``L`` real
steps) under comment lines; it writes over no file but an earlier output of ``forecast``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyro
import torch

from ..data import pad_batch
from ..models.predictive import forecast
from ..train.outputs import FORECAST_MARK, check_writable, is_forecast_file, write_text_atomic
from ..train.runs import load_run
from .sequences import load_run_sequences

COLUMNS = ("sequence", "step", "feature", "mean", "q05", "q50", "q95")
QUANTILES = (0.05, 0.5, 0.95)


@torch.no_grad()
def forecast_run(run_dir, data: str | None = None, data_options: dict | None = None, *, horizon: int,
                 num_samples: int = 100, batch_size: int = 8, seed: int = 0, device="cpu",
                 checkpoint: str = "best", temperature: float = 1.0) -> dict:
    """Forecasts of every sequence of ``data`` (or the run's test split), ``horizon`` steps ahead.

    Returns a dict: ``names``, ``feature_names``, ``lengths`` (real steps of each sequence), per
    sequence ``mean`` and ``quantiles`` (``(H, X)`` and ``(3, H, X)`` tensors, data units, at
    :data:`QUANTILES`), the history in data units (``history``, ``(L, X)`` each, for figures) and the
    run, checkpoint and source read.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size (--batch-size) must be >= 1, got {batch_size}")
    model, config, normalizer, payload = load_run(run_dir, device, checkpoint)
    found = load_run_sequences(config, normalizer, model.x_dim, data, data_options)
    sequences, normalizer = found.sequences, found.normalizer
    ref = model._reference_tensor()
    pyro.set_rng_seed(seed)
    means, quantiles = [None] * len(sequences), [None] * len(sequences)
    levels = torch.tensor(QUANTILES, dtype=torch.float64)
    order = sorted(range(len(sequences)), key=lambda i: sequences[i].shape[0])
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, mask = pad_batch([sequences[i] for i in idx])
        drawn = forecast(model, x.to(ref.device, ref.dtype), mask.to(ref.device), horizon=horizon,
                         num_samples=num_samples, temperature=temperature).samples
        drawn = normalizer.denormalize(drawn.double().cpu())                 # (S, B, H, X), data units
        summary = torch.quantile(drawn, levels, dim=0)                        # (3, B, H, X)
        for row, i in enumerate(idx):
            means[i], quantiles[i] = drawn[:, row].mean(0), summary[:, row]
    return {"run_dir": str(run_dir), "model": config["model"]["name"], "checkpoint": payload["path"],
            "step": payload["step"], "data": data or config["data"], "source": found.source,
            "names": found.names, "feature_names": found.feature_names,
            "lengths": [s.shape[0] for s in sequences],
            "history": [normalizer.denormalize(s.double()) for s in sequences],
            "mean": means, "quantiles": quantiles, "horizon": horizon, "num_samples": num_samples,
            "temperature": temperature, "seed": seed}


def forecast_csv_text(result: dict) -> str:
    """The CSV text of :func:`forecast_run`'s result: comment lines, then the :data:`COLUMNS`."""
    out = io.StringIO()
    out.write(f"{FORECAST_MARK} of {result['run_dir']} (model {result['model']}, {Path(result['checkpoint']).name} "
              f"at step {result['step']}) on {result['source']}, seed {result['seed']}\n")
    out.write(f"# {result['horizon']} steps past each sequence's last real step, {result['num_samples']} draws from "
              f"the posterior predictive (latents of the sequence from the guide, the future from the model"
              + (f", temperature {result['temperature']:g}" if result["temperature"] != 1 else "") + ")\n")
    out.write("# in the data's own units: mean and the 5%, 50%, 95% quantiles of the draws (Monte-Carlo estimates); "
              "step: 0-based index in the sequence's time line\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    features = result["feature_names"]
    for name, length, mean, quantiles in zip(result["names"], result["lengths"], result["mean"], result["quantiles"]):
        for h in range(mean.shape[0]):
            for d, feature in enumerate(features):
                writer.writerow((name, length + h, feature, f"{float(mean[h, d]):.6g}",
                                 *(f"{float(quantiles[q, h, d]):.6g}" for q in range(len(QUANTILES)))))
    return out.getvalue()


def write_forecast_csv(result: dict, path) -> Path:
    """Write :func:`forecast_csv_text` to ``path`` (through a temporary file), refusing to replace any
    file but an earlier output of ``pyro-vrnn forecast``."""
    check_writable(path, is_forecast_file, "a forecast file of pyro-vrnn forecast",
                   "give --out a new path (or one that holds an earlier forecast)")
    return write_text_atomic(path, forecast_csv_text(result))
