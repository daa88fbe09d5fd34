"""The ``pyro-vrnn`` command line: every subcommand on tiny data, exact resume, and the error paths.

Subcommands run in-process through ``pyro_vrnn.cli.main([...])``; one test runs the real console
script / ``python -m`` in a subprocess.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from pyro_vrnn.cli import main

TINY_MODEL = ["--h-dim", "8", "--z-dim", "2", "--feature-dims", "8", "--hidden-dims", "8", "--num-components", "2"]
TINY_MUSIC = ["--data", "music-synthetic", "--data-option", "num_train=6", "--data-option", "num_valid=2",
              "--data-option", "num_test=3", "--data-option", "lengths=(6,10)"]
TINY_SPEECH = ["--data", "speech-synthetic", "--data-option", "num_train=2", "--data-option", "num_valid=1",
               "--data-option", "num_test=2", "--data-option", "seconds=(0.55,0.7)", "--data-option", "frame_size=20",
               "--data-option", "chunk_frames=8"]
TINY_HANDWRITING = ["--data", "handwriting-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
                    "--data-option", "num_test=2", "--data-option", "min_steps=20", "--data-option", "max_steps=80"]


def train(out, model="vrnn-normal", data=TINY_MUSIC, steps=3, *extra):
    return main(["train", "--model", model, *data, "--steps", str(steps), "--out", str(out), "--batch-size", "2",
                 "--quiet", *TINY_MODEL, *extra])


@pytest.fixture(scope="module")
def music_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "vrnn"
    assert train(run, "vrnn-normal", TINY_MUSIC, 3, "--valid-every", "2", "--checkpoint-every", "2") == 0
    return run


def test_train_writes_config_checkpoints_and_history(music_run):
    config = json.loads((music_run / "config.json").read_text())
    assert config["model"]["name"] == "vrnn-normal"
    assert config["model"]["emission"] == "bernoulli"  # music: binary emission for the seed models
    assert config["model"]["h_dim"] == 8 and config["model"]["z_dim"] == 2
    assert config["data"] == "music-synthetic" and config["data_options"]["num_train"] == 6
    assert config["seed"] == 0 and config["training"]["steps"] == 3
    assert (music_run / "checkpoint.pt").is_file() and (music_run / "checkpoint.prev.pt").is_file()
    payload = torch.load(music_run / "checkpoint.pt", weights_only=True)
    assert payload["step"] == 3 and payload["normalizer"]["type"] == "affine"
    assert {"model", "optimizer", "batch_generator", "epoch"} <= set(payload["trainer"])
    history = json.loads((music_run / "history.json").read_text())
    assert [r["step"] for r in history["train"]] == [1, 2, 3]
    assert [r["step"] for r in history["valid"]] == [2]


def test_resume_continues_from_saved_step_and_equals_uninterrupted_run(tmp_path):
    flags = ("--valid-every", "3", "--checkpoint-every", "2")
    assert train(tmp_path / "a", "storn", TINY_MUSIC, 4, *flags) == 0
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["step"] == 4
    # the other flags come from the run itself
    assert main(["train", "--out", str(tmp_path / "a"), "--steps", "8", "--resume", "--quiet"]) == 0
    assert train(tmp_path / "b", "storn", TINY_MUSIC, 8, *flags) == 0
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    for name, value in b["trainer"]["model"].items():
        assert torch.equal(a["trainer"]["model"][name], value), name
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert [r["step"] for r in history["train"]] == list(range(1, 9))


def test_evaluate_writes_json_table_and_repeats_with_the_same_seed(music_run, tmp_path, capsys):
    args = ["evaluate", str(music_run), "--split", "test", "--particles", "4", "--chunk-size", "3", "--quiet"]
    assert main(args + ["--json", str(tmp_path / "a.json")]) == 0
    printed = capsys.readouterr().out
    assert "ELBO (≥)" in printed and "log-likelihood" in printed
    assert main(args + ["--json", str(tmp_path / "b.json"), "--chunk-size", "4"]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    for key in ("elbo", "log_likelihood", "elbo_per_step", "log_likelihood_per_step", "num_particles",
                "num_sequences", "elbo_se", "log_likelihood_se"):
        assert key in a
    assert a["num_particles"] == 4 and a["num_sequences"] == 3 and not a["exact"]
    assert len(a["per_sequence"]["log_likelihood"]) == 3 and len(a["per_sequence"]["num_steps"]) == 3
    assert a["log_likelihood"] >= a["elbo"] - 1e-9  # Jensen, per sequence averaged
    assert a["log_likelihood"] == pytest.approx(b["log_likelihood"], rel=1e-6)  # same seed, other chunking
    assert a["log_likelihood_per_step"] == pytest.approx(
        sum(a["per_sequence"]["log_likelihood"]) / sum(a["per_sequence"]["num_steps"]))


def test_evaluate_rnn_reports_exact_log_likelihood(tmp_path):
    assert train(tmp_path / "rnn", "rnn-gmm", TINY_SPEECH, 2) == 0
    assert main(["evaluate", str(tmp_path / "rnn"), "--particles", "7", "--quiet"]) == 0
    result = json.loads((tmp_path / "rnn" / "eval_test.json").read_text())
    assert result["exact"] and result["num_particles"] == 1
    assert result["elbo"] == pytest.approx(result["log_likelihood"])
    assert result["model_spec"]["emission"] == "gmm"


def test_evaluate_data_option_rescores_test_chunks_and_refuses_other_features(tmp_path, capsys):
    """A speech run trained on chunks is scored on whole test utterances (its own options) or, with
    --data-option test_chunking=chunks, on test chunks of chunk_frames steps; an option that would
    change a time step's features or the normalizer is refused with one line and exit 2."""
    run = tmp_path / "rnn"
    assert train(run, "rnn-gmm", TINY_SPEECH, 2) == 0
    assert main(["evaluate", str(run), "--quiet"]) == 0
    whole = json.loads((run / "eval_test.json").read_text())
    assert main(["evaluate", str(run), "--quiet", "--data-option", "test_chunking=chunks",
                 "--json", str(tmp_path / "chunks.json")]) == 0
    chunks = json.loads((tmp_path / "chunks.json").read_text())
    assert whole["num_sequences"] == 2 and min(whole["per_sequence"]["num_steps"]) > 8
    assert chunks["data_options"]["test_chunking"] == "chunks" and "test_chunking" not in whole["data_options"]
    assert set(chunks["per_sequence"]["num_steps"]) == {8}
    assert chunks["num_sequences"] == sum(n // 8 for n in whole["per_sequence"]["num_steps"])
    capsys.readouterr()
    for option, words in (("frame_size=10", "features"), ("num_train=3", "normalization")):
        assert main(["evaluate", str(run), "--quiet", "--data-option", option,
                     "--json", str(tmp_path / "refused.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err and option in err
        assert not (tmp_path / "refused.json").exists()


def test_sample_speech_writes_figure_and_wav_files(tmp_path):
    assert train(tmp_path / "run", "vrnn-gmm", TINY_SPEECH, 2) == 0
    assert main(["sample", str(tmp_path / "run"), "--num", "2", "--length", "5", "--out", str(tmp_path / "s")]) == 0
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert names == ["real_0.wav", "real_1.wav", "sample_0.wav", "sample_1.wav", "samples.png", "samples.pt"]
    samples = torch.load(tmp_path / "s" / "samples.pt", weights_only=False)["samples"]
    assert samples.shape == (2, 5, 20)
    import soundfile

    wave, rate = soundfile.read(tmp_path / "s" / "sample_0.wav")
    assert rate == 16000 and wave.shape == (100,)


@pytest.mark.parametrize("data", [TINY_MUSIC, TINY_HANDWRITING], ids=["music", "handwriting"])
def test_sample_writes_figure_for_music_and_handwriting(tmp_path, data):
    assert train(tmp_path / "run", "rnn-normal", data, 1) == 0
    assert main(["sample", str(tmp_path / "run"), "--num", "2", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    assert (tmp_path / "s" / "samples.png").stat().st_size > 1000
    samples = torch.load(tmp_path / "s" / "samples.pt", weights_only=False)["samples"]
    assert set(samples[..., -1].unique().tolist()) <= {0.0, 1.0}  # piano roll / pen bit are binary


def test_compare_writes_table_csv_figure_and_skips_duplicates_on_binary_data(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *TINY_MUSIC, "--models", "rnn-normal,rnn-gmm,storn", "--steps", "2", "--out", str(out),
                 "--particles", "3", "--batch-size", "2", "--num-samples", "2", "--quiet", *TINY_MODEL]) == 0
    printed = capsys.readouterr().out
    assert "NLL" in printed and "nats per time step" in printed
    for name in ("table.md", "table.csv", "results.json", "samples.png", "training.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert [r["model"] for r in rows] == ["rnn-normal", "storn"]  # rnn-gmm = rnn-normal on music
    assert rows[0]["exact"] == "True" and rows[1]["exact"] == "False"
    results = json.loads((out / "results.json").read_text())
    assert results["skipped"] == [{"model": "rnn-gmm", "same_as": "rnn-normal"}]
    assert results["unit"] == "step" and results["steps"] == 2
    table = (out / "table.md").read_text()
    assert "| RNN-Bernoulli |" in table and "| STORN-Bernoulli |" in table and "rnn-gmm was not trained" in table
    assert (out / "storn" / "eval_test.json").is_file() and (out / "storn" / "checkpoint.pt").is_file()


def test_compare_with_epochs_loads_the_data_once_for_the_count_and_the_runs(tmp_path, monkeypatch):
    import pyro_vrnn.cli.compare as cli_compare
    import pyro_vrnn.report.compare as report_compare
    from pyro_vrnn.train import runs

    loads, load = [], runs.load_data
    counted = lambda config: loads.append(config["data"]) or load(config)  # noqa: E731
    monkeypatch.setattr(cli_compare, "load_data", counted)
    monkeypatch.setattr(report_compare, "load_data", counted)
    monkeypatch.setattr(runs, "load_data", counted)
    out = tmp_path / "cmp"
    assert main(["compare", *TINY_MUSIC, "--models", "rnn-normal", "--epochs", "1", "--batch-size", "2",
                 "--out", str(out), "--particles", "2", "--num-samples", "1", "--quiet", *TINY_MODEL]) == 0
    assert loads == ["music-synthetic"]
    assert json.loads((out / "results.json").read_text())["steps"] == 3  # 6 training rolls in batches of 2


def test_compare_function_returns_rows_for_each_model(tmp_path):
    from pyro_vrnn.report.compare import compare

    rows = compare("speech-synthetic", ["rnn-normal", "vrnn-gmm"], steps=1, out=tmp_path, particles=2,
                   data_options={"num_train": 2, "num_valid": 1, "num_test": 1, "seconds": (0.55, 0.6),
                                 "frame_size": 20, "chunk_frames": 8},
                   h_dim=8, z_dim=2, feature_dims=(8,), hidden_dims=(8,), num_components=2, num_samples=1,
                   progress=False, log=lambda message: None)
    assert [r["label"] for r in rows] == ["RNN-Normal", "VRNN-GMM"]
    assert rows[1]["log_likelihood"] >= rows[1]["elbo"] and rows[0]["exact"]
    assert "log-likelihood (higher is better)" in (tmp_path / "table.md").read_text()


def test_train_epochs_with_windows_counts_the_windows_of_an_epoch(tmp_path):
    from pyro_vrnn.data import load_dataset
    from pyro_vrnn.data.batching import updates_per_epoch

    lengths = [len(s) for s in load_dataset("music-synthetic", num_train=6, num_valid=2, num_test=3,
                                            lengths=(6, 10)).train]
    expected = 2 * updates_per_epoch(lengths, 4, train_window=3, bucket_by_length=True)
    assert expected > 2 * 2  # more than the two batches an epoch has without windows
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, *TINY_MODEL, "--epochs", "2", "--batch-size", "4",
                 "--train-window", "3", "--bucket-by-length", "--valid-every", "0", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["training"]["steps"] == expected
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, *TINY_MODEL, "--epochs", "2", "--train-window", "3",
                 "--quiet", "--out", str(tmp_path / "s")]) == 2  # the windows of an unsorted epoch vary: refused


def test_the_cli_flushes_denormals_on_cpu_and_leaves_an_in_process_caller_as_it_was(tmp_path):
    """Weights decayed towards zero turn denormal and slow every CPU matmul several times; a command
    flushes them to zero while it runs, and main() restores the caller's setting after it."""
    import argparse

    from pyro_vrnn.cli import common

    assert not common.denormals_flushed()
    try:
        common.setup_runtime(argparse.Namespace(device="cpu", threads=1, validate=False))
        assert common.denormals_flushed() == torch.set_flush_denormal(True)  # True where the CPU has the mode
    finally:
        torch.set_flush_denormal(False)
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, *TINY_MODEL, "--steps", "1", "--valid-every", "0",
                 "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert not common.denormals_flushed()


def test_compare_function_refuses_an_earlier_comparison_unless_told_to_resume_or_overwrite(tmp_path):
    from pyro_vrnn.report.compare import compare
    from pyro_vrnn.train.outputs import OutputError

    kwargs = dict(steps=1, out=tmp_path, particles=2, data_options={"num_train": 2, "num_valid": 1, "num_test": 1},
                  h_dim=8, z_dim=2, feature_dims=(8,), hidden_dims=(8,), num_samples=1, progress=False,
                  log=lambda message: None)
    compare("music-synthetic", ["storn"], **kwargs)
    checkpoint = (tmp_path / "storn" / "checkpoint.pt").read_bytes()
    with pytest.raises(OutputError, match="holds an earlier comparison"):
        compare("music-synthetic", ["storn"], **kwargs)
    assert (tmp_path / "storn" / "checkpoint.pt").read_bytes() == checkpoint  # nothing was replaced
    with pytest.raises(ValueError, match="contradict"):
        compare("music-synthetic", ["storn"], resume=True, overwrite=True, **kwargs)
    compare("music-synthetic", ["storn"], resume=True, **kwargs)  # already at its steps: reused as it is
    assert (tmp_path / "storn" / "checkpoint.pt").read_bytes() == checkpoint
    compare("music-synthetic", ["storn"], overwrite=True, **kwargs)


# ---------------------------------------------------------------------------- error paths
def _corrupt_run(tmp_path):
    run = tmp_path / "corrupt"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    return run


ERROR_CASES = {
    "train-unknown-model": lambda p: ["train", "--model", "lstm-vae", *TINY_MUSIC, "--out", str(p / "r")],
    "train-missing-data-path": lambda p: ["train", "--model", "storn", "--data", f"music:{p}/missing.pickle",
                                          "--out", str(p / "r")],
    "train-unknown-data-kind": lambda p: ["train", "--model", "storn", "--data", "video:x", "--out", str(p / "r")],
    "train-negative-size": lambda p: ["train", "--model", "storn", *TINY_MUSIC, "--h-dim", "-4", "--out", str(p / "r")],
    "train-bad-data-file": lambda p: ["train", "--model", "storn", "--data", f"music:{_garbage(p)}", "--out",
                                      str(p / "r")],
    "train-impossible-emission": lambda p: ["train", "--model", "storn", *TINY_MUSIC, "--emission", "handwriting",
                                            "--out", str(p / "r")],
    "train-resume-other-model": lambda p: ["train", "--model", "rnn-normal", *TINY_MUSIC, "--out",
                                           str(_run(p)), "--resume", "--steps", "5"],
    "train-existing-run": lambda p: ["train", "--model", "vrnn-normal", *TINY_MUSIC, "--out", str(_run(p)),
                                     "--steps", "5"],
    "train-no-model": lambda p: ["train", *TINY_MUSIC, "--out", str(p / "r")],
    "evaluate-missing-run": lambda p: ["evaluate", str(p / "nothing")],
    "evaluate-corrupt-checkpoint": lambda p: ["evaluate", str(_corrupt_run(p))],
    "evaluate-zero-particles": lambda p: ["evaluate", str(_run(p)), "--particles", "0"],
    "evaluate-bad-split": lambda p: ["evaluate", str(_run(p)), "--split", "dev"],
    "sample-missing-run": lambda p: ["sample", str(p / "nothing"), "--out", str(p / "s")],
    "sample-corrupt-checkpoint": lambda p: ["sample", str(_corrupt_run(p)), "--out", str(p / "s")],
    "sample-zero-num": lambda p: ["sample", str(_run(p)), "--num", "0", "--out", str(p / "s")],
    "compare-unknown-model": lambda p: ["compare", *TINY_MUSIC, "--models", "rnn-normal,lstm-vae", "--out", str(p / "c")],
    "compare-missing-data": lambda p: ["compare", "--data", f"speech:{p}/nowhere", "--out", str(p / "c")],
    "compare-negative-steps": lambda p: ["compare", *TINY_MUSIC, "--steps", "-1", "--out", str(p / "c")],
}


def _garbage(path):
    bad = path / "bad.pickle"
    bad.write_bytes(b"\x80\x04garbage")
    return bad


_RUN_CACHE = {}


def _run(path):
    """A tiny trained vrnn-normal run (copied per test from one trained once)."""
    if "run" not in _RUN_CACHE:
        base = path.parent / "shared-run"
        if not base.exists():
            assert train(base, "vrnn-normal", TINY_MUSIC, 1) == 0
        _RUN_CACHE["run"] = base
    target = path / "run"
    if not target.exists():
        shutil.copytree(_RUN_CACHE["run"], target)
    return target


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_exit_2_with_one_line_and_no_traceback(case, tmp_path, capsys):
    argv = ERROR_CASES[case](tmp_path)
    capsys.readouterr()
    status = main(argv + ["--quiet"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("pyro-vrnn: error: "), err
    assert "Traceback" not in err


def test_console_script_help_and_module_train_smoke(tmp_path):
    script = shutil.which("pyro-vrnn") or os.path.join(os.path.dirname(sys.executable), "pyro-vrnn")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "pyro_vrnn.cli"]
    helped = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "compare" in helped.stdout and "vrnn-gmm" in helped.stdout
    trained = subprocess.run([sys.executable, "-m", "pyro_vrnn.cli", "train", "--model", "rnn-gmm", *TINY_SPEECH,
                              "--steps", "2", "--out", str(tmp_path / "run"), *TINY_MODEL],
                             capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert "rnn-gmm: steps 0 -> 2" in trained.stderr  # the summary line
    assert "it/s" not in trained.stderr  # stderr is a pipe, not a terminal: no progress bar in the log
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and (tmp_path / "run" / "config.json").is_file()
