"""A results table (Markdown) from run folders and their evaluations, as docs/results.md prints them.

Every figure comes from files the commands wrote, none is typed by hand:

- the run folder: its latest checkpoint (model, parameter count, steps trained, the early-stopping
  state: best validation step and loss, stopped or not), its config (what it was trained on: the ELBO,
  or FIVO/IWAE with K particles, in windows or not; the validation loss is that objective's negative
  bound per step) and ``history.json`` (time of each step);
- an evaluation JSON of ``pyro-vrnn evaluate`` (default ``RUN/eval_test.json``): the ELBO (``≥``, a
  bound), the importance-sampled estimate (``≈ IS``, its K, standard error over sequences and mean
  effective sample size), the SMC estimate when it was run, or the exact value of an RNN (``=``).

Usage::

    python benchmarks/results_table.py runs/nott-vrnn runs/nott-dmm --unit step
    python benchmarks/results_table.py runs/librispeech/* --eval eval_test.json --eval eval_chunks.json

Figures are log-likelihoods per sequence (``--unit sequence``, the VRNN paper's tables, higher is
better) or negative log-likelihoods per time step (``--unit step``, the music papers, lower is better).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from pyro_vrnn.train.checkpoint import load_latest  # noqa: E402
from pyro_vrnn.train.schedules import EarlyStopping  # noqa: E402
from pyro_vrnn.models.zoo import describe_spec  # noqa: E402


def run_summary(run_dir: Path) -> dict:
    """Model label, parameter count and the training facts of one run folder: its latest checkpoint
    (read by the library's checked loader) holds the step and the early-stopping state, ``history.json``
    the time each step took."""
    run_dir = Path(run_dir)
    payload, _ = load_latest(run_dir, map_location="cpu")
    trainer, config = payload["trainer"], payload["config"]
    stopping = EarlyStopping(patience=config["training"].get("patience", 0))
    stopping.load_state_dict(trainer["early_stopping"])
    history = json.loads((run_dir / "history.json").read_text())
    return {"run": str(run_dir), "label": describe_spec(config["model"]), "spec": config["model"],
            "parameters": sum(v.numel() for v in trainer["model"].values()), "steps": payload["step"],
            "train_seconds": sum(r.get("seconds", 0.0) for r in history.get("train", [])),
            "stopped_early": stopping.should_stop, "best_step": stopping.best_step,
            "best_valid": stopping.best if stopping.best_step is not None else None,
            "trained_by": trained_by(config["training"])}


def trained_by(training: dict) -> str:
    """The objective a run was trained on and how: ``ELBO``, ``FIVO (K = 4)``, with ``, windows of N`` and
    ``, L2 W`` (Adam's weight decay)."""
    elbo = training.get("elbo", "trace")
    objective = {"trace": "ELBO", "fivo": "FIVO", "iwae": "IWAE"}.get(elbo, elbo)
    if objective != "ELBO" or training.get("num_particles", 1) > 1:
        objective += f" (K = {training.get('num_particles', 1)})"
    if training.get("train_window"):
        objective += f", windows of {training['train_window']}"
    if training.get("weight_decay"):
        objective += f", L2 {training['weight_decay']:g}"
    return objective


def _figure(value, se, unit):
    """NLL per step (3 decimals) or log-likelihood per sequence (1 decimal), with its standard error."""
    return f"{-value:.3f} ± {se:.3f}" if unit == "step" else f"{value:.1f} ± {se:.1f}"


def row(summary: dict, evaluation: dict, unit: str) -> dict:
    """The cells of one table row. ``unit='step'``: NLL per step; ``'sequence'``: log-likelihood per sequence."""
    per = "_per_step" if unit == "step" else ""
    sign = -1.0 if unit == "step" else 1.0
    cells = {"model": summary["label"], "trained by": summary["trained_by"], "parameters": f"{summary['parameters']:,}" if summary["parameters"] else "—",
             "steps": f"{summary['steps']:,}" + (", stopped early" if summary["stopped_early"] else ""),
             "best step": f"{summary['best_step']:,}" if summary["best_step"] is not None else "—",
             "valid −bound/step at best": f"{summary['best_valid']:.3f}" if summary["best_valid"] is not None else "—"}
    ll, se = evaluation[f"log_likelihood{per}"], evaluation[f"log_likelihood{per}_se"]
    if evaluation.get("exact"):
        cells.update({"≥ ELBO": "—", "≈ IS (K)": "—", "= exact": _figure(ll, se, unit), "ESS": "—"})
    else:
        elbo = f"{sign * evaluation[f'elbo{per}']:.3f}" if unit == "step" else f"{evaluation['elbo']:.1f}"
        cells.update({"≥ ELBO": elbo, "≈ IS (K)": f"{_figure(ll, se, unit)} ({evaluation['num_particles']})",
                      "= exact": "—", "ESS": f"{evaluation['ess_mean']:.1f}"})
    if "smc_log_likelihood" in evaluation:
        value, se = evaluation[f"smc_log_likelihood{per}"], evaluation[f"smc_log_likelihood{per}_se"]
        cells["≈ SMC (K)"] = f"{_figure(value, se, unit)} ({evaluation['smc_num_particles']})"
        cells["SMC ESS"] = f"{evaluation['smc_ess_mean']:.1f}"
    cells["test sequences (steps)"] = f"{evaluation['num_sequences']} ({evaluation['num_steps']:,})"
    cells["train s"] = f"{summary['train_seconds']:.0f}"
    cells["eval s"] = f"{evaluation['seconds'] + evaluation.get('smc_seconds', 0.0):.0f}"  # IS (+ ELBO) and SMC
    return cells


def markdown(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(c for r in rows for c in r))
    lines = ["| " + " | ".join(columns) + " |", "| --- |" + " ---: |" * (len(columns) - 1)]
    lines += ["| " + " | ".join(r.get(c, "—") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def paired(name_a: str, a: dict, name_b: str, b: dict, key: str = "per_sequence") -> str:
    """``B - A``: the mean per-sequence difference of two evaluations of the same sequences (IS, or exact;
    ``key="smc_per_sequence"``: SMC), its standard error over sequences, and on how many sequences B is higher."""
    la, lb = a[key]["log_likelihood"], b[key]["log_likelihood"]
    if a[key]["num_steps"] != b[key]["num_steps"]:
        raise SystemExit(f"{name_a} and {name_b} were not evaluated on the same sequences")
    diff = [y - x for x, y in zip(la, lb)]
    n = len(diff)
    mean = sum(diff) / n
    se = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - 1) / n) if n > 1 else math.nan
    return f"{name_b} - {name_a} = {mean:.2f} ± {se:.2f} per sequence ({sum(d > 0 for d in diff)} of {n} higher)"


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--eval", action="append", default=None, metavar="NAME",
                        help="evaluation JSON inside each run folder, repeatable (one table each) "
                             "[default: eval_test.json]")
    parser.add_argument("--unit", choices=("step", "sequence"), default="step",
                        help="step: NLL per time step (lower is better); sequence: log-likelihood per sequence")
    parser.add_argument("--paired", action="store_true",
                        help="also each run against the one before it on the same sequences: mean difference of "
                             "the per-sequence log-likelihoods (IS or exact, and SMC where evaluated), its standard "
                             "error, and how often the later is higher")
    args = parser.parse_args(argv)
    tables = []
    for name in args.eval or ["eval_test.json"]:
        rows, evaluations = [], []
        for run in args.runs:
            path = run / name
            if not path.is_file():
                raise SystemExit(f"{path}: no evaluation (run pyro-vrnn evaluate {run} --json {path})")
            evaluations.append(json.loads(path.read_text()))
            rows.append(row(run_summary(run), evaluations[-1], args.unit))
        tables.append(f"{name}:\n\n{markdown(rows)}")
        if args.paired:
            labels = [r["model"] for r in rows]  # a label two runs share is told apart by the run's folder
            labels = [f"{label} [{run.name}]" if labels.count(label) > 1 else label
                      for label, run in zip(labels, args.runs)]
            tables.append("\n".join(paired(labels[i - 1], evaluations[i - 1], labels[i], evaluations[i])
                                     for i in range(1, len(rows))))
            if all("smc_per_sequence" in e for e in evaluations):
                tables.append("\n".join("SMC: " + paired(labels[i - 1], evaluations[i - 1], labels[i], evaluations[i],
                                                          "smc_per_sequence") for i in range(1, len(rows))))
    text = "\n\n".join(tables)
    print(text)
    return text


if __name__ == "__main__":
    main()
