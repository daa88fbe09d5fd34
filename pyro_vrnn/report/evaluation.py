"""Dataset-level evaluation: ELBO (the "≥" column) and importance-sampled log-likelihood (the "≈"
column) over a whole split, per sequence and per time step, with standard errors.

For each sequence ``i`` with ``T_i`` real steps, :func:`~pyro_vrnn.importance.importance_estimate`
gives ``L_i ≈ log p(x_i)`` and ``E_i`` (the ELBO) from ``K`` particles. Over ``N`` sequences:

- per sequence: ``mean_i L_i`` (the VRNN paper's unit), standard error ``sd_i(L_i) / sqrt(N)``
  (spread over sequences) and ``mc_se = sqrt(sum_i se_i^2) / N`` (Monte-Carlo error of the estimate);
- per time step: ``sum_i L_i / sum_i T_i`` (the music papers' unit; NLL is its negative), with the
  ratio estimator's standard error ``sqrt(N / (N-1) sum_i (L_i - r T_i)^2) / sum_i T_i``.

For a model without latents (an RNN) both columns equal the exact log-likelihood.

With ``estimators=("is", "smc")`` an SMC column (:func:`smc_columns`, keys ``smc_*``) comes beside them:
the sequential Monte Carlo estimate of :mod:`pyro_vrnn.infer.smc`, summarized the same way, with its
effective sample sizes and resampling counts.
"""

from __future__ import annotations

import math
import time

import pyro
import torch

from ..data import pad_batch
from ..infer import smc_estimate
from ..infer.importance import importance_estimate
from ..infer.memory import available_memory, check_max_memory, check_memory, importance_bytes, smc_bytes
from ..train.checkpoint import seeded
from ..train.progress import progress_bar
from ..train.runs import load_data, load_run

MEMORY_BUDGET = 2e8  # float32 elements of emission parameters kept per particle chunk (about 0.8 GB)


def auto_chunk_size(model, batch_size: int, num_steps: int, num_particles: int, max_memory=None) -> int:
    """Particles per chunk so that the emission parameters a trace keeps stay under :data:`MEMORY_BUDGET`,
    and the chunk's work (:func:`~pyro_vrnn.infer.memory.importance_bytes`) under half of ``max_memory``
    (default: the memory available now)."""
    components = getattr(model.emission, "num_components", 1) or 1
    per_particle = 3 * batch_size * num_steps * model.x_dim * components
    chunk = int(max(1, min(num_particles, MEMORY_BUDGET // max(per_particle, 1))))
    limit = check_max_memory(max_memory)
    limit = (limit if limit is not None else available_memory(model._reference_tensor().device)) / 2
    fixed = importance_bytes(model, batch_size, num_steps, num_particles, 0)  # the weights
    each = importance_bytes(model, batch_size, num_steps, num_particles, 1) - fixed
    return int(max(1, min(chunk, (limit - fixed) // max(each, 1))))


def check_evaluation_memory(model, sequences, *, num_particles: int, chunk_size: int | None, batch_size: int,
                            estimators=("is",), max_memory=None) -> None:
    """Refuse, before any batch runs, an evaluation whose largest batch (``batch_size`` sequences of the
    longest length) needs more memory than ``max_memory`` (default: available now): importance
    sampling's weights and chunk, SMC's particles (``ValueError`` naming ``--particles`` or ``--chunk-size``)."""
    batch = min(batch_size, len(sequences))
    steps = max(s.shape[0] for s in sequences)
    device = model._reference_tensor().device
    chunk = chunk_size or auto_chunk_size(model, batch, steps, num_particles, max_memory)
    needed = importance_bytes(model, batch, steps, num_particles, chunk)
    culprit = (f"chunk_size={chunk_size} (--chunk-size)" if chunk_size and
               importance_bytes(model, batch, steps, num_particles, 1) < needed / 2
               else f"num_particles={num_particles} (--particles)")
    check_memory(needed, f"importance sampling of {batch} sequence(s) x {steps} steps", culprit,
                 max_memory=max_memory, device=device, knobs=", the particles run together (--chunk-size) or the "
                 "sequences evaluated together (--batch-size)")
    if "smc" in estimators:
        check_memory(smc_bytes(model, batch, steps, num_particles),
                     f"SMC (--estimator smc) of {batch} sequence(s) x {steps} steps",
                     f"num_particles={num_particles} (--particles)", max_memory=max_memory, device=device,
                     knobs=" or the sequences evaluated together (--batch-size)")


def _mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def _ratio_se(values: list[float], steps: list[float]) -> tuple[float, float]:
    n, total = len(values), sum(steps)
    ratio = sum(values) / total
    if n < 2:
        return ratio, 0.0
    resid = sum((v - ratio * t) ** 2 for v, t in zip(values, steps))
    return ratio, math.sqrt(n / (n - 1) * resid) / total


@torch.no_grad()
def evaluate_sequences(model, sequences, *, num_particles: int = 100, chunk_size: int | None = None,
                       batch_size: int = 8, seed: int | None = 0, progress=None, parallel=None,
                       estimators=("is",), max_memory=None) -> dict:
    """ELBO and importance-sampled log-likelihood of ``model`` on a list of ``(T_i, D)`` sequences.

    Sequences are evaluated in length-sorted batches of ``batch_size`` (so little padding), particles
    in chunks of ``chunk_size`` (default: :func:`auto_chunk_size`). ``seed`` (if not None) seeds Pyro
    first, so the same seed and model give the same numbers; the caller's random state is restored
    after (:func:`~pyro_vrnn.train.checkpoint.seeded`). Returns a JSON-ready dict: the summary
    figures (see the module docstring) and ``per_sequence`` lists in the order of ``sequences``;
    ``estimators=("is", "smc")`` adds the SMC column (:func:`smc_columns`, the same ``K``).

    ``parallel`` (a :class:`~pyro_vrnn.distributed.DataParallel`): the batches are dealt to the
    processes, batch ``b`` seeded by ``(seed, b)``, and the per-sequence results gathered on every
    process, so the figures do not depend on the number of processes.

    ``max_memory`` (bytes; default the memory available now): an evaluation whose largest batch needs
    more is refused before it starts (:func:`check_evaluation_memory`). ``progress``: called with the
    number of sequences of each finished batch (IS batches, then SMC's), e.g. a ``tqdm`` bar's ``update``.
    """
    if num_particles < 1:
        raise ValueError(f"num_particles (--particles) must be >= 1, got {num_particles}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size (--chunk-size) must be >= 1, got {chunk_size}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if not sequences:
        raise ValueError("no sequences to evaluate")
    estimators = check_estimators(estimators)
    check_evaluation_memory(model, sequences, num_particles=num_particles, chunk_size=chunk_size,
                            batch_size=batch_size, estimators=estimators, max_memory=max_memory)
    # seeded work restores the caller's generators (batch seeds under parallel reseed per batch)
    with seeded(0 if seed is None and parallel is not None else seed):
        ref = model._reference_tensor()
        order = sorted(range(len(sequences)), key=lambda i: sequences[i].shape[0])
        fields = ("log_likelihood", "log_likelihood_se", "elbo", "elbo_se", "ess", "num_steps")
        per_seq = {f: [0.0] * len(sequences) for f in fields}
        used_particles = num_particles
        start = time.perf_counter()
        for number, b in enumerate(range(0, len(order), batch_size)):
            if parallel is not None:
                if not parallel.owns_batch(number):
                    continue
                pyro.set_rng_seed(parallel.batch_seed(seed or 0, number))
            idx = order[b:b + batch_size]
            x, mask = pad_batch([sequences[i] for i in idx])
            x, mask = x.to(ref.device, ref.dtype), mask.to(ref.device)
            chunk = chunk_size or auto_chunk_size(model, len(idx), x.shape[1], num_particles, max_memory)
            est = importance_estimate(model.model, model.guide, x, mask, num_particles=num_particles, chunk_size=chunk,
                                      max_memory=max_memory)
            used_particles = est.num_particles
            for f in fields:
                for i, v in zip(idx, getattr(est, f).tolist()):
                    per_seq[f][i] = float(v)
            if progress is not None:
                progress(len(idx))
    if parallel is not None:  # each process filled its own batches' entries, zeros elsewhere
        per_seq = parallel.combine(per_seq)
    ll, elbo, steps = per_seq["log_likelihood"], per_seq["elbo"], per_seq["num_steps"]
    n = len(sequences)
    ll_mean, ll_se = _mean_se(ll)
    elbo_mean, elbo_se = _mean_se(elbo)
    ll_step, ll_step_se = _ratio_se(ll, steps)
    elbo_step, elbo_step_se = _ratio_se(elbo, steps)
    exact = not model.has_latents
    return {
        "exact": exact,
        "num_particles": used_particles,
        "num_sequences": n,
        "num_steps": int(sum(steps)),
        "log_likelihood": ll_mean,
        "log_likelihood_se": ll_se,
        "log_likelihood_mc_se": math.sqrt(sum(s * s for s in per_seq["log_likelihood_se"])) / n,
        "elbo": elbo_mean,
        "elbo_se": elbo_se,
        "elbo_mc_se": math.sqrt(sum(s * s for s in per_seq["elbo_se"])) / n,
        "log_likelihood_per_step": ll_step,
        "log_likelihood_per_step_se": ll_step_se,
        "elbo_per_step": elbo_step,
        "elbo_per_step_se": elbo_step_se,
        "nll_per_step": -ll_step,
        "ess_mean": sum(per_seq["ess"]) / n,
        "seconds": time.perf_counter() - start,
        "per_sequence": per_seq,
        **(smc_columns(model, sequences, num_particles=num_particles, batch_size=batch_size, seed=seed,
                       parallel=parallel, progress=progress, max_memory=max_memory) if "smc" in estimators else {}),
    }


ESTIMATORS = ("is", "smc")


def check_estimators(estimators) -> tuple:
    """``estimators`` as a tuple of names from :data:`ESTIMATORS` (``"is"`` always runs: the ELBO column
    comes from its particles); raise ``ValueError`` naming an unknown one."""
    names = tuple(e.strip() for e in (estimators.split(",") if isinstance(estimators, str) else estimators))
    unknown = [e for e in names if e not in ESTIMATORS]
    if unknown or not names:
        raise ValueError(f"unknown estimator(s) {unknown or names!r} in estimators (--estimator); expected a comma-separated "
                         f"list of {', '.join(ESTIMATORS)}")
    return tuple(dict.fromkeys(("is",) + names))


@torch.no_grad()
def smc_columns(model, sequences, *, num_particles: int = 100, batch_size: int = 8, seed: int | None = 0,
                proposal: str = "guide", resampling: str = "systematic", ess_threshold: float = 0.5,
                parallel=None, progress=None, max_memory=None) -> dict:
    """The SMC column for :func:`evaluate_sequences`: keys ``smc_*``, summarized as the IS column is.

    Per sequence ``L_i = log p_hat(x_i)`` from :func:`~pyro_vrnn.infer.smc_estimate` (``K`` particles from
    the guide, systematic resampling when ``ESS < K / 2``); sequence ``i`` of ``sequences`` is filtered
    with seed ``seed * 1000003 + i``, so the figures do not depend on ``batch_size``. Also the effective
    sample size (mean and minimum over each sequence's steps, after weighting) and the number of
    resampling events, per sequence (``smc_per_sequence``) and overall. ``parallel``: the batches are
    dealt to the processes and the per-sequence results gathered (the same figures: the seeds are per sequence).
    ``progress``: called with the number of sequences of each finished batch; ``max_memory``: see
    :func:`~pyro_vrnn.infer.smc_estimate`.
    """
    ref = model._reference_tensor()
    base = int(torch.randint(0, 2**40, ()).item()) if seed is None else seed * 1000003
    order = sorted(range(len(sequences)), key=lambda i: sequences[i].shape[0])
    fields = ("log_likelihood", "ess_mean", "ess_min", "resampling_events", "num_steps")
    per_seq = {f: [0.0] * len(sequences) for f in fields}
    start, est = time.perf_counter(), None
    for number, b in enumerate(range(0, len(order), batch_size)):
        if parallel is not None and not parallel.owns_batch(number):
            continue
        idx = order[b:b + batch_size]
        x, mask = pad_batch([sequences[i] for i in idx])
        x, mask = x.to(ref.device, ref.dtype), mask.to(ref.device)
        est = smc_estimate(model, x, mask, num_particles, proposal, resampling, ess_threshold,
                           seed=[base + i for i in idx], max_memory=max_memory)
        values = (est.log_likelihood, est.ess_mean, est.ess_min, est.num_resampling_events, est.num_steps)
        for f, column in zip(fields, values):
            for i, v in zip(idx, column.tolist()):
                per_seq[f][i] = float(v)
        if progress is not None:
            progress(len(idx))
    if parallel is not None:  # each process filled its own batches' entries, zeros elsewhere
        per_seq = parallel.combine(per_seq)
    ll, steps = per_seq["log_likelihood"], per_seq["num_steps"]
    ll_mean, ll_se = _mean_se(ll)
    ll_step, ll_step_se = _ratio_se(ll, steps)
    events = sum(per_seq["resampling_events"])
    return {
        "smc_label": est.label if est is not None else None,  # None only in a process that had no batch
        "smc_num_particles": est.num_particles if est is not None else num_particles,
        "smc_proposal": proposal, "smc_resampling": resampling, "smc_ess_threshold": ess_threshold,
        "smc_log_likelihood": ll_mean,
        "smc_log_likelihood_se": ll_se,
        "smc_log_likelihood_per_step": ll_step,
        "smc_log_likelihood_per_step_se": ll_step_se,
        "smc_nll_per_step": -ll_step,
        "smc_ess_mean": sum(e * t for e, t in zip(per_seq["ess_mean"], steps)) / sum(steps),
        "smc_ess_min": min(per_seq["ess_min"]),
        "smc_resampling_events": events,
        "smc_resampling_rate": events / sum(steps),
        "smc_seconds": time.perf_counter() - start,
        "smc_per_sequence": per_seq,
    }


def format_summary(result: dict) -> str:
    """A short plain-text table of an evaluation result."""
    rows = [("", "per sequence", "per time step")]
    ll_label = "log-likelihood (exact)" if result["exact"] else f"log-likelihood (≈, IS K={result['num_particles']})"
    rows.append(("ELBO (≥)", f"{result['elbo']:.2f} ± {result['elbo_se']:.2f}",
                 f"{result['elbo_per_step']:.4f} ± {result['elbo_per_step_se']:.4f}"))
    rows.append((ll_label, f"{result['log_likelihood']:.2f} ± {result['log_likelihood_se']:.2f}",
                 f"{result['log_likelihood_per_step']:.4f} ± {result['log_likelihood_per_step_se']:.4f}"))
    rows += smc_rows(result)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append(f"{result['num_sequences']} sequences, {result['num_steps']} steps; ± is the standard error over "
                 f"sequences (Monte-Carlo s.e. of the IS estimate: {result['log_likelihood_mc_se']:.3g} per sequence)")
    if not result["exact"]:
        k, ess = result["num_particles"], result["ess_mean"]
        note = (" -- few particles carry the weight: ≈ is then a loose lower bound and its Monte-Carlo s.e. "
                "is unreliable; more particles or a better guide tighten it") if ess < max(2.0, 0.05 * k) else ""
        lines.append(f"effective sample size: {ess:.3g} of {k} particles on average{note}")
    if "smc_log_likelihood" in result and not result["exact"]:
        lines.append(f"SMC: effective sample size {result['smc_ess_mean']:.3g} of {result['smc_num_particles']} "
                     f"on average over steps (minimum {result['smc_ess_min']:.3g}); particles resampled after "
                     f"{100 * result['smc_resampling_rate']:.0f}% of steps "
                     f"({result['smc_resampling_events']:.0f} times)")
    return "\n".join(lines)


def smc_rows(result: dict) -> list:
    """The SMC row of :func:`format_summary` (none without an SMC column, or for an exact model)."""
    if "smc_log_likelihood" not in result or result["exact"]:
        return []
    return [(f"log-likelihood (≈, SMC K={result['smc_num_particles']})",
             f"{result['smc_log_likelihood']:.2f} ± {result['smc_log_likelihood_se']:.2f}",
             f"{result['smc_log_likelihood_per_step']:.4f} ± {result['smc_log_likelihood_per_step_se']:.4f}")]


def evaluate_run(run_dir, split: str = "test", *, num_particles: int = 100, chunk_size: int | None = None,
                 batch_size: int = 8, seed: int | None = 0, device="cpu", dataset=None, max_sequences=None,
                 checkpoint: str = "best", parallel=None, estimators=("is",), data_options=None,
                 max_memory=None, progress: bool = False) -> dict:
    """:func:`evaluate_sequences` for a run's checkpoint on ``split`` of its own dataset
    (``max_sequences``: only so many, evenly spaced through the split, for quick looks).
    ``checkpoint``: ``"best"`` on validation (``checkpoint.best.pt``, when the run has one, else the
    latest) or ``"last"``. ``data_options``: loader options that replace the run's own for this
    evaluation only (e.g. ``{"test_chunking": "chunks"}`` to score a speech model trained on 0.5 s
    chunks on test chunks instead of whole utterances); options that change the features or their
    normalization are refused. The result also names the run, the checkpoint file and the options used.
    ``max_memory``: see :func:`evaluate_sequences`; ``progress``: a bar over the sequences on a
    terminal (:func:`~pyro_vrnn.train.progress.progress_bar`; quiet elsewhere)."""
    model, config, normalizer, payload = load_run(run_dir, device, checkpoint)
    if data_options:
        config = {**config, "data_options": {**config.get("data_options", {}), **dict(data_options)}}
        dataset = load_data(config)
        _check_same_features(dataset, normalizer, model, run_dir, data_options)
    dataset = dataset if dataset is not None else load_data(config)
    sequences = dataset.split(split)
    if max_sequences is not None and max_sequences < len(sequences):  # evenly spaced, so every part is seen
        stride = len(sequences) / max_sequences
        sequences = [sequences[int(i * stride)] for i in range(max_sequences)]
    estimators = check_estimators(estimators)
    with progress_bar(len(sequences) * len(estimators), desc=f"evaluate {split}", enabled=progress) as bar:
        result = evaluate_sequences(model, sequences, num_particles=num_particles, chunk_size=chunk_size,
                                    batch_size=batch_size, seed=seed, parallel=parallel, estimators=estimators,
                                    max_memory=max_memory, progress=bar.update)
    return {"run_dir": str(run_dir), "model": config["model"]["name"], "model_spec": config["model"],
            "data": config["data"], "data_options": dict(config.get("data_options", {})), "split": split,
            "step": payload["step"], "checkpoint": payload["path"],
            "seed": seed,
            "chunk_size": chunk_size, **result}


def _check_same_features(dataset, normalizer, model, run_dir, data_options) -> None:
    """Loader options given at evaluation time may change how the split is cut (chunks or whole
    sequences), not what a time step is: the same ``x_dim`` and the normalizer the run was trained with."""
    told = ", ".join(f"{k}={v}" for k, v in dict(data_options).items())
    if dataset.x_dim != model.x_dim:
        raise ValueError(f"{run_dir}: with the data options {told} a time step has {dataset.x_dim} features, but "
                         f"the run's model takes {model.x_dim}; such options cannot change at evaluation")
    if normalizer is not None:
        fitted = dataset.normalizer
        same = (fitted.shift.shape == normalizer.shift.shape
                and torch.allclose(fitted.shift, normalizer.shift, rtol=1e-9, atol=0)
                and torch.allclose(fitted.scale, normalizer.scale, rtol=1e-9, atol=0))
        if not same:
            raise ValueError(f"{run_dir}: the data options {told} change the normalization the run was trained "
                             f"with ({normalizer.description} -> {fitted.description}); such options cannot "
                             "change at evaluation")
