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


# ---------------------------------------------------------------------------------------------- 2. launcher variables
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAUNCH_CASES = {
    # name: (environment, what the line names)
    "WORLD_SIZE=abc": ({"RANK": "0", "WORLD_SIZE": "abc", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
                       ["WORLD_SIZE=abc"]),
    "RANK=x": ({"RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}, ["RANK=x"]),
    "LOCAL_RANK=1.5": ({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "1.5", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "29500"}, ["LOCAL_RANK=1.5"]),
    "RANK=2 of WORLD_SIZE=2": ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
                               ["RANK=2", "WORLD_SIZE=2"]),
    "RANK=-1": ({"RANK": "-1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}, ["RANK=-1"]),
    "WORLD_SIZE=0": ({"RANK": "0", "WORLD_SIZE": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
                     ["WORLD_SIZE=0"]),
    "RANK=1 WORLD_SIZE=2 without MASTER_*": ({"RANK": "1", "WORLD_SIZE": "2"}, ["MASTER_ADDR and MASTER_PORT"]),
    "WORLD_SIZE without RANK": ({"WORLD_SIZE": "2"}, ["WORLD_SIZE=2", "RANK"]),
    "MASTER_PORT=http": ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "http"},
                         ["MASTER_PORT=http"]),
}


@pytest.mark.parametrize("case", list(LAUNCH_CASES))
def test_launcher_variables_that_cannot_be_right_fail_before_any_rendezvous(tmp_path, monkeypatch, capsys, case):
    environment, expected = LAUNCH_CASES[case]
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with deadline(20, case):
        code = main([*TRAIN, "--steps", "1", "--quiet", "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, *expected)
    assert list(tmp_path.iterdir()) == []


def test_a_world_of_two_with_one_process_waits_only_the_rendezvous_timeout(tmp_path, monkeypatch, capsys):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port()), "PYRO_VRNN_RENDEZVOUS_TIMEOUT": "2"}.items():
        monkeypatch.setenv(name, value)
    with deadline(30, "a rendezvous nobody else joins"):
        code = main([*TRAIN, "--steps", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 2, err
    assert "waits up to 2 s (PYRO_VRNN_RENDEZVOUS_TIMEOUT) for the WORLD_SIZE=2 processes" in err[0], err
    assert err[1].startswith("pyro-vrnn: error: ") and CATCH_ALL not in err[1], err
    assert "did not all come" in err[1] and "PYRO_VRNN_RENDEZVOUS_TIMEOUT" in err[1], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-3", "nan", "soon"])
def test_a_rendezvous_timeout_that_is_not_a_positive_number_is_named(tmp_path, monkeypatch, capsys, value):
    for name, setting in {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
                          "PYRO_VRNN_RENDEZVOUS_TIMEOUT": value}.items():
        monkeypatch.setenv(name, setting)
    with deadline(20, value):
        code = main([*TRAIN, "--steps", "1", "--quiet", "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, f"PYRO_VRNN_RENDEZVOUS_TIMEOUT={value}")


# ---------------------------------------------------------------------------------------------- 3. sizes nobody can afford
def _tiny_model():
    from pyro_vrnn.models.zoo import build_model, model_spec

    torch.manual_seed(0)
    return build_model(model_spec("vrnn-normal", 3, z_dim=2, h_dim=4, feature_dims=(4,), hidden_dims=(4,)))


def test_smc_with_a_billion_particles_is_refused_before_it_allocates():
    from pyro_vrnn.infer import smc_estimate

    model, x = _tiny_model(), torch.randn(2, 5, 3)
    with deadline(10, "smc_estimate(num_particles=10**9)"), pytest.raises(ValueError) as error:
        smc_estimate(model, x, num_particles=10 ** 9)
    assert "num_particles=1000000000 (--particles)" in str(error.value) and "needs about" in str(error.value)
    assert "max_memory" in str(error.value)


def test_importance_sampling_with_a_billion_particles_is_refused_before_it_allocates():
    from pyro_vrnn.infer import importance_estimate

    model, x = _tiny_model(), torch.randn(2, 5, 3)
    with deadline(10, "importance_estimate(num_particles=10**9)"), pytest.raises(ValueError) as error:
        importance_estimate(model.model, model.guide, x, num_particles=10 ** 9)
    assert "num_particles=1000000000" in str(error.value) and "needs about" in str(error.value)
    with deadline(10, "importance_estimate(chunk_size=10**9)"), pytest.raises(ValueError) as error:
        importance_estimate(model.model, model.guide, torch.randn(2, 5000, 3), num_particles=10 ** 8,
                            chunk_size=10 ** 8, max_memory=64 << 30)
    assert "chunk_size=100000000 (--chunk-size)" in str(error.value), error.value


def test_max_memory_bounds_the_work_and_can_be_raised():
    from pyro_vrnn.infer import smc_estimate
    from pyro_vrnn.infer.memory import smc_bytes

    model, x = _tiny_model(), torch.randn(2, 5, 3)
    needed = smc_bytes(model, 2, 5, 50)
    assert needed > 50 * 2 * (2 * 8 + 2 * 4)  # at least the state (h and c of the LSTM) of every particle
    with pytest.raises(ValueError, match=r"allowed by max_memory \(--max-memory\)"):
        smc_estimate(model, x, num_particles=50, seed=0, max_memory=needed - 1)
    estimate = smc_estimate(model, x, num_particles=50, seed=0, max_memory=needed)
    assert torch.isfinite(estimate.log_likelihood).all()
    with pytest.raises(ValueError, match="max_memory"):
        smc_estimate(model, x, num_particles=50, seed=0, max_memory=-5)


def test_evaluate_smc_with_a_billion_particles_is_refused_at_once_and_writes_nothing(run, capsys):
    before = snapshot(run)
    with deadline(30, "evaluate --estimator smc --particles 10**9"):
        code = main(["evaluate", str(run), "--estimator", "is,smc", "--particles", str(10 ** 9), "--quiet"])
    one_line_error(capsys, code, "num_particles=1000000000 (--particles)", "--max-memory")
    assert snapshot(run) == before


def test_evaluate_max_memory_refuses_and_names_the_flag(run, capsys):
    code = main(["evaluate", str(run), "--estimator", "is,smc", "--particles", "4", "--max-memory", "1K", "--quiet"])
    one_line_error(capsys, code, "1 KB allowed by max_memory (--max-memory)")
    code = main(["evaluate", str(run), "--particles", "4", "--max-memory", "lots"])
    one_line_error(capsys, code, "--max-memory", "'lots'")
    assert main(["evaluate", str(run), "--estimator", "is,smc", "--particles", "4", "--max-memory", "1G",
                 "--quiet"]) == 0


def test_evaluation_shows_a_bar_over_the_sequences_on_a_terminal_only(run, monkeypatch, capsys):
    import pyro_vrnn.train.progress as progress

    capsys.readouterr()
    assert main(["evaluate", str(run), "--estimator", "is,smc", "--particles", "2"]) == 0
    assert "evaluate test" not in capsys.readouterr().err  # not a terminal: quiet
    monkeypatch.setattr(progress, "shows_progress", lambda stream=None: True)
    assert main(["evaluate", str(run), "--estimator", "is,smc", "--particles", "2"]) == 0
    err = capsys.readouterr().err
    assert "evaluate test" in err and "4/4" in err, err  # 2 test sequences, IS then SMC
    assert main(["evaluate", str(run), "--particles", "2", "--quiet"]) == 0
    assert "evaluate test" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- 4. numeric options
@pytest.mark.parametrize("temperature", [1e300, 1e4, float("inf"), float("nan"), -1e-3, "hot", True])
def test_generate_refuses_a_temperature_outside_0_to_1000_naming_it(temperature):
    model = _tiny_model()
    with pytest.raises(ValueError) as error:
        model.generate(2, 3, temperature=temperature)
    assert "temperature (--temperature)" in str(error.value) and repr(temperature) in str(error.value)


def test_the_highest_temperature_still_gives_finite_samples():
    from pyro_vrnn.models.predictive import MAX_TEMPERATURE

    torch.manual_seed(0)
    samples = _tiny_model().generate(3, 4, temperature=MAX_TEMPERATURE)
    assert samples.shape == (3, 4, 3) and torch.isfinite(samples).all()


@pytest.mark.parametrize("factor", [float("inf"), float("nan"), -0.5, 1e400])
def test_model_and_guide_refuse_an_annealing_factor_that_is_not_finite_and_non_negative(factor):
    model, x = _tiny_model(), torch.randn(2, 4, 3)
    for program in (model.model, model.guide):
        with pytest.raises(ValueError, match="annealing_factor"):
            program(x, None, annealing_factor=factor)


def test_sample_temperature_1e300_is_one_line_naming_the_flag(run, tmp_path, capsys):
    before = snapshot(run)
    code = main(["sample", str(run), "--temperature", "1e300", "--num", "1", "--out", str(tmp_path / "s")])
    one_line_error(capsys, code, "--temperature", "1e300")
    assert snapshot(run) == before and not (tmp_path / "s").exists()
