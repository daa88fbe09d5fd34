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
    one_line_error(capsys, code, "1 KiB allowed by max_memory (--max-memory)")
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


# ---------------------------------------------------------------------------------------------- 5. no catch-all
class _Payload:
    """A pickle that would run a shell command when loaded without ``weights_only``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_pt(d):
    import pickle

    path = d / "evil.pt"
    path.write_bytes(pickle.dumps(_Payload(d / "PWNED")))
    return path


def _saved(d, name, value):
    torch.save(value, d / name)
    return d / name


def _npy(d, name, value):
    import numpy as np

    np.save(d / name, value, allow_pickle=True)
    return d / name


def _bytes(d, name, content):
    (d / name).write_bytes(content)
    return d / name


PRIME_CASES = {
    # name: (file in a scratch folder, what the line says besides the file's name)
    "a pickle that would run a command": (_malicious_pt, "Python objects"),
    "a zip-format .pt holding a custom class": (lambda d: _saved(d, "obj.pt", {"f": _Payload(d / "PWNED")}),
                                                "Python objects"),
    "garbage bytes as .pt": (lambda d: _bytes(d, "junk.pt", os.urandom(64)), "not a file pyro-vrnn can read"),
    "an empty .pt": (lambda d: _bytes(d, "empty.pt", b""), "empty"),
    "a .pt holding a dict": (lambda d: _saved(d, "dict.pt", {"x": torch.zeros(3, 20)}), "holds a dict"),
    "a .pt holding a string": (lambda d: _saved(d, "str.pt", "hello"), "holds a str"),
    "a .pt holding a complex tensor": (lambda d: _saved(d, "c.pt", torch.zeros(3, 20, dtype=torch.complex64)),
                                       "complex"),
    "a .npy of Python objects": (lambda d: _npy(d, "obj.npy", __import__("numpy").array([{"a": 1}], dtype=object)),
                                 "not a file pyro-vrnn can read"),
    "a .npy of strings": (lambda d: _npy(d, "s.npy", __import__("numpy").array([["a"] * 20] * 3)), "not numbers"),
    "garbage bytes as .npy": (lambda d: _bytes(d, "junk.npy", b"\x93NUMPY garbage"), "not a file pyro-vrnn can read"),
}


@pytest.mark.parametrize("case", list(PRIME_CASES))
def test_a_bad_prime_file_is_a_clear_error_naming_it_and_runs_nothing(run, tmp_path, capsys, case):
    make, expected = PRIME_CASES[case]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    path = make(scratch)
    before = snapshot(run)
    code = main(["sample", str(run), "--prime", str(path), "--num", "1", "--out", str(tmp_path / "s")])
    line = one_line_error(capsys, code, f"--prime {path}", expected)
    assert "weights_only=False" not in line and "weights_only" not in line
    assert not (scratch / "PWNED").exists() and not (tmp_path / "s").exists()
    assert snapshot(run) == before


def _environment_case(environment, argv):
    return lambda run, d: (argv(run, d), environment)


#: bad input from issue 22 across the commands: (argv from (run, scratch folder), environment)
CATCH_ALL_CASES = {
    "sample --temperature 1e300": lambda r, d: (["sample", str(r), "--temperature", "1e300", "--out", str(d / "s")],
                                                {}),
    "sample --temperature 1e-320 with --reconstruct": lambda r, d: (
        ["sample", str(r), "--reconstruct", "--temperature", "1e-320", "--out", str(d / "s")], {}),
    "sample --prime a malicious pickle": lambda r, d: (["sample", str(r), "--prime", str(_malicious_pt(d)),
                                                        "--out", str(d / "s")], {}),
    "evaluate --estimator smc --particles 10**9": lambda r, d: (
        ["evaluate", str(r), "--estimator", "smc", "--particles", str(10 ** 9)], {}),
    "evaluate --chunk-size 10**9 --particles 10**9": lambda r, d: (
        ["evaluate", str(r), "--particles", str(10 ** 9), "--chunk-size", str(10 ** 9)], {}),
    "evaluate --max-memory 0": lambda r, d: (["evaluate", str(r), "--max-memory", "0"], {}),
    "train --resume --precision bf16 on fp32": lambda r, d: (
        ["train", "--out", str(r), "--resume", "--precision", "bf16", "--steps", "3"], {}),
    "train --resume --steps 1 below the run": lambda r, d: (["train", "--out", str(r), "--resume", "--steps", "1"], {}),
    "train WORLD_SIZE=abc": lambda r, d: ([*TRAIN, "--steps", "1", "--out", str(d / "r")],
                                          {"RANK": "0", "WORLD_SIZE": "abc"}),
    "evaluate RANK=5 WORLD_SIZE=2": lambda r, d: (["evaluate", str(r)], {"RANK": "5", "WORLD_SIZE": "2",
                                                                        "MASTER_ADDR": "x", "MASTER_PORT": "1"}),
    "sample RANK=1 WORLD_SIZE=2 without MASTER_*": lambda r, d: (
        ["sample", str(r), "--out", str(d / "s")], {"RANK": "1", "WORLD_SIZE": "2"}),
    "train --preset music --valid-every 0": lambda r, d: (
        ["train", "--preset", "music", *DATA, *SIZES, "--valid-every", "0", "--out", str(d / "r")], {}),
    "train --preset music --elbo fivo --kl-anneal-steps 5": lambda r, d: (
        ["train", "--preset", "music", *DATA, *SIZES, "--elbo", "fivo", "--kl-anneal-steps", "5",
         "--out", str(d / "r")], {}),
}


@pytest.mark.parametrize("case", list(CATCH_ALL_CASES))
def test_no_bad_input_of_round_two_reaches_the_catch_all(run, tmp_path, monkeypatch, capsys, case):
    argv, environment = CATCH_ALL_CASES[case](run, tmp_path)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    before = snapshot(run)
    with deadline(30, case):
        code = main([*argv, "--quiet"])
    one_line_error(capsys, code)
    assert "bug in pyro-vrnn" not in capsys.readouterr().err
    assert snapshot(run) == before


# ---------------------------------------------------------------------------------------------- 6, 9. presets
PRESET_TRAIN = ["train", "--preset", "music", *DATA, *SIZES, "--steps", "2"]


def test_a_preset_with_fivo_leaves_its_annealing_off_and_warns_at_most_once(tmp_path, capsys):
    capsys.readouterr()
    assert main([*PRESET_TRAIN, "--elbo", "fivo", "--train-particles", "2", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert err.count("KL annealing") <= 1 and "warning" not in err, err
    assert "its KL annealing (--kl-anneal-steps 1000) is left off with --elbo fivo" in err, err
    training = json.loads((tmp_path / "r" / "config.json").read_text())["training"]
    assert training["elbo"] == "fivo" and training["annealing_steps"] == 0
    assert training["patience"] == 20 and training["lr_schedule"] == "plateau"  # the rest of the preset holds


@pytest.mark.parametrize("elbo", ["fivo", "iwae"])
def test_explicit_kl_annealing_with_fivo_or_iwae_is_an_error_naming_both(tmp_path, capsys, elbo):
    code = main([*TRAIN, "--elbo", elbo, "--kl-anneal-steps", "5", "--steps", "2", "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, "--kl-anneal-steps 5", f"--elbo {elbo}")
    assert not (tmp_path / "r").exists()


def test_a_preset_says_what_it_filled_in_unless_quiet(tmp_path, capsys):
    capsys.readouterr()
    assert main([*PRESET_TRAIN, "--out", str(tmp_path / "r")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("preset music")]
    assert len(lines) == 1, lines
    assert "--model vrnn-normal" in lines[0] and "--patience 20" in lines[0] and "--kl-anneal-steps 1000" in lines[0]
    assert "--h-dim" not in lines[0] and "--steps" not in lines[0]  # given on the command line: not the preset's
    capsys.readouterr()
    assert main([*PRESET_TRAIN, "--quiet", "--out", str(tmp_path / "q")]) == 0
    assert capsys.readouterr().err == ""


def test_a_preset_with_valid_every_0_names_its_patience_and_schedule_and_the_way_out(tmp_path, capsys):
    code = main([*PRESET_TRAIN, "--valid-every", "0", "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, "--preset music", "--patience 20", "--lr-schedule plateau",
                   "--patience 0 --lr-schedule none")
    assert not (tmp_path / "r").exists()
    assert main([*PRESET_TRAIN, "--valid-every", "0", "--patience", "0", "--lr-schedule", "none", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0


# ---------------------------------------------------------------------------------------------- 7. earlier results
def test_a_partial_evaluation_writes_beside_the_full_one(run, capsys):
    assert main(["evaluate", str(run), "--particles", "2", "--quiet"]) == 0
    full = (run / "eval_test.json").read_bytes()
    assert json.loads(full)["num_sequences"] == 2
    assert main(["evaluate", str(run), "--particles", "3", "--max-sequences", "1", "--quiet"]) == 0
    assert (run / "eval_test.json").read_bytes() == full
    partial = json.loads((run / "eval_test.partial.json").read_text())
    assert partial["num_sequences"] == 1 and partial["num_particles"] == 3
    assert f"written {run / 'eval_test.partial.json'}" in capsys.readouterr().out


def test_an_evaluation_of_another_cut_writes_beside_the_full_one(run, capsys):
    assert main(["evaluate", str(run), "--particles", "2", "--quiet"]) == 0
    full = (run / "eval_test.json").read_bytes()
    assert main(["evaluate", str(run), "--particles", "2", "--data-option", "test_chunking=chunks", "--quiet"]) == 0
    assert (run / "eval_test.json").read_bytes() == full  # the whole-utterance evaluation is untouched
    chunks = json.loads((run / "eval_test.test_chunking-chunks.json").read_text())
    assert chunks["data_options"]["test_chunking"] == "chunks"
    assert chunks["num_sequences"] > json.loads(full)["num_sequences"]  # utterances cut into chunks
    assert f"written {run / 'eval_test.test_chunking-chunks.json'}" in capsys.readouterr().out


COMPARE = ["compare", "--models", "rnn-normal", *DATA, *SIZES, "--steps", "1", "--particles", "2", "--num-samples",
           "1", "--quiet"]


def test_compare_into_an_earlier_comparison_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main([*COMPARE, "--out", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    code = main([*COMPARE, "--models", "rnn-normal,vrnn-normal", "--out", str(out)])
    one_line_error(capsys, code, str(out), "earlier comparison", "--resume", "--overwrite")
    assert snapshot(out) == before
    code = main([*COMPARE, "--resume", "--overwrite", "--out", str(out)])
    one_line_error(capsys, code, "--resume and --overwrite")
    assert main([*COMPARE, "--resume", "--out", str(out)]) == 0  # reuses the run already at --steps
    assert (out / "rnn-normal" / "checkpoint.pt").read_bytes() == before["rnn-normal/checkpoint.pt"]
    assert json.loads((out / "results.json").read_text())["rows"][0]["model"] == "rnn-normal"
