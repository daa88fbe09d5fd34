"""The SMC column and FIVO training through the command line (in-process ``pyro_vrnn.cli.main``)."""

import csv
import json

import pytest

from pyro_vrnn.cli import main

TINY_MODEL = ["--h-dim", "8", "--z-dim", "2", "--feature-dims", "8", "--hidden-dims", "8", "--num-components", "2"]
TINY_MUSIC = ["--data", "music-synthetic", "--data-option", "num_train=6", "--data-option", "num_valid=2",
              "--data-option", "num_test=5", "--data-option", "lengths=(6,10)"]


@pytest.fixture(scope="module")
def fivo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "vrnn-fivo"
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, "--steps", "3", "--out", str(run), "--batch-size",
                 "2", "--quiet", "--elbo", "fivo", *TINY_MODEL]) == 0
    return run


def test_train_with_elbo_fivo_records_the_objective_and_finite_losses(fivo_run):
    config = json.loads((fivo_run / "config.json").read_text())
    assert config["training"]["elbo"] == "fivo"
    history = json.loads((fivo_run / "history.json").read_text())
    assert [r["step"] for r in history["train"]] == [1, 2, 3]
    assert all(r["loss"] == r["loss"] and abs(r["loss"]) < 1e6 for r in history["train"])


def test_evaluate_smc_column_has_ess_and_resampling_counts_and_ignores_batching(fivo_run, tmp_path, capsys):
    args = ["evaluate", str(fivo_run), "--particles", "6", "--estimator", "is,smc", "--quiet"]
    assert main(args + ["--json", str(tmp_path / "a.json")]) == 0
    printed = capsys.readouterr().out
    assert "SMC K=6" in printed and "resampled after" in printed
    assert main(args + ["--json", str(tmp_path / "b.json"), "--batch-size", "2"]) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["smc_num_particles"] == 6 and a["smc_label"].startswith("estimate (SMC")
    per_seq = a["smc_per_sequence"]
    assert len(per_seq["log_likelihood"]) == a["num_sequences"] == 5
    assert all(1.0 <= e <= 6.0 + 1e-9 for e in per_seq["ess_mean"] + per_seq["ess_min"])
    assert a["smc_resampling_events"] == sum(per_seq["resampling_events"])
    assert a["smc_log_likelihood"] == pytest.approx(sum(per_seq["log_likelihood"]) / 5)
    # each sequence has its own seed: other batches, the same per-sequence estimates
    assert per_seq["log_likelihood"] == pytest.approx(b["smc_per_sequence"]["log_likelihood"], abs=1e-4)
    assert "elbo" in a and "log_likelihood" in a  # the IS and ELBO columns stay


def test_compare_adds_an_smc_column_to_table_and_csv(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *TINY_MUSIC, "--models", "rnn-normal,vrnn-normal", "--steps", "2", "--out", str(out),
                 "--particles", "4", "--estimator", "is,smc", "--quiet", *TINY_MODEL]) == 0
    table = (out / "table.md").read_text()
    assert "≈ SMC NLL" in table and "sequential Monte Carlo" in table
    with open(out / "table.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert rows["vrnn-normal"]["smc_nll_per_step"] and rows["vrnn-normal"]["smc_ess_mean"]
    rnn_line = next(line for line in table.splitlines() if line.startswith("| RNN"))
    assert rnn_line.count("—") == 3  # exact model: no ELBO, IS or SMC estimate


def test_unknown_estimator_is_a_one_line_error(fivo_run, capsys):
    assert main(["evaluate", str(fivo_run), "--estimator", "is,mcmc"]) == 2
    err = capsys.readouterr().err
    assert "--estimator" in err and "mcmc" in err and "smc" in err
