"""Per-step scores of a run's sequences (``pyro-vrnn score``): ``log p(x_t | x_{<t})`` and the ESS,
one row per real step, as a CSV.

:func:`score_run` filters every sequence (:func:`~pyro_vrnn.report.sequences.load_run_sequences`:
``--data SPEC``, all of it, or the run's test split) with :func:`~pyro_vrnn.infer.scores.score`:
the SMC estimate of ``log p(x_t | x_{<t})`` (the log of the step's mean incremental weight; exact for
an RNN). Sequence ``i`` is filtered with seed ``seed * 1000003 + i`` whatever the batch, so the numbers
do not depend on ``batch_size``. **For anomaly detection**: ``log_prob`` is how surprising step ``t``
is given the steps before it; a detector flags the steps whose ``log_prob`` falls below a threshold
(e.g. a low quantile of the scores of data known to be normal). Mind the ESS: where it is near 1,
the particles hardly cover the posterior and the estimate is loose (more particles tighten it).

:func:`write_scores_csv` writes ``sequence, step, log_prob, ess`` (``step`` 0-based, as the sites
``x_{t}``) under comment lines that say what ``log_prob`` is; it writes over no file but an earlier
output of ``score`` (:mod:`pyro_vrnn.train.outputs`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from ..data import pad_batch
from ..infer import score
from ..train.outputs import SCORES_MARK, check_writable, is_scores_file, write_text_atomic
from ..train.runs import load_run
from .sequences import load_run_sequences

COLUMNS = ("sequence", "step", "log_prob", "ess")


@torch.no_grad()
def score_run(run_dir, data: str | None = None, data_options: dict | None = None, *, num_particles: int = 100,
              num_replicates: int = 1, batch_size: int = 8, seed: int = 0, device="cpu",
              checkpoint: str = "best", proposal: str = "guide") -> dict:
    """Per-step scores of every sequence of ``data`` (or the run's test split) under a run's checkpoint.

    Returns a dict: ``names``, and per sequence the lists ``log_prob`` and ``ess`` (one value per real
    step), ``label`` (what ``log_prob`` is), ``exact``, ``num_particles``, and the run, checkpoint,
    step and source read.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size (--batch-size) must be >= 1, got {batch_size}")
    model, config, normalizer, payload = load_run(run_dir, device, checkpoint)
    found = load_run_sequences(config, normalizer, model.x_dim, data, data_options)
    sequences = found.sequences
    ref = model._reference_tensor()
    log_prob, ess = [None] * len(sequences), [None] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda i: sequences[i].shape[0])
    scores = None
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, mask = pad_batch([sequences[i] for i in idx])
        scores = score(model, x.to(ref.device, ref.dtype), mask.to(ref.device), num_particles,
                       num_replicates=num_replicates, seed=[seed * 1000003 + i for i in idx], proposal=proposal)
        for row, i in enumerate(idx):
            steps = sequences[i].shape[0]
            log_prob[i] = scores.log_prob[row, :steps].tolist()
            ess[i] = scores.ess[row, :steps].tolist()
    return {"run_dir": str(run_dir), "model": config["model"]["name"], "checkpoint": payload["path"],
            "step": payload["step"], "data": data or config["data"], "source": found.source,
            "names": found.names, "log_prob": log_prob, "ess": ess, "label": scores.label, "exact": scores.exact,
            "num_particles": scores.num_particles, "num_replicates": scores.num_replicates, "seed": seed}


def scores_csv_text(result: dict) -> str:
    """The CSV text of :func:`score_run`'s result: comment lines, then ``sequence,step,log_prob,ess``."""
    out = io.StringIO()
    out.write(f"{SCORES_MARK} of {result['run_dir']} (model {result['model']}, {Path(result['checkpoint']).name} "
              f"at step {result['step']}) on {result['source']}, seed {result['seed']}\n")
    out.write(f"# log_prob: {result['label']}. How surprising step t is given the steps before it: "
              "the quantity an anomaly detector thresholds (low = surprising)\n")
    out.write("# ess: effective sample size of the particles after weighting step t"
              + (" (1: exact, no particles)" if result["exact"] else f" (of {result['num_particles']})")
              + "; step: 0-based index within the sequence\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for name, values, ess in zip(result["names"], result["log_prob"], result["ess"]):
        for t, (value, e) in enumerate(zip(values, ess)):
            writer.writerow((name, t, f"{value:.6g}", f"{e:.4g}"))
    return out.getvalue()


def write_scores_csv(result: dict, path) -> Path:
    """Write :func:`scores_csv_text` to ``path`` (through a temporary file), refusing to replace any file
    but an earlier output of ``pyro-vrnn score``."""
    check_writable(path, is_scores_file, "a scores file of pyro-vrnn score",
                   "give --out a new path (or one that holds earlier scores)")
    return write_text_atomic(path, scores_csv_text(result))
