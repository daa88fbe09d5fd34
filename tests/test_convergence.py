"""Training that converges on purpose: early stopping, the best-on-validation checkpoint, the
plateau learning-rate schedule, and their exact resumption (in process and after a SIGKILL)."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyro
import pytest
import torch
from pyro.optim.clipped_adam import ClippedAdam as ClippedAdamTorch

from pyro_vrnn import VRNN
from pyro_vrnn.train.checkpoint import BEST, CHECKPOINT, CheckpointError, load_checkpoint, load_latest, save_checkpoint, \
    set_rng_state
from pyro_vrnn.cli import main
from pyro_vrnn.train.schedules import EarlyStopping, PlateauSchedule
from pyro_vrnn.train.trainer import Trainer

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TINY_MUSIC = ["--data", "music-synthetic", "--data-option", "num_train=6", "--data-option", "num_valid=2",
              "--data-option", "num_test=3", "--data-option", "lengths=(6,10)"]
TINY_MODEL = ["--h-dim", "8", "--z-dim", "2", "--feature-dims", "8", "--hidden-dims", "8", "--batch-size", "2"]


def sequences(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3 + i % 4, 2, generator=g).cumsum(0) * 0.3 for i in range(n)]


def tiny_trainer(seed=0, **kw):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    model = VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,))
    return model, Trainer(model, lr=kw.pop("lr", 0.05), **kw)


def scripted(trainer, curve):
    """Replace the validation loss by the values of ``curve``, one per validation."""
    values = iter(curve)
    trainer.loss_per_step = lambda valid, batch_size=64: next(values)


# ------------------------------------------------------------------------------------------ early stopping
def test_early_stopping_stops_after_patience_validations_without_a_new_best_on_a_scripted_curve():
    _, trainer = tiny_trainer(patience=3)
    # validations at steps 2, 4, ...: best 3.0 at step 8, then three that do not beat it
    scripted(trainer, [5.0, 4.0, 4.5, 3.0, 3.2, 3.0, 3.05, 1.0, 1.0])
    trainer.fit(sequences(6, 1), 100, 3, valid=sequences(2, 2), valid_every=2, progress=False)
    assert trainer.stopped_early and trainer.step_count == 14
    assert trainer.early_stopping.best == 3.0 and trainer.early_stopping.best_step == 8
    assert [r["best"] for r in trainer.valid_history] == [True, True, False, True, False, False, False]


def test_early_stopping_respects_min_delta_and_patience_zero_never_stops():
    stopping = EarlyStopping(patience=2, min_delta=0.5)
    assert stopping.update(1, 10.0) and not stopping.update(2, 9.6) and not stopping.should_stop
    assert not stopping.update(3, 9.7) and stopping.should_stop and stopping.best_step == 1
    tracking = EarlyStopping(patience=0)
    for step, loss in enumerate([3.0, 4.0, 5.0, 6.0, 7.0], 1):
        tracking.update(step, loss)
    assert not tracking.should_stop and tracking.best == 3.0 and tracking.bad_validations == 4
    assert not tracking.update(6, math.nan)  # a NaN validation is never a best


def test_early_stopping_and_schedule_need_a_validation_split(capsys):
    _, trainer = tiny_trainer(patience=2)
    with pytest.raises(ValueError, match="valid_every > 0"):
        trainer.fit(sequences(4, 1), 3, 2, progress=False)
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, *TINY_MODEL, "--lr-schedule", "plateau",
                 "--valid-every", "0", "--steps", "2", "--quiet", "--out", "/nonexistent/never-written"]) == 2
    assert "set --valid-every N" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the schedule
def test_plateau_schedule_halves_every_learning_rate_after_lr_patience_bad_validations_and_keeps_clipping():
    _, trainer = tiny_trainer(lr=0.04, clip_norm=3.0, lr_schedule=PlateauSchedule(factor=0.5, patience=1))
    scripted(trainer, [5.0, 6.0, 6.0, 6.0, 4.0, 7.0, 7.0])
    trainer.fit(sequences(6, 1), 7, 3, valid=sequences(2, 2), valid_every=1, progress=False)
    # ReduceLROnPlateau(patience=1): the second bad validation in a row halves the rate, then counts again
    assert [r["lr"] for r in trainer.valid_history] == [0.04, 0.04, 0.02, 0.02, 0.02, 0.02, 0.01]
    optimizers = [s.optimizer for s in trainer.optim.optim_objs.values()]
    assert len(optimizers) == len(list(trainer.model.parameters()))
    assert all(isinstance(o, ClippedAdamTorch) and o.param_groups[0]["clip_norm"] == 3.0 for o in optimizers)
    assert {o.param_groups[0]["lr"] for o in optimizers} == {0.01}


def test_plateau_schedule_rejects_bad_settings():
    with pytest.raises(ValueError, match="--lr-factor"):
        PlateauSchedule(factor=1.5)
    with pytest.raises(ValueError, match="--min-lr"):
        PlateauSchedule(min_lr=-1.0)


# ------------------------------------------------------------------------------------------ exact resume
def _converging_trainer():
    return tiny_trainer(lr=0.05, patience=3, lr_schedule=PlateauSchedule(factor=0.5, patience=0))


def test_resume_restores_learning_rate_schedule_and_early_stopping_state_exactly(tmp_path):
    train, valid = sequences(8, 1), sequences(3, 2)
    model, trainer = _converging_trainer()
    trainer.fit(train, 40, 3, valid=valid, valid_every=1, progress=False, generator=torch.Generator().manual_seed(0))
    reference = trainer.state_dict()
    assert trainer.stopped_early and trainer.step_count < 40  # the test needs a stop and a lowered rate
    assert reference["valid_history"][-1]["lr"] < 0.05
    for stop in (2, trainer.step_count - 1):
        model, trainer = _converging_trainer()
        trainer.fit(train, stop, 3, valid=valid, valid_every=1, progress=False,
                    generator=torch.Generator().manual_seed(0),
                    callback=lambda tr, rec: save_checkpoint(tmp_path / str(stop), trainer=tr, config={}))
        torch.manual_seed(123)  # whatever happened after the interruption must not matter
        model, trainer = _converging_trainer()
        payload, _ = load_latest(tmp_path / str(stop))
        trainer.load_state_dict(payload["trainer"])
        set_rng_state(payload["rng"])
        trainer.fit(train, 40, 3, valid=valid, valid_every=1, progress=False)
        resumed = trainer.state_dict()
        assert resumed["step"] == reference["step"] and resumed["valid_history"] == reference["valid_history"]
        assert resumed["early_stopping"] == reference["early_stopping"]
        assert resumed["lr_scheduler"] == reference["lr_scheduler"]
        for name, value in reference["model"].items():
            assert torch.equal(resumed["model"][name], value), name


# ------------------------------------------------------------------------------------------ the run folder
@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A tiny CLI run that stops early: validation every step, patience 2, a fast learning rate."""
    run = tmp_path_factory.mktemp("runs") / "stopped"
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, *TINY_MODEL, "--steps", "60", "--lr", "0.05",
                 "--valid-every", "1", "--patience", "2", "--lr-schedule", "plateau", "--lr-patience", "0",
                 "--checkpoint-every", "5", "--quiet", "--out", str(run)]) == 0
    return run


def test_the_best_checkpoint_holds_the_best_validation_loss_of_the_run(stopped_run):
    last, best = load_checkpoint(stopped_run / CHECKPOINT), load_checkpoint(stopped_run / BEST)
    valid = last["trainer"]["valid_history"]
    assert last["trainer"]["early_stopping"]["bad_validations"] == 2 and last["step"] < 60  # stopped early
    best_entry = min(valid, key=lambda r: r["loss"])
    assert best["step"] == best_entry["step"] == last["trainer"]["early_stopping"]["best_step"] < last["step"]
    assert best["trainer"]["valid_history"][-1] == best_entry
    history = json.loads((stopped_run / "history.json").read_text())
    assert history["valid"] == valid and (stopped_run / "training.png").stat().st_size > 1000


def test_evaluate_and_sample_use_the_best_checkpoint_unless_told_last(stopped_run, tmp_path, capsys):
    best_step = load_checkpoint(stopped_run / BEST)["step"]
    last_step = load_checkpoint(stopped_run / CHECKPOINT)["step"]
    results = {}
    for which in ("best", "last"):
        path = tmp_path / f"{which}.json"
        flags = [] if which == "best" else ["--checkpoint", "last"]
        assert main(["evaluate", str(stopped_run), "--particles", "2", "--json", str(path), "--quiet", *flags]) == 0
        results[which] = json.loads(path.read_text())
    assert results["best"]["step"] == best_step and results["best"]["checkpoint"].endswith(BEST)
    assert results["last"]["step"] == last_step and results["last"]["checkpoint"].endswith(CHECKPOINT)
    assert main(["sample", str(stopped_run), "--num", "1", "--length", "4", "--out", str(tmp_path / "s"),
                 "--no-real", "--quiet"]) == 0
    from pyro_vrnn.train.runs import load_run

    best_model = load_run(stopped_run)[0]
    assert all(torch.equal(p, load_checkpoint(stopped_run / BEST)["trainer"]["model"][n])
               for n, p in best_model.state_dict().items())


def test_an_unreadable_best_checkpoint_is_an_error_not_another_model(stopped_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    (run / BEST).write_bytes((run / BEST).read_bytes()[:200])
    with pytest.raises(CheckpointError, match="checkpoint.best.pt"):
        from pyro_vrnn.train.runs import load_run

        load_run(run)
    assert load_run(run, checkpoint="last")[3]["step"] == load_checkpoint(run / CHECKPOINT)["step"]


# ------------------------------------------------------------------------------------------ SIGKILL
#: the real CLI, slowed by a pause after each checkpoint so that a kill lands mid-run
SLOW_CLI = ("import sys, time; import pyro_vrnn.train.runs as runs; save = runs.save_checkpoint; "
            "runs.save_checkpoint = lambda *a, **k: (save(*a, **k), time.sleep(0.15))[0]; "
            "from pyro_vrnn.cli import main; sys.exit(main())")


def _step_of(path: Path) -> int:
    try:
        return int(load_checkpoint(path)["step"])
    except CheckpointError:
        return -1


def test_best_checkpoint_survives_sigkill_and_the_resumed_run_ends_with_the_uninterrupted_best(tmp_path):
    common = ["train", "--model", "vrnn-normal", *TINY_MUSIC, *TINY_MODEL, "--steps", "10", "--lr", "0.05",
              "--valid-every", "1", "--patience", "4", "--lr-schedule", "plateau", "--lr-patience", "0",
              "--checkpoint-every", "1", "--quiet"]
    killed = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *common, "--out", str(tmp_path / "killed")], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    full = subprocess.Popen([sys.executable, "-m", "pyro_vrnn.cli", *common, "--out", str(tmp_path / "full")],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _step_of(tmp_path / "killed" / CHECKPOINT) < 4:
            assert killed.poll() is None, killed.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert full.wait(timeout=180) == 0, full.stderr.read().decode()
    finally:
        for proc in (killed, full):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    # the best checkpoint of the killed run is readable and is the best validation figure it had seen
    best, last = load_checkpoint(tmp_path / "killed" / BEST), load_checkpoint(tmp_path / "killed" / CHECKPOINT)
    assert last["step"] < 10
    seen = best["trainer"]["valid_history"] + last["trainer"]["valid_history"]
    assert best["trainer"]["valid_history"][-1]["loss"] == min(r["loss"] for r in seen)
    assert best["step"] == best["trainer"]["early_stopping"]["best_step"]

    assert main(["train", "--resume", "--out", str(tmp_path / "killed"), "--quiet"]) == 0
    a, b = (load_checkpoint(tmp_path / run / BEST) for run in ("full", "killed"))
    assert a["step"] == b["step"]
    for name, value in a["trainer"]["model"].items():
        assert torch.equal(b["trainer"]["model"][name], value), name
    a, b = (load_checkpoint(tmp_path / run / CHECKPOINT)["trainer"] for run in ("full", "killed"))
    assert a["valid_history"] == b["valid_history"] and a["lr_scheduler"] == b["lr_scheduler"]
    assert a["early_stopping"] == b["early_stopping"]
