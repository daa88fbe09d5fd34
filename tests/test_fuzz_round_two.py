"""Bad input, round two (issue 22): resuming the wrong run, launcher variables, sizes nobody can
afford, values outside any sensible range, results the library wrote itself, a run folder that
depends on the shell it started in, and what a preset fills in.

Each case asserts the error type (or the one ``pyro-vrnn: error:`` line and exit status 2), that
the message names the culprit (flag, argument, variable or file, and the value), and that no file
of the run changed.
"""

import json
import math
import os
import shutil
import socket

import pytest
import torch

from _fuzz import deadline
from pyro_vrnn.cli import main

DATA = ["--data", "speech-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
        "--data-option", "num_test=2", "--data-option", "seconds=(0.2,0.3)", "--data-option", "frame_size=20",
        "--data-option", "chunk_frames=4"]
SIZES = ["--h-dim", "4", "--z-dim", "2", "--feature-dims", "4", "--hidden-dims", "4", "--batch-size", "3"]
TRAIN = ["train", "--model", "vrnn-normal", *DATA, *SIZES]
CATCH_ALL = "unexpected "  # the command line's "unexpected X: ... (a bug in pyro-vrnn ...)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny trained runs of different models (2 steps each)."""
    root = tmp_path_factory.mktemp("round_two")
    assert main([*TRAIN, "--steps", "2", "--quiet", "--out", str(root / "vrnn")]) == 0
    assert main(["train", "--model", "rnn-normal", *DATA, *SIZES, "--steps", "2", "--quiet",
                 "--out", str(root / "rnn")]) == 0
    return root


@pytest.fixture
def run(runs, tmp_path):
    """A fresh copy of the VRNN run."""
    shutil.copytree(runs / "vrnn", tmp_path / "run")
    return tmp_path / "run"


def snapshot(folder):
    """Every file under ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys, code, *expected):
    """Exit status 2, one ``pyro-vrnn: error:`` line (not the catch-all) containing each of ``expected``."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("pyro-vrnn: warning:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("pyro-vrnn: error: "), (code, err)
    assert CATCH_ALL not in lines[0], lines[0]
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------------- 1. resuming
def test_resume_refuses_a_checkpoint_of_another_model_and_writes_nothing(runs, run, capsys):
    shutil.copy(runs / "rnn" / "checkpoint.pt", run / "checkpoint.pt")
    before = snapshot(run)
    code = main(["train", "--out", str(run), "--resume", "--steps", "4", "--quiet"])
    one_line_error(capsys, code, "checkpoint.pt", "'vrnn-normal'", "'rnn-normal'", "config.json")
    assert snapshot(run) == before


def test_resume_refuses_another_precision_naming_both_and_writes_nothing(run, capsys):
    before = snapshot(run)
    code = main(["train", "--out", str(run), "--resume", "--steps", "4", "--precision", "bf16", "--quiet"])
    one_line_error(capsys, code, "--precision bf16", "fp32")
    assert snapshot(run) == before
    assert json.loads((run / "config.json").read_text())["precision"] == "fp32"


def test_resume_refuses_other_sizes_naming_both_and_writes_nothing(run, capsys):
    before = snapshot(run)
    code = main(["train", "--out", str(run), "--resume", "--steps", "4", "--h-dim", "8", "--quiet"])
    one_line_error(capsys, code, "h_dim 4", "8")
    assert snapshot(run) == before


def test_resume_with_the_run_s_own_precision_continues(run, capsys):
    assert main(["train", "--out", str(run), "--resume", "--steps", "3", "--precision", "fp32", "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["precision"] == "fp32"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3


# ---------------------------------------------------------------------------------------------- 7. nothing to do
def test_resume_of_a_finished_run_says_so_and_writes_nothing(run, capsys):
    before = snapshot(run)
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "already at step 2 of --steps 2: nothing to train" in err and "--steps 4" in err, err
    assert "steps 2 -> 2" not in err
    assert snapshot(run) == before


def test_resume_to_fewer_steps_than_done_is_refused_and_writes_nothing(run, capsys):
    before = snapshot(run)
    code = main(["train", "--out", str(run), "--resume", "--steps", "1", "--quiet"])
    one_line_error(capsys, code, "--steps 1", "step 2", "--overwrite")
    assert snapshot(run) == before


# ---------------------------------------------------------------------------------------------- 8. self-sufficient
def _music_pickle(path):
    """A tiny piano-roll pickle in the Boulanger-Lewandowski layout (split -> songs -> steps -> notes)."""
    import pickle

    song = [[60, 64], [62], [], [65, 69, 72], [60]] * 2
    path.write_bytes(pickle.dumps({"train": [song] * 4, "valid": [song[:6]] * 2, "test": [song[2:]] * 2}))
    return path


def test_a_run_finds_its_data_without_the_variable_it_was_found_with(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _music_pickle(data / "tiny.pickle")
    monkeypatch.setenv("PYRO_VRNN_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--model", "vrnn-normal", "--data", "music:tiny.pickle", *SIZES, "--steps", "2", "--quiet",
                 "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == "music:tiny.pickle"
    assert config["data_resolved"] == f"music:{data / 'tiny.pickle'}"
    monkeypatch.delenv("PYRO_VRNN_DATA")
    monkeypatch.chdir(run)  # and another folder
    assert main(["evaluate", str(run), "--particles", "2", "--quiet"]) == 0
    assert json.loads((run / "eval_test.json").read_text())["num_sequences"] == 2
    assert main(["sample", str(run), "--num", "1", "--out", str(tmp_path / "samples"), "--quiet"]) == 0
    assert main(["train", "--out", str(run), "--resume", "--steps", "3", "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == "music:tiny.pickle" and config["data_resolved"] == f"music:{data / 'tiny.pickle'}"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3
