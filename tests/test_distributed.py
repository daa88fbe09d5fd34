"""Data-parallel training and evaluation on two CPU processes (gloo), as ``torchrun`` runs them.

- two processes started with torchrun's environment (``tests/_distributed_worker.py``): bit-identical
  parameters after k steps, and an RNN in float64 whose two halves of every batch equal one
  process with the whole batch;
- the command line under ``torchrun``: a run killed by SIGKILL to one process and resumed equals
  the uninterrupted run; rank 0 alone writes; evaluation gathers the same JSON.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pyro_vrnn.cli import main

TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "--monitor-interval=0.1", "-m", "pyro_vrnn.cli"]
TINY = ["--model", "vrnn-normal", "--data", "music-synthetic", "--data-option", "num_train=12",
        "--data-option", "num_valid=2", "--data-option", "num_test=5", "--data-option", "lengths=(4,9)",
        "--h-dim", "6", "--z-dim", "2", "--feature-dims", "6", "--hidden-dims", "6", "--batch-size", "5",
        "--lr", "0.02", "--valid-every", "4", "--checkpoint-every", "1", "--quiet"]
STEPS = 40  # long enough for the test to kill the run part-way (checkpoints every step)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def worker_output(tmp_path_factory):
    return tmp_path_factory.mktemp("workers") / "result"


@pytest.fixture(scope="module")
def two_workers(worker_output):
    """Both processes' results from ``_distributed_worker.py``."""
    out = worker_output
    env = {**ENV, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    procs = [subprocess.Popen([sys.executable, str(TESTS / "_distributed_worker.py"), str(out)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    try:
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    return [torch.load(f"{out}.rank{r}.pt", weights_only=True) for r in range(2)]


def test_every_process_holds_bit_identical_parameters_after_k_steps(two_workers):
    first, second = two_workers
    assert first["agree"] and second["agree"]
    for name, value in first["vrnn"].items():
        assert torch.equal(value, second["vrnn"][name]), name


def test_rnn_on_two_processes_with_half_batches_equals_one_process_with_whole_batches(two_workers):
    import _distributed_worker as worker

    params, losses = worker.train_rnn(parallel=None)
    initial, _ = worker.rnn_trainer()
    assert any(not torch.equal(initial.state_dict()[k], v) for k, v in params.items())  # it did train
    for result in two_workers:
        assert len(result["rnn_losses"]) == len(losses) == worker.RNN_STEPS
        for a, b in zip(result["rnn_losses"], losses):
            assert abs(a - b) <= 1e-10 * max(1.0, abs(b))
        for name, value in params.items():
            assert value.dtype == torch.float64
            assert torch.allclose(result["rnn"][name], value, rtol=0, atol=1e-10), name


def test_evaluation_on_two_processes_gathers_what_one_process_gives_with_the_same_batch_seeds(two_workers):
    import _distributed_worker as worker

    from pyro_vrnn.train.distributed import DataParallel

    model = worker.vrnn()
    model.load_state_dict(two_workers[0]["vrnn"])
    alone = worker.evaluate(model, DataParallel(rank=0, world_size=1))
    assert two_workers[0]["evaluation"] == two_workers[1]["evaluation"] == alone["per_sequence"]
    assert all(v != 0.0 for v in alone["per_sequence"]["log_likelihood"])  # every sequence was evaluated
    plain = worker.evaluate(model, None)  # SMC seeds each sequence itself: one process gives the same
    assert two_workers[0]["smc"] == two_workers[1]["smc"] == plain["smc_per_sequence"]


# ---------------------------------------------------------------------------- the command line under torchrun
def _torchrun(*args):
    return subprocess.Popen([*TORCHRUN, *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(launcher, timeout=240):
    """Wait for a torchrun launcher; return its exit status and output (killing it past ``timeout``)."""
    try:
        output = launcher.communicate(timeout=timeout)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    return launcher.returncode, output


def _worker_of_rank(launcher_pid: int, rank: int) -> int | None:
    """The pid of the torchrun worker with ``RANK=rank`` (a child of the launcher), from /proc."""
    pending = [launcher_pid]
    while pending:
        pid = pending.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in environ and any(v.startswith(b"TORCHELASTIC_RUN_ID=") for v in environ):
                return child
            pending.append(child)
    return None


def _steps_done(run_dir: Path) -> int:
    try:
        return len(json.loads((run_dir / "history.json").read_text())["train"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture(scope="module")
def killed_and_uninterrupted(tmp_path_factory):
    """Two 2-process runs of the same training, side by side: one killed part-way (SIGKILL to rank 1)
    and resumed with --resume, one uninterrupted. Returns their run folders and the kill's step."""
    root = tmp_path_factory.mktemp("ddp")
    full, killed = root / "full", root / "killed"
    uninterrupted = _torchrun("train", *TINY, "--steps", STEPS, "--out", full)
    launcher = _torchrun("train", *TINY, "--steps", STEPS, "--out", killed)
    try:
        deadline = time.monotonic() + 180
        while _steps_done(killed) < 3 and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        victim = _worker_of_rank(launcher.pid, 1)
        assert victim is not None and launcher.poll() is None, "the run ended before it could be killed"
        os.kill(victim, signal.SIGKILL)
        status, output = _finish(launcher, timeout=60)  # torchrun stops the other process and fails
        assert status != 0, output
        killed_at = _steps_done(killed)
        status, output = _finish(_torchrun("train", "--out", killed, "--resume", "--quiet"))
        assert status == 0, output
        status, output = _finish(uninterrupted)
        assert status == 0, output
    finally:
        for proc in (launcher, uninterrupted):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return full, killed, killed_at


def test_a_run_killed_in_one_process_resumes_to_the_uninterrupted_result(killed_and_uninterrupted):
    full, killed, killed_at = killed_and_uninterrupted
    assert 3 <= killed_at < STEPS
    a = torch.load(killed / "checkpoint.pt", weights_only=True)
    b = torch.load(full / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == STEPS
    for name, value in b["trainer"]["model"].items():
        assert torch.equal(a["trainer"]["model"][name], value), name
    for name, state in b["trainer"]["optimizer"].items():
        for key, value in state["state"][0].items():
            mine = a["trainer"]["optimizer"][name]["state"][0][key]
            assert torch.equal(mine, value) if torch.is_tensor(value) else mine == value, (name, key)
    history = json.loads((killed / "history.json").read_text())
    assert [r["step"] for r in history["train"]] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in history["train"]] == [r["loss"] for r in json.loads((full / "history.json")
                                                                                  .read_text())["train"]]


def test_rank_zero_alone_writes_the_run_folder(two_workers, worker_output):
    rank0, rank1 = Path(f"{worker_output}.run0"), Path(f"{worker_output}.run1")  # a folder each
    assert not rank1.exists()
    assert sorted(p.name for p in rank0.iterdir()) == ["checkpoint.best.pt", "checkpoint.prev.pt", "checkpoint.pt",
                                                       "config.json", "history.json", "training.png"]
    assert json.loads((rank0 / "config.json").read_text())["world_size"] == 2


def test_config_records_the_world_size_and_no_temporary_file_is_left(killed_and_uninterrupted):
    full = killed_and_uninterrupted[0]
    config = json.loads((full / "config.json").read_text())
    assert config["world_size"] == 2 and config["training"]["batch_size"] == 5
    assert not [p.name for p in full.iterdir() if p.name.startswith(".")]


def test_resuming_on_one_process_continues_from_the_two_process_checkpoint(killed_and_uninterrupted, tmp_path):
    import shutil

    run = tmp_path / "one"
    shutil.copytree(killed_and_uninterrupted[0], run)
    before = torch.load(run / "checkpoint.pt", weights_only=True)
    assert main(["train", "--out", str(run), "--resume", "--steps", str(STEPS + 2), "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["world_size"] == 1
    history = json.loads((run / "history.json").read_text())
    assert [r["step"] for r in history["train"]] == list(range(1, STEPS + 3))
    after = torch.load(run / "checkpoint.pt", weights_only=True)
    assert after["step"] == STEPS + 2 and set(after["trainer"]["optimizer"]) == set(before["trainer"]["optimizer"])


def test_evaluate_under_a_launcher_writes_the_json_of_a_single_process(killed_and_uninterrupted, tmp_path,
                                                                      monkeypatch):
    from pyro_vrnn.train.distributed import DataParallel
    from pyro_vrnn.report.evaluation import evaluate_run

    run = killed_and_uninterrupted[0]
    plain = tmp_path / "plain.json"
    assert main(["evaluate", str(run), "--particles", "6", "--batch-size", "2", "--json", str(plain)]) == 0
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)
    launched = tmp_path / "launched.json"
    assert main(["evaluate", str(run), "--particles", "6", "--batch-size", "2", "--json", str(launched)]) == 0
    gathered = json.loads(launched.read_text())
    assert set(json.loads(plain.read_text())) == set(gathered)
    assert gathered["per_sequence"] == evaluate_run(run, "test", num_particles=6, batch_size=2, seed=0,
                                                    parallel=DataParallel(0, 1))["per_sequence"]


def test_commands_that_would_repeat_their_work_in_every_process_refuse_under_a_launcher(monkeypatch, tmp_path,
                                                                                      capsys):
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    assert main(["prepare", "--data", "music-synthetic", "--out", str(tmp_path / "corpus")]) == 2
    assert "only train and evaluate" in capsys.readouterr().err
    assert not (tmp_path / "corpus").exists()
