"""The SMC benchmark scripts run end to end at a tiny size and write what the docs quote."""

import importlib.util
import json
import shutil
from pathlib import Path

from pyro_vrnn.cli import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY_MODEL = ["--h-dim", "8", "--z-dim", "2", "--feature-dims", "8", "--hidden-dims", "8"]
TINY_MUSIC = ["--data", "music-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
              "--data-option", "num_test=3", "--data-option", "lengths=(6,10)"]


def _script(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smc_benchmark_reports_both_estimators_per_k_over_seeds(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, "--steps", "2", "--out", str(run), "--quiet",
                 *TINY_MODEL]) == 0
    out = tmp_path / "smc.json"
    _script("smc").main([str(run), "--particles", "3", "5", "--seeds", "2", "--max-sequences", "2",
                         "--json", str(out)])
    records = json.loads(out.read_text())
    assert [r["num_particles"] for r in records] == [3, 5]
    for r in records:
        assert set(r["nll_per_step"]) == {"elbo", "is", "smc"} and len(r["nll_per_step"]["smc"]["values"]) == 2
        assert 1.0 <= r["ess"]["smc_mean_over_steps"]["mean"] <= r["num_particles"] + 1e-9
        assert r["num_sequences"] == 2 and r["command"].startswith("python benchmarks/smc.py")


def test_shared_state_benchmark_times_both_starts_and_finds_them_equal(tmp_path):
    """benchmarks/smc_shared_state.py: the SRNN's filter with its shared ``d`` against particles started
    expanded, on the same noise: the same ``log p_hat(x)`` (float32 rounding), both timed."""
    run = tmp_path / "run"
    assert main(["train", "--model", "srnn", *TINY_MUSIC, "--steps", "2", "--out", str(run), "--quiet",
                 *TINY_MODEL]) == 0
    out = tmp_path / "shared.json"
    _script("smc_shared_state").main([str(run), "--particles", "4", "--max-sequences", "2", "--max-steps", "5",
                                      "--repeats", "2", "--warmup", "0", "--json", str(out)])
    (record,) = json.loads(out.read_text())
    assert (record["model"], record["num_particles"], record["num_sequences"]) == ("srnn", 4, 2)
    assert record["max_abs_log_z_difference"] < 1e-4 and record["log_z_per_step"] < 0
    assert record["shared_ms"] > 0 and record["per_particle_ms"] > 0
    assert record["command"].startswith("python benchmarks/smc_shared_state.py")


def test_fivo_vs_elbo_benchmark_trains_each_objective_and_evaluates_it(tmp_path):
    out = tmp_path / "fivo.json"
    _script("fivo_vs_elbo").main(["--data", "music-synthetic", "--objectives", "trace", "fivo", "--steps", "2",
                                  "--train-particles", "2", "--eval-particles", "3", "--max-test-sequences", "2",
                                  "--json", str(out)])
    records = json.loads(out.read_text())
    assert [(r["objective"], r["train_particles"], r["train_steps"]) for r in records] == [("trace", 1, 2),
                                                                                           ("fivo", 2, 2)]
    assert all(set(r["nll_per_step"]) == {"elbo", "is", "smc"} and r["num_sequences"] == 2 for r in records)


def test_results_table_reads_every_figure_from_the_run_folders(tmp_path):
    """benchmarks/results_table.py: one row per run, the figures of its evaluation JSON (IS with K,
    SMC when run, exact for an RNN) and of its history (steps, best validation step)."""
    runs = []
    for model in ("rnn-normal", "vrnn-normal"):
        run = tmp_path / model
        assert main(["train", "--model", model, *TINY_MUSIC, "--steps", "4", "--valid-every", "2", "--out", str(run),
                     "--quiet", *TINY_MODEL]) == 0
        assert main(["evaluate", str(run), "--particles", "3", "--estimator", "is,smc", "--quiet"]) == 0
        runs.append(run)
    text = _script("results_table").main([str(r) for r in runs] + ["--paired"])
    lines = text.splitlines()
    rnn, vrnn = (line for line in lines if line.startswith("| RNN") or line.startswith("| VRNN"))
    evaluations = [json.loads((r / "eval_test.json").read_text()) for r in runs]
    assert f"{-evaluations[0]['log_likelihood_per_step']:.3f} ± " in rnn and "| — |" in rnn
    assert f"{-evaluations[1]['log_likelihood_per_step']:.3f} ± " in vrnn and "(3) |" in vrnn
    assert f"{-evaluations[1]['smc_log_likelihood_per_step']:.3f}" in vrnn
    assert vrnn.startswith("| VRNN-Bernoulli | ELBO |")  # what it was trained on
    history = json.loads((runs[1] / "history.json").read_text())
    best = min(history["valid"], key=lambda r: r["loss"])
    assert f"| {best['step']:,} | {best['loss']:.3f} |" in vrnn
    a, b = (e["per_sequence"]["log_likelihood"] for e in evaluations)
    mean = sum(y - x for x, y in zip(a, b)) / len(a)
    assert f"VRNN-Bernoulli - RNN-Bernoulli = {mean:.2f} ± " in text
    assert f"({sum(y > x for x, y in zip(a, b))} of {len(a)} higher)" in text
    a, b = (e["smc_per_sequence"]["log_likelihood"] for e in evaluations)  # the same pairing by SMC
    mean = sum(y - x for x, y in zip(a, b)) / len(a)
    assert f"SMC: VRNN-Bernoulli - RNN-Bernoulli = {mean:.2f} ± " in text
    # two runs of one model (here a copy) are told apart in the pairing by their folders
    shutil.copytree(runs[1], tmp_path / "again")
    text = _script("results_table").main([str(runs[1]), str(tmp_path / "again"), "--paired"])
    assert "VRNN-Bernoulli [again] - VRNN-Bernoulli [vrnn-normal] = 0.00 ± 0.00 per sequence (0 of 3 higher)" in text


def test_results_table_says_how_each_run_was_trained():
    trained_by = _script("results_table").trained_by
    assert trained_by({}) == "ELBO"
    assert trained_by({"elbo": "fivo", "num_particles": 4, "train_window": 100}) == "FIVO (K = 4), windows of 100"
    assert trained_by({"elbo": "trace", "train_window": 100, "weight_decay": 0.5}) == "ELBO, windows of 100, L2 0.5"
