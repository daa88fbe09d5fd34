"""The VRNN paper's Table 1 for one dataset: train several models with the same budget and seed,
evaluate each on the test split, and write the table and a figure of samples side by side.

::

    rows = compare("speech-synthetic", ["rnn-normal", "storn", "vrnn-gmm"], steps=200, out="cmp")

writes ``cmp/<model>/`` (a run folder each: config, checkpoints, history, ``eval_test.json``,
``samples/``), ``cmp/table.md``, ``cmp/table.csv``, ``cmp/results.json``, ``cmp/samples.png`` (one
column per model, one for the data) and ``cmp/training.png`` (loss curves), and returns the rows.

Columns: ``≥`` the ELBO (a lower bound), ``≈`` the importance-sampled log-likelihood (K
particles), ``=`` the exact log-likelihood of a model without latents (RNN). Higher is better.
With ``estimators=("is", "smc")`` a ``≈ SMC`` column (sequential Monte Carlo, the same K) comes
after the IS one, and the rows carry the :data:`SMC_FIELDS` (ESS, resampling counts).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

from ..models.zoo import SIZE_DEFAULTS, architecture, count_parameters, describe_spec, model_spec
from ..train.curves import loss_label, plot_history
from ..train.outputs import check_comparison_folder, write_text_atomic
from ..train.runs import HISTORY, load_data, load_run, make_config, train_run
from . import plots
from .evaluation import evaluate_run
from .sampling import generate_samples, real_examples, typical_length

DEFAULT_MODELS = ["rnn-normal", "rnn-gmm", "storn", "vrnn-i", "vrnn-normal", "vrnn-gmm"]  # as `pyro-vrnn compare`
CSV_FIELDS = ["model", "label", "exact", "elbo", "elbo_se", "log_likelihood", "log_likelihood_se",
              "log_likelihood_mc_se", "elbo_per_step", "log_likelihood_per_step", "log_likelihood_per_step_se",
              "nll_per_step", "num_particles", "num_sequences", "num_steps", "parameters", "train_steps",
              "eval_step", "train_seconds", "eval_seconds", "final_train_loss", "run_dir"]


SMC_FIELDS = ["smc_log_likelihood", "smc_log_likelihood_se", "smc_log_likelihood_per_step",
              "smc_log_likelihood_per_step_se", "smc_nll_per_step", "smc_num_particles", "smc_ess_mean",
              "smc_ess_min", "smc_resampling_events", "smc_resampling_rate", "smc_seconds"]


def csv_fields(rows: list) -> list:
    """:data:`CSV_FIELDS`, and the :data:`SMC_FIELDS` when the rows have an SMC column."""
    return CSV_FIELDS + (SMC_FIELDS if any("smc_log_likelihood" in r for r in rows) else [])


def default_unit(kind: str) -> str:
    """The unit the literature uses: nats per time step for music, per sequence otherwise."""
    return "step" if kind == "music" else "sequence"


def compare(data: str, models=None, *, steps: int, out, seed: int = 0, data_options: dict | None = None,
            z_dim: int | None = None, h_dim: int | None = None, feature_dims=(64,), hidden_dims=None,
            num_components: int = 20,
            transition: str = "lstm", prior=None, guide=None, emission=None, training: dict | None = None,
            particles: int = 100, chunk_size: int | None = None, eval_batch_size: int = 8, split: str = "test",
            max_eval_sequences: int | None = None, num_samples: int = 3, sample_length: int | None = None,
            unit: str | None = None, device="auto", resume: bool = False, overwrite: bool = False,
            progress: bool = True, log=print, estimators=("is",), dataset=None) -> list:
    """Train and evaluate each of ``models`` (default: the five seed models) on ``data``; return the
    table rows (dicts with the :data:`CSV_FIELDS`), best first is *not* imposed: rows keep the order asked.

    Every model gets the same ``steps``, batch, learning rate and ``seed``. Models that resolve to
    the same architecture on this data (``rnn-gmm`` and ``rnn-normal`` on binary music, both
    Bernoulli) are trained once; the skipped names are logged and listed in ``results.json``.
    An earlier comparison in ``out`` (its ``results.json``, or runs of these models) is refused
    (:class:`~pyro_vrnn.train.outputs.OutputError`) unless ``resume=True`` (continue or reuse its runs)
    or ``overwrite=True`` (train them again from scratch and replace its table). ``dataset``: ``data``
    already loaded with ``data_options`` (default: loaded here).
    """
    models = list(models or DEFAULT_MODELS)
    if not models:
        raise ValueError("no models to compare")
    if resume and overwrite:
        raise ValueError("resume (--resume) and overwrite (--overwrite) contradict each other")
    check_comparison_folder(out, models, resume=resume, overwrite=overwrite)
    if steps < 1:
        raise ValueError(f"steps (--steps) must be >= 1, got {steps}")
    out = Path(out)
    dataset = dataset if dataset is not None else load_data({"data": data, "data_options": data_options or {}})
    unit = unit or default_unit(dataset.kind)
    if unit not in ("sequence", "step"):
        raise ValueError(f"unit must be 'sequence' or 'step', got {unit!r}")
    specs, seen, skipped = [], {}, []
    if emission is None and dataset.emission == "bernoulli":  # 0/1 data (an all-binary series)
        emission = "bernoulli"
    for name in models:
        spec = model_spec(name, dataset.x_dim, kind=dataset.kind, prior=prior, guide=guide, emission=emission,
                          transition=transition, z_dim=z_dim, h_dim=h_dim, feature_dims=feature_dims,
                          hidden_dims=hidden_dims, num_components=num_components)
        key = architecture(spec)
        if key in seen:
            skipped.append({"model": name, "same_as": seen[key]})
            log(f"compare: skipping {name}: on {dataset.kind} data it is the same model as {seen[key]} "
                f"({spec['emission']} emission)")
            continue
        seen[key] = name
        specs.append(spec)
    out.mkdir(parents=True, exist_ok=True)
    log(dataset.describe())
    rows, histories, columns = [], {}, {}
    length = sample_length or typical_length(dataset, dataset.kind)
    for spec in specs:
        name = spec["name"]
        config = make_config(spec, data, data_options=data_options, seed=seed, steps=steps, **(training or {}))
        log(f"\n== {describe_spec(spec)} ({name}): training {steps} steps")
        result = train_run(config, out / name, resume=resume, overwrite=overwrite, device=device, dataset=dataset,
                           progress=progress, log=log)
        log(f"== {name}: evaluating on {split} with {particles} particles")
        evaluation = evaluate_run(out / name, split, num_particles=particles, chunk_size=chunk_size,
                                  batch_size=eval_batch_size, seed=seed, device=device, dataset=dataset,
                                  max_sequences=max_eval_sequences, estimators=estimators, progress=progress)
        write_text_atomic(out / name / f"eval_{split}.json", json.dumps(evaluation, indent=2))
        model = load_run(out / name, device)[0]  # the best on validation when the run has one, as evaluated
        samples = generate_samples(model, dataset.normalizer, dataset.kind, num_samples, length, seed)
        label = describe_spec(spec)
        columns[label] = list(samples)
        histories[label] = json.loads((out / name / HISTORY).read_text()) if (out / name / HISTORY).exists() else {}
        rows.append({
            "model": name, "label": label, "exact": evaluation["exact"],
            **{k: evaluation[k] for k in CSV_FIELDS + SMC_FIELDS if k in evaluation and k not in ("model", "exact")},
            "parameters": count_parameters(model), "train_steps": result["step"], "eval_step": evaluation["step"],
            "train_seconds": round(result["seconds"], 2), "eval_seconds": round(evaluation["seconds"], 2),
            "final_train_loss": result["final_loss"], "run_dir": str(out / name),
        })
        log(f"== {name}: ELBO {evaluation['elbo']:.2f}, log-likelihood {evaluation['log_likelihood']:.2f} per "
            f"sequence ({evaluation['log_likelihood_per_step']:.4f} per step); train {result['seconds']:.1f} s, "
            f"eval {evaluation['seconds']:.1f} s")
    columns["data (test)"] = real_examples(dataset, "test", num_samples, length)
    rate = int(dataset.info.get("sample_rate") or 16000)
    plots.plot_sample_grid(dataset.kind, columns, out / "samples.png", title=f"samples, {steps} steps each: {data}",
                           sample_rate=rate)
    objective = make_config(specs[0], data, steps=steps, **(training or {}))["training"] if specs else {}
    plot_history(histories, out / "training.png", title=data,
                 loss=loss_label(objective.get("elbo", "trace"), objective.get("num_particles", 1)))
    default_sizes = SIZE_DEFAULTS[None]  # sizes not given: each family's own (a DMM's in its run's config.json)
    meta = {"data": data, "data_options": data_options or {}, "kind": dataset.kind, "synthetic": dataset.synthetic,
            "split": split, "unit": unit, "steps": steps, "seed": seed, "particles": particles, "skipped": skipped,
            "estimators": list(estimators),
            "sizes": {"z_dim": z_dim or default_sizes["z_dim"], "h_dim": h_dim or default_sizes["h_dim"],
                      "feature_dims": list(feature_dims),
                      "hidden_dims": list(hidden_dims or default_sizes["hidden_dims"]), "num_components": num_components},
            "training": make_config(specs[0], data, steps=steps, **(training or {}))["training"] if specs else {}}
    write_table(rows, out, meta)
    return rows


def _fmt(value, digits):
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def meaning(meta: dict) -> str:
    """One line that says what the numbers of the table are."""
    per = "nats per time step" if meta["unit"] == "step" else "nats per test sequence"
    what = "negative log-likelihood (lower is better)" if meta["unit"] == "step" else \
        "log-likelihood (higher is better)"
    norm = "" if meta["kind"] == "music" else " of the normalized data"
    bound = ("the negative ELBO (an upper bound on the NLL)" if meta["unit"] == "step"
             else "the ELBO (a lower bound on the log-likelihood)")
    smc = (", ≈ SMC the sequential Monte Carlo estimate (K particles from the guide, resampled when the "
           "effective sample size falls below K/2)") if "smc" in meta.get("estimators", ()) else ""
    return (f"Average {meta['split']} {what} in {per}{norm}: the ≥ column is {bound}, ≈ the importance-sampled "
            f"estimate with K={meta['particles']} particles{smc}, = exact (RNNs have no latents); ± is one "
            f"standard error over {meta['split']} sequences.")


def markdown_table(rows: list, meta: dict) -> str:
    """The table in Markdown, in the unit of ``meta["unit"]``."""
    step = meta["unit"] == "step"
    smc = any("smc_log_likelihood" in r for r in rows)
    if step:
        header = "| model | ≥ −ELBO (NLL bound) | ≈ IS NLL |" + (" ≈ SMC NLL |" if smc else "") + \
            " = exact NLL | parameters | train s |"
    else:
        header = "| model | ≥ ELBO | ≈ IS log-likelihood |" + (" ≈ SMC log-likelihood |" if smc else "") + \
            " = exact log-likelihood | parameters | train s |"
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if smc else "")]
    for r in rows:
        if step:
            elbo, ll, se, d = -r["elbo_per_step"], -r["log_likelihood_per_step"], r["log_likelihood_per_step_se"], 3
        else:
            elbo, ll, se, d = r["elbo"], r["log_likelihood"], r["log_likelihood_se"], 1
        cell = f"{_fmt(ll, d)} ± {_fmt(se, d)}"
        if r["exact"]:
            cells = ["—", "—", cell]
        else:
            cells = [_fmt(elbo, d), cell, "—"]
        if smc:
            cells.insert(2, "—" if r["exact"] or "smc_log_likelihood" not in r else _smc_cell(r, step, d))
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {r['parameters']:,} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def _smc_cell(row: dict, step: bool, digits: int) -> str:
    value = -row["smc_log_likelihood_per_step"] if step else row["smc_log_likelihood"]
    se = row["smc_log_likelihood_per_step_se"] if step else row["smc_log_likelihood_se"]
    return f"{_fmt(value, digits)} ± {_fmt(se, digits)}"


def write_table(rows: list, out, meta: dict) -> dict:
    """Write ``table.md`` (with a title and the one-line meaning), ``table.csv`` and ``results.json``."""
    out = Path(out)
    title = (f"Test results on {meta['data']}{' (SYNTHETIC)' if meta.get('synthetic') else ''}: {meta['steps']} "
             f"training steps per model, seed {meta['seed']}")
    skipped = "".join(f"\n\n{s['model']} was not trained: on {meta['kind']} data it is the same model as "
                      f"{s['same_as']}." for s in meta.get("skipped", []))
    write_text_atomic(out / "table.md", f"### {title}\n\n{markdown_table(rows, meta)}\n\n{meaning(meta)}{skipped}\n")
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=csv_fields(rows), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    write_text_atomic(out / "table.csv", table.getvalue())
    write_text_atomic(out / "results.json", json.dumps({**meta, "rows": rows, "meaning": meaning(meta),
                                                  "written": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))
    return {"markdown": str(out / "table.md"), "csv": str(out / "table.csv"), "json": str(out / "results.json")}
