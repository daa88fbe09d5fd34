"""Bad input against ``pyro-vrnn``: every error path is one line on stderr and exit status 2, no
command writes over a file it did not create, and out-of-memory advice appears only where memory
really ran out (training, evaluation), never for bad data.

A new bad call is one more entry in :data:`LOST_FILE_CASES`, :data:`ONE_LINE_CASES` or the
hypothesis strategies below.
"""

import os
import resource
import shutil
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _fuzz import FUZZ, LIBRARY_ROOT, deadline
from pyro_vrnn.cli import main

TRACEBACK_ENV_VAR = "PYRO_VRNN_TRACEBACK"  # documented: set it to see an unexpected error's traceback

DATA = ["--data", "speech-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
        "--data-option", "num_test=2", "--data-option", "seconds=(0.2,0.3)", "--data-option", "frame_size=20",
        "--data-option", "chunk_frames=4"]
SIZES = ["--h-dim", "4", "--z-dim", "2", "--feature-dims", "4", "--hidden-dims", "4", "--batch-size", "3", "--quiet"]
TRAIN = ["train", "--model", "vrnn-normal", *DATA, *SIZES]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run (speech, so ``sample`` writes WAV files too)."""
    root = tmp_path_factory.mktemp("fuzz_cli")
    assert main([*TRAIN, "--steps", "2", "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of the trained run, and the folder around it."""
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def one_line_error(capsys, code, expected=None):
    """Assert exit status 2 and one ``pyro-vrnn: error:`` line on stderr (containing ``expected``)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("pyro-vrnn: error: "), (code, err)
    assert "Traceback" not in err
    if expected is not None:
        assert expected in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------- lost files
LOST_FILE_CASES = {
    # name: (argv from (run, protected path), protected file: (name, content or None = the run's own file))
    "evaluate --json RUN/checkpoint.pt": (lambda r, p: ["evaluate", str(r), "--json", str(p), "--particles", "2"],
                                          ("checkpoint.pt", None)),
    "evaluate --json RUN/config.json": (lambda r, p: ["evaluate", str(r), "--json", str(p), "--particles", "2"],
                                        ("config.json", None)),
    "evaluate --json RUN/history.json": (lambda r, p: ["evaluate", str(r), "--json", str(p), "--particles", "2"],
                                         ("history.json", None)),
    "evaluate --json a data file": (lambda r, p: ["evaluate", str(r), "--json", str(p), "--particles", "2"],
                                    ("songs.pickle", b"\x80\x02}q\x00.")),
    "evaluate --json another JSON": (lambda r, p: ["evaluate", str(r), "--json", str(p), "--particles", "2"],
                                     ("notes.json", b'{"my": "notes"}')),
    "evaluate --json a link to the checkpoint": (
        lambda r, p: ["evaluate", str(r), "--json", str(_link(p, r.parent / "link.json")), "--particles", "2"],
        ("checkpoint.pt", None)),
    "sample into a folder holding the user's WAV": (
        lambda r, p: ["sample", str(r), "--num", "1", "--out", str(p.parent)], ("mine/sample_0.wav", b"RIFF mine")),
    "sample into a folder holding the user's PNG": (
        lambda r, p: ["sample", str(r), "--num", "1", "--out", str(p.parent)], ("figs/samples.png", b"\x89PNG mine")),
    "sample --out RUN/checkpoint.pt": (lambda r, p: ["sample", str(r), "--num", "1", "--out", str(p)],
                                       ("checkpoint.pt", None)),
    "score --out RUN/checkpoint.pt": (lambda r, p: ["score", str(r), "--particles", "2", "--out", str(p)],
                                      ("checkpoint.pt", None)),
    "score --out the user's CSV": (lambda r, p: ["score", str(r), "--particles", "2", "--out", str(p)],
                                   ("sensors.csv", b"t,temp\n0,20.5\n")),
    "forecast --out RUN/config.json": (lambda r, p: ["forecast", str(r), "--horizon", "2", "--num-samples", "2",
                                                     "--out", str(p)], ("config.json", None)),
    "forecast --out a scores CSV of score": (
        lambda r, p: ["forecast", str(r), "--horizon", "2", "--num-samples", "2", "--out", str(p)],
        ("scores.csv", b"# pyro-vrnn score of run\nsequence,step,log_prob,ess\n")),
    "train into a folder with a foreign config.json": (lambda r, p: [*TRAIN, "--steps", "1", "--out", str(p.parent)],
                                                       ("other/config.json", b'{"lr": 3}')),
    "train --overwrite a folder with a foreign config.json": (
        lambda r, p: [*TRAIN, "--steps", "1", "--overwrite", "--out", str(p.parent)], ("other/config.json", b"x")),
    "train into a folder with a foreign history.json": (lambda r, p: [*TRAIN, "--steps", "1", "--out", str(p.parent)],
                                                        ("other/history.json", b"[1, 2]")),
    "compare into a folder with the user's table.md": (
        lambda r, p: ["compare", "--models", "rnn-normal", *DATA, *SIZES, "--steps", "1", "--particles", "2",
                      "--out", str(p.parent)], ("mine/table.md", b"# my table")),
    "compare into a folder with a foreign results.json": (
        lambda r, p: ["compare", "--models", "rnn-normal", *DATA, *SIZES, "--steps", "1", "--particles", "2",
                      "--out", str(p.parent)], ("mine/results.json", b'{"rows": 1}')),
}


def _link(target, link):
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("case", list(LOST_FILE_CASES))
def test_no_command_writes_over_a_file_it_did_not_create(run, capsys, case):
    argv, (name, content) = LOST_FILE_CASES[case]
    path = (run.parent / name) if content is not None else run / name
    if content is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    before = path.read_bytes()
    capsys.readouterr()
    code = main(argv(run, path))
    one_line_error(capsys, code, str(path.name) if "link" not in case else "link.json")
    assert path.read_bytes() == before, f"{path} was written over"


def test_evaluate_json_into_a_fifo_is_refused_without_blocking(run, capsys):
    os.mkfifo(run.parent / "out.json")
    with deadline(60, "evaluate --json FIFO"):
        code = main(["evaluate", str(run), "--json", str(run.parent / "out.json"), "--particles", "2"])
    one_line_error(capsys, code, "FIFO")


def test_a_command_replaces_its_own_earlier_outputs(run, capsys):
    """Re-running is not writing over someone else's file: evaluate and sample replace what they wrote."""
    for _ in range(2):
        assert main(["evaluate", str(run), "--particles", "2", "--json", str(run / "e.json")]) == 0
        assert main(["sample", str(run), "--num", "1", "--out", str(run / "samples")]) == 0
    assert main([*TRAIN, "--steps", "1", "--overwrite", "--out", str(run)]) == 0
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["real_0.wav", "sample_0.wav", "samples.png",
                                                                    "samples.pt"]
    assert not [p for p in run.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------------------------------------- one line, exit 2
def _sphere_folder(root, rate):
    """A speech folder whose files declare ``sample_rate rate`` (e.g. ``-r inf``)."""
    root.mkdir()
    for i in range(6):
        header = ("NIST_1A\n   1024\nsample_count -i 4000\nsample_n_bytes -i 2\nchannel_count -i 1\n"
                  f"sample_byte_format -s2 01\nsample_rate {rate}\nsample_coding -s3 pcm\nend_head\n").encode()
        (root / f"u{i}.wav").write_bytes(header.ljust(1024, b" ") + os.urandom(8000))
    return root


ONE_LINE_CASES = {
    # name: (argv from a scratch folder, what the line says)
    "SPHERE sample_rate inf": (lambda d: [*TRAIN[:3], "--data", f"speech:{_sphere_folder(d / 's', '-r inf')}",
                                          "--out", str(d / "r")], "sample_rate inf"),
    "SPHERE sample_rate nan": (lambda d: [*TRAIN[:3], "--data", f"speech:{_sphere_folder(d / 's', '-r nan')}",
                                          "--out", str(d / "r")], "u0.wav"),
    "SPHERE sample_rate 0.5": (lambda d: [*TRAIN[:3], "--data", f"speech:{_sphere_folder(d / 's', '-r 0.5')}",
                                          "--out", str(d / "r")], "sample_rate 0.5"),
    "a FIFO as the music pickle": (lambda d: [*TRAIN[:3], "--data", f"music:{_fifo(d / 'm.pickle')}",
                                              "--out", str(d / "r")], "FIFO"),
    "frame_size=2.5": (lambda d: [*TRAIN, "--data-option", "frame_size=2.5", "--out", str(d / "r")],
                       "frame_size must be a whole number >= 1, got 2.5"),
    "seconds=(-1,-2)": (lambda d: [*TRAIN, "--data-option", "seconds=(-1,-2)", "--out", str(d / "r")], "seconds"),
    "num_train=0": (lambda d: [*TRAIN, "--data-option", "num_train=0", "--out", str(d / "r")], "num_train"),
    "frame_size longer than any utterance": (
        lambda d: [*TRAIN, "--data-option", "frame_size=100000000000000", "--out", str(d / "r")],
        "longer than every training utterance"),
    "seed beyond 2**32": (lambda d: [*TRAIN, "--seed", str(2 ** 40), "--out", str(d / "r")], "--seed"),
    "data under PYRO_VRNN_DATA with ..": (lambda d: [*TRAIN[:3], "--data", "music:../../../etc/passwd",
                                                      "--out", str(d / "r")], "must stay inside"),
}


def _fifo(path):
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("case", list(ONE_LINE_CASES))
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, monkeypatch, capsys, case):
    monkeypatch.setenv("PYRO_VRNN_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path / "data")
    argv, expected = ONE_LINE_CASES[case]
    with deadline(60, case):
        code = main(argv(tmp_path))
    one_line_error(capsys, code, expected)


@pytest.mark.parametrize("error", [KeyError("x"), ZeroDivisionError("float division by zero"),
                                   TypeError("unsupported operand\nwith a second line"), AttributeError("y")])
def test_an_unexpected_error_is_one_line_exit_2_and_its_traceback_is_one_variable_away(tmp_path, monkeypatch,
                                                                                       capsys, error):
    import pyro_vrnn.cli.train

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(pyro_vrnn.cli.train, "train_run", broken)  # the name the train command calls
    line = one_line_error(capsys, main([*TRAIN, "--steps", "1", "--out", str(tmp_path / "r")]),
                          f"unexpected {type(error).__name__}")
    assert TRACEBACK_ENV_VAR in line and "second line" not in line
    monkeypatch.setenv(TRACEBACK_ENV_VAR, "1")
    with pytest.raises(type(error)):
        main([*TRAIN, "--steps", "1", "--out", str(tmp_path / "r")])


DATA_OPTION_KEYS = ["frame_size", "chunk_frames", "seconds", "sample_rate", "num_train", "num_valid", "seed",
                    "test_chunking", "num_speakers", "colour", "max_bytes"]
literals = st.one_of(st.sampled_from(["-1", "0", "2.5", "nan", "inf", "-inf", "1e309", "True", "None", "''",
                                      "(1,)", "(1,2,3)", "(-1,-2)", "(0.1,nan)", "[1]", "{}", "abc", "10**3",
                                      "99999999999999999999999", "0x10", "(0.2,1e9)"]),
                     st.text(st.characters(blacklist_categories=["Cs"]), max_size=6))


@FUZZ
@given(key=st.sampled_from(DATA_OPTION_KEYS), value=literals)
def test_any_data_option_value_trains_or_is_one_line_and_exit_2(tmp_path_factory, key, value):
    out = tmp_path_factory.mktemp("opt") / "r"
    with deadline(60, f"--data-option {key}={value}"):
        result = subprocess_free_main([*TRAIN, "--steps", "0", "--data-option", f"{key}={value}", "--out", str(out)])
    code, err = result
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("pyro-vrnn: error: "), err
        assert not lines[0].startswith("pyro-vrnn: error: unexpected "), err  # a checked input, not a surprise


def subprocess_free_main(argv):
    """``main(argv)`` in this process with stderr captured: ``(exit status, stderr text)``."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


FLAG_VALUES = {"--lr": ["0", "-1", "nan", "inf", "1e-320", "x"], "--clip-norm": ["0", "nan", "-inf"],
               "--kl-anneal-start": ["nan", "inf", "-0.0", "2"], "--kl-anneal-steps": ["-1", "1.5"],
               "--batch-size": ["0", "-3", "1e3"], "--h-dim": ["0", "x", "-1"], "--z-dim": ["0", "2.0"],
               "--feature-dims": ["", ",", "4,,0", "-4"], "--steps": ["-1", "nan"], "--epochs": ["0"],
               "--device": ["tpu", "cuda:x", "cpu:-1", ""], "--threads": ["0", "1025", "-1"],
               "--seed": ["-1", "1e3", str(2 ** 64)], "--valid-every": ["-5"], "--elbo": ["renyi"],
               "--guide": ["oracle"], "--num-components": ["0"]}


@FUZZ
@given(flags=st.dictionaries(st.sampled_from(sorted(FLAG_VALUES)), st.integers(0, 5), min_size=1, max_size=3))
def test_bad_training_flags_are_one_line_and_exit_2(tmp_path_factory, flags):
    argv = [*TRAIN, "--steps", "0"]
    for flag, i in flags.items():
        argv += [flag, FLAG_VALUES[flag][i % len(FLAG_VALUES[flag])]]
    if "--epochs" in flags:
        argv.remove("--steps"), argv.remove("0")
    code, err = subprocess_free_main([*argv, "--out", str(tmp_path_factory.mktemp("flags") / "r")])
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("pyro-vrnn: error: "), (argv, err)


# ---------------------------------------------------------------------------------------------- out of memory
def _cli(argv, timeout=120):
    """The real ``pyro-vrnn`` process under a 2 GiB address-space limit."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": LIBRARY_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "pyro_vrnn.cli", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit)


def test_a_thread_count_that_crashes_torch_is_refused(tmp_path):
    """``torch.set_num_threads(100000)`` kills the process (SIGSEGV in the first matmul): refused up front."""
    result = _cli([*TRAIN, "--steps", "1", "--threads", "100000", "--out", str(tmp_path / "r")])
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--threads" in result.stderr, result.stderr


def test_music_from_dev_zero_is_a_data_error_not_out_of_memory_advice(tmp_path):
    result = _cli(["train", "--model", "rnn-normal", "--data", "music:/dev/zero", "--steps", "1", "--quiet",
                   "--out", str(tmp_path / "r")])
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "character device" in result.stderr and "--batch-size" not in result.stderr


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory: you "
                                                               "tried to allocate 400000000000000 bytes")])
def test_running_out_of_memory_while_loading_data_is_a_data_error(tmp_path, monkeypatch, capsys, error):
    import pyro_vrnn.data.registry as registry

    def exhausted(**kwargs):
        raise error

    monkeypatch.setitem(registry._OFFLINE_BUILDERS, "speech-synthetic", exhausted)
    line = one_line_error(capsys, main([*TRAIN, "--steps", "1", "--out", str(tmp_path / "r")]),
                          "out of memory generating speech-synthetic")
    assert "--batch-size" not in line


def test_running_out_of_memory_in_a_training_step_still_names_the_knobs(tmp_path, monkeypatch, capsys):
    from pyro_vrnn.infer import SequenceELBO

    def oom(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(SequenceELBO, "loss_and_grads", oom)  # the Trainer's default ELBO
    code = main([*TRAIN, "--steps", "2", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--batch-size" in err, err
