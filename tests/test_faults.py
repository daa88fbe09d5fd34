"""Faults a long run must survive, and bad input every entry point must reject clearly.

- a training process killed with SIGKILL mid-run and resumed ends bitwise equal to an uninterrupted run;
- truncated / corrupt checkpoints give an error naming the file, and loading falls back to the last good one;
- NaN in a batch or in a gradient skips the step before parameters or optimizer state change;
- a diverging model stops with :class:`DivergenceError` and leaves the last good checkpoint intact;
- importance sampling: chunked equals unchunked for the same seed; huge log-weights stay finite;
- out-of-memory errors name the knobs that bound memory;
- tensors of the wrong rank, size, dtype or device, and mismatched masks, give a ``ValueError``.
"""

import copy
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pyro
import pytest
import torch

from pyro_vrnn import RNN, VRNN, importance_estimate, importance_log_likelihood
from pyro_vrnn.train.checkpoint import (CHECKPOINT, PREVIOUS, CheckpointError, load_checkpoint, load_latest, rng_state,
                                  save_checkpoint, set_rng_state)
from pyro_vrnn.train.resources import OutOfMemoryError
from pyro_vrnn.train.trainer import DivergenceError, Trainer

TESTS = Path(__file__).parent
SCRIPT = TESTS / "_train_script.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def tiny_vrnn(dtype=torch.float32, **kw):
    model = VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,), **kw)
    return model.to(dtype)


def batch(b=3, t=5, x_dim=2, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, x_dim, generator=g, dtype=dtype)
    mask = torch.arange(t).expand(b, t) < torch.tensor([t, t - 2, 1][:b] + [t] * max(0, b - 3))[:, None]
    return x, mask


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def assert_same_optimizer_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        for pa, pb in zip(a[name]["state"].values(), b[name]["state"].values()):
            for key in pa:
                va, vb = pa[key], pb[key]
                assert torch.equal(va, vb) if torch.is_tensor(va) else va == vb, (name, key)


# ---------------------------------------------------------------------------------------------- SIGKILL
def _run_script(run_dir, *args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), str(run_dir), *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _checkpoint_step(path: Path) -> int:
    try:
        return int(load_checkpoint(path)["step"])
    except CheckpointError:  # not written yet
        return -1


def _kill_when_checkpoint_reaches(proc, checkpoint: Path, step: int) -> None:
    """SIGKILL ``proc`` once ``checkpoint`` records ``step`` or more."""
    try:
        deadline = time.monotonic() + 120
        while _checkpoint_step(checkpoint) < step:
            assert proc.poll() is None, f"finished before the kill: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "the training process never reached the kill step"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def _finish(proc) -> None:
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()


def test_sigkill_mid_run_then_resume_reaches_bitwise_the_uninterrupted_parameters(tmp_path):
    total, kill_at = 9, 3
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path / "killed"), "--steps", str(total),
                             "--sleep", "0.15"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # meanwhile, the uninterrupted reference run
    full = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path / "full"), "--steps", str(total)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when_checkpoint_reaches(proc, tmp_path / "killed" / CHECKPOINT, kill_at)
    _finish(full)
    killed_at = _checkpoint_step(tmp_path / "killed" / CHECKPOINT)
    assert kill_at <= killed_at < total, killed_at
    assert not (tmp_path / "killed" / "final.pt").exists()

    resumed = _run_script(tmp_path / "killed", "--steps", total, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {killed_at}" in resumed.stdout
    a = torch.load(tmp_path / "full" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "final.pt", weights_only=True)
    assert a["step"] == b["step"] == total
    assert_same_tensors(a["model"], b["model"])
    # and the checkpoints' optimizer state agrees too
    assert_same_optimizer_state(load_checkpoint(tmp_path / "full" / CHECKPOINT)["trainer"]["optimizer"],
                                load_checkpoint(tmp_path / "killed" / CHECKPOINT)["trainer"]["optimizer"])


def test_in_process_resume_from_each_step_is_bitwise_identical(tmp_path):
    """The same guarantee without a subprocess, resuming at every step of a short run: model,
    optimizer, batch order and RNG state all round-trip through the checkpoint file."""
    sys.path.insert(0, str(TESTS))
    try:
        import _train_script as script
    finally:
        sys.path.remove(str(TESTS))
    data, total = script.data(), 6
    model, trainer = script.build(0)
    trainer.fit(data, total, 5, progress=False, generator=torch.Generator().manual_seed(0))
    reference = snapshot(model)
    for stop in (1, 3, 5):
        run = tmp_path / f"stop{stop}"
        model, trainer = script.build(0)
        trainer.fit(data, stop, 5, progress=False, generator=torch.Generator().manual_seed(0),
                    callback=lambda tr, rec: save_checkpoint(run, trainer=tr, config={}))
        torch.manual_seed(999)  # whatever happened after the kill must not matter
        model, trainer = script.build(1)
        payload, _ = load_latest(run)
        trainer.load_state_dict(payload["trainer"])
        set_rng_state(payload["rng"])
        trainer.fit(data, total, 5, progress=False)
        assert_same_tensors(snapshot(model), reference)


# ---------------------------------------------------------------------------------------------- checkpoints
def _trained(tmp_path, steps=2):
    pyro.clear_param_store()
    model = tiny_vrnn()
    trainer = Trainer(model, lr=0.01)
    x, mask = batch()
    for _ in range(steps):
        trainer.step(x, mask)
        save_checkpoint(tmp_path, trainer=trainer, config={"model": "vrnn", "h_dim": 6},
                        normalizer_state={"mean": torch.zeros(2), "std": torch.ones(2)})
    return model, trainer


def test_checkpoint_records_version_config_step_rng_optimizer_and_normalization(tmp_path):
    import pyro_vrnn

    model, trainer = _trained(tmp_path)
    payload = load_checkpoint(tmp_path / CHECKPOINT)
    assert payload["version"] == pyro_vrnn.__version__
    assert payload["config"] == {"model": "vrnn", "h_dim": 6}
    assert payload["step"] == 2 == payload["trainer"]["step"]
    assert {"python", "numpy", "torch"} <= set(payload["rng"])
    assert torch.equal(payload["normalizer"]["std"], torch.ones(2))
    assert_same_tensors(payload["trainer"]["model"], snapshot(model))
    opt = payload["trainer"]["optimizer"]
    assert set(opt) == {n for n, _ in model.named_parameters()}
    assert all(s["state"][0]["step"] == 2 for s in opt.values())
    assert load_checkpoint(tmp_path / PREVIOUS)["step"] == 1
    assert not [p.name for p in tmp_path.iterdir() if p.name not in (CHECKPOINT, PREVIOUS)]  # no temp files left


def test_rng_state_round_trip_replays_python_numpy_and_torch_draws():
    import random

    import numpy as np

    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


@pytest.mark.parametrize("damage", ["truncate_half", "truncate_10_bytes", "empty", "garbage", "not_a_checkpoint"])
def test_damaged_checkpoint_names_the_file_and_load_latest_falls_back_to_the_last_good_one(tmp_path, damage):
    _trained(tmp_path)
    newest = tmp_path / CHECKPOINT
    data = newest.read_bytes()
    if damage == "truncate_half":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "truncate_10_bytes":
        newest.write_bytes(data[:-10])
    elif damage == "empty":
        newest.write_bytes(b"")
    elif damage == "garbage":
        newest.write_bytes(os.urandom(len(data)))
    else:
        torch.save({"weights": torch.zeros(3)}, newest)
    with pytest.raises(CheckpointError, match=str(newest).replace("\\", "\\\\")) as info:
        load_checkpoint(newest)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)  # no advice to unpickle unsafely
    with pytest.warns(RuntimeWarning, match="last good checkpoint"):
        payload, path = load_latest(tmp_path)
    assert path == tmp_path / PREVIOUS and payload["step"] == 1


def test_both_checkpoints_corrupt_is_one_error_naming_both_files(tmp_path):
    _trained(tmp_path)
    for name in (CHECKPOINT, PREVIOUS):
        path = tmp_path / name
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError) as info:
        load_latest(tmp_path)
    assert CHECKPOINT in str(info.value) and PREVIOUS in str(info.value)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_latest(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nowhere.pt")


def test_a_fifo_named_like_a_checkpoint_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / CHECKPOINT)  # torch.load would wait forever for a writer
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path / CHECKPOINT)
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_latest(tmp_path)


def test_a_save_that_fails_midway_leaves_the_previous_checkpoints_untouched(tmp_path, monkeypatch):
    model, trainer = _trained(tmp_path)
    before = {n: (tmp_path / n).read_bytes() for n in (CHECKPOINT, PREVIOUS)}

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    trainer.step(*batch())
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, trainer=trainer, config={})
    monkeypatch.undo()
    assert {n: (tmp_path / n).read_bytes() for n in (CHECKPOINT, PREVIOUS)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT, PREVIOUS])


def test_a_kill_between_the_rotation_renames_loses_no_step(tmp_path, monkeypatch):
    """Killed after ``checkpoint.pt`` became ``checkpoint.prev.pt`` but before the new file took its
    name: the complete new checkpoint is found under its temporary name."""
    import pyro_vrnn.train.checkpoint as ckpt

    model, trainer = _trained(tmp_path)
    trainer.step(*batch())
    calls = []
    real_replace = os.replace

    def replace_then_die(src, dst):
        calls.append(Path(dst).name)
        if Path(src).name == ckpt.NEXT:
            raise KeyboardInterrupt("killed")  # stands in for SIGKILL at this instant
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, trainer=trainer, config={})
    monkeypatch.undo()
    assert calls == [ckpt.NEXT, PREVIOUS, CHECKPOINT] and not (tmp_path / CHECKPOINT).exists()
    payload, path = load_latest(tmp_path)
    assert path.name == ckpt.NEXT and payload["step"] == 3
    save_checkpoint(tmp_path, trainer=trainer, config={})  # the next save tidies up
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT, PREVIOUS])


def test_a_damaged_newest_checkpoint_does_not_displace_the_last_good_one(tmp_path):
    model, trainer = _trained(tmp_path)  # checkpoint.pt at step 2, checkpoint.prev.pt at step 1
    newest = tmp_path / CHECKPOINT
    newest.write_bytes(newest.read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="last good checkpoint"):
        payload, _ = load_latest(tmp_path)
    trainer.load_state_dict(payload["trainer"])
    trainer.step(*batch())
    save_checkpoint(tmp_path, trainer=trainer, config={})
    assert load_checkpoint(tmp_path / CHECKPOINT)["step"] == 2
    assert load_checkpoint(tmp_path / PREVIOUS)["step"] == 1  # still the good one, not the damaged file


# ---------------------------------------------------------------------------------------------- NaN and divergence
def _skipped_step_changes_nothing(trainer, model, x, mask, expect):
    params, optim = snapshot(model), copy.deepcopy(trainer.optimizer_state())
    step = trainer.step_count
    with pytest.warns(RuntimeWarning, match=f"skipping step {step}: non-finite {expect}"):
        assert trainer.step(x, mask) is None
    assert trainer.step_count == step and trainer.bad_steps == 1
    assert_same_tensors(snapshot(model), params)
    assert_same_optimizer_state(trainer.optimizer_state(), optim)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_in_a_batch_skips_the_step_before_parameters_or_adam_state_change(value):
    model = tiny_vrnn()
    trainer = Trainer(model, lr=0.01)
    x, mask = batch()
    trainer.step(x, mask)  # Adam has state
    bad = x.clone()
    bad[1, 0, 1] = value
    _skipped_step_changes_nothing(trainer, model, bad, mask, "values in the batch")
    assert trainer.step(x, mask) is not None and trainer.bad_steps == 0  # the next good batch trains


def test_nan_only_in_padding_does_not_matter():
    x, mask = batch()
    padded_nan = x.masked_fill(~mask[..., None], float("nan"))
    padded_zero = x.masked_fill(~mask[..., None], 0.0)
    losses, params = [], []
    for data in (padded_nan, padded_zero):
        pyro.set_rng_seed(0)
        pyro.clear_param_store()
        model = tiny_vrnn()
        trainer = Trainer(model, lr=0.01)
        losses.append([trainer.step(data, mask) for _ in range(2)])
        params.append(snapshot(model))
    assert None not in losses[0] and losses[0] == losses[1]
    assert_same_tensors(*params)


def test_nan_reaching_a_distribution_parameter_is_a_skipped_step_not_a_crash(monkeypatch):
    """With Pyro's validation on, a NaN location is a ValueError inside the trace; the trainer
    counts it as a non-finite step instead of dying on it."""
    model = tiny_vrnn()
    trainer = Trainer(model, lr=0.01)
    x, mask = batch()
    trainer.step(x, mask)
    real_forward = model.emission.loc.forward
    monkeypatch.setattr(model.emission.loc, "forward", lambda h: real_forward(h) * float("nan"))
    _skipped_step_changes_nothing(trainer, model, x, mask, "distribution parameters")
    monkeypatch.undo()
    assert trainer.step(x, mask) is not None


def test_nan_in_a_gradient_skips_the_step_before_parameters_or_adam_state_change():
    model = tiny_vrnn()
    trainer = Trainer(model, lr=0.01)
    x, mask = batch()
    trainer.step(x, mask)
    weight = model.emission.loc.weight
    handle = weight.register_hook(lambda g: g * float("nan"))
    try:
        _skipped_step_changes_nothing(trainer, model, x, mask, "gradient")
    finally:
        handle.remove()
    before = snapshot(model)
    assert trainer.step(x, mask) is not None
    assert not torch.equal(snapshot(model)[next(iter(before))], before[next(iter(before))])


def test_inf_gradient_on_one_parameter_is_caught_too():
    model = tiny_vrnn()
    trainer = Trainer(model, lr=0.01)
    x, mask = batch()
    weight = list(model.parameters())[-1]
    handle = weight.register_hook(lambda g: g + float("inf"))
    try:
        _skipped_step_changes_nothing(trainer, model, x, mask, "gradient")
    finally:
        handle.remove()


def test_diverging_model_stops_with_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    pyro.clear_param_store()
    model = tiny_vrnn()
    # a learning rate that blows the model up (at 1e3 the weights reach ~1e3 and the loss ~1e24, still finite)
    trainer = Trainer(model, lr=1e5, max_bad_steps=3)
    x, mask = batch()
    data = [x[i, : int(mask[i].sum())] for i in range(3)] * 4
    saved = []

    def checkpoint(trainer, record):
        save_checkpoint(tmp_path, trainer=trainer, config={"model": "vrnn"})
        saved.append(snapshot(trainer.model))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DivergenceError, match=r"4 bad steps in a row \(limit 3\)") as info:
            trainer.fit(data, 50, 3, progress=False, callback=checkpoint)
    skips = [w for w in caught if "skipping step" in str(w.message)]
    assert len(skips) == 3
    assert "learning rate" in str(info.value) and "\n" not in str(info.value)
    good_steps = trainer.step_count
    assert 0 < good_steps < 50
    payload, path = load_latest(tmp_path)
    assert path.name == CHECKPOINT and payload["step"] == good_steps
    # the bad steps changed nothing: the checkpoint is the state after the last good step
    assert_same_tensors(payload["trainer"]["model"], saved[-1])
    assert_same_tensors(snapshot(model), saved[-1])
    assert all(torch.isfinite(v).all() for v in payload["trainer"]["model"].values())


def test_fit_skips_a_poisoned_sequence_and_still_reaches_the_step_count():
    g = torch.Generator().manual_seed(0)
    data = [torch.randn(4, 2, generator=g) for _ in range(6)]
    data[2][1, 0] = float("nan")
    trainer = Trainer(tiny_vrnn(), lr=0.01, max_bad_steps=2)
    with pytest.warns(RuntimeWarning, match="non-finite values in the batch"):
        history = trainer.fit(data, 8, 2, progress=False)
    assert trainer.step_count == 8 and [r["step"] for r in history] == list(range(1, 9))
    assert all(math.isfinite(r["loss"]) for r in history)


def test_good_step_resets_the_bad_step_count():
    model = tiny_vrnn()
    trainer = Trainer(model, lr=0.01, max_bad_steps=1)
    x, mask = batch()
    bad = x.clone()
    bad[0, 0, 0] = float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):  # bad, good, bad, good...: never two in a row, never an error
            assert trainer.step(bad, mask) is None
            assert trainer.step(x, mask) is not None
        trainer.step(bad, mask)
        with pytest.raises(DivergenceError):
            trainer.step(bad, mask)


@pytest.mark.parametrize("emission", ["normal", "gmm", "bernoulli", "handwriting"])
def test_saturated_networks_still_give_finite_losses_and_gradients(emission):
    """Scales at their floors, mixture logits and correlations saturated, Bernoulli logits at
    +-1e4: log-densities computed in log space stay finite, so training takes the step."""
    x_dim = 3
    model = VRNN(x_dim, 2, 6, emission, feature_dims=(6,), hidden_dims=(6,), num_components=3)
    x, mask = batch(x_dim=x_dim)
    if emission == "bernoulli":
        x = (x > 0).float()
    if emission == "handwriting":
        x[..., 2] = (x[..., 2] > 0).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("raw_scale.bias"):
                p.fill_(-1e4)  # every Gaussian scale (prior, guide, emission) at its floor
            elif name.endswith(("logits.bias", "head.bias")) and name.startswith("emission"):
                p.copy_(torch.tensor([1e4, -1e4]).repeat(p.numel())[: p.numel()])
    trainer = Trainer(model, lr=1e-3)
    loss = trainer.step(x, mask)
    assert loss is not None and math.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- importance sampling
@pytest.mark.parametrize("guide", ["filtering", "smoothing"])
def test_chunked_particles_give_the_same_estimate_as_unchunked_for_the_same_seed(guide):
    model = tiny_vrnn(torch.float64, guide=guide)
    x, mask = batch(dtype=torch.float64)
    results = {}
    for chunk in (None, 1, 3, 7, 20):
        pyro.set_rng_seed(5)
        results[chunk] = importance_estimate(model.model, model.guide, x, mask, num_particles=20, chunk_size=chunk)
    for chunk, est in results.items():
        assert torch.allclose(est.log_likelihood, results[None].log_likelihood, rtol=0, atol=1e-10), chunk
        assert torch.allclose(est.elbo, results[None].elbo, rtol=0, atol=1e-10), chunk
        assert torch.allclose(est.ess, results[None].ess, rtol=0, atol=1e-8), chunk
    pyro.set_rng_seed(6)  # a different seed gives a different estimate (so the test could fail)
    other = importance_log_likelihood(model.model, model.guide, x, mask, num_particles=20, chunk_size=1)
    assert not torch.allclose(other, results[None].log_likelihood)


def test_chunked_particles_agree_in_float32_to_rounding():
    model = tiny_vrnn()
    x, mask = batch()
    pyro.set_rng_seed(3)
    a = importance_log_likelihood(model.model, model.guide, x, mask, num_particles=16)
    pyro.set_rng_seed(3)
    b = importance_log_likelihood(model.model, model.guide, x, mask, num_particles=16, chunk_size=1)
    assert torch.allclose(a, b, rtol=0, atol=1e-4)


def test_huge_log_weights_give_a_finite_estimate():
    """Data far from a model whose emission scale sits at its floor: log-weights around -1e8 that
    differ by thousands of nats between particles; ``exp`` of any of them underflows, the
    float64 ``logsumexp`` does not."""
    from pyro_vrnn.infer.importance import importance_log_weights

    model = tiny_vrnn()
    x, mask = batch()
    x = x * 10
    with torch.no_grad():
        model.emission.raw_scale.weight.zero_()
        model.emission.raw_scale.bias.fill_(-30.0)  # scale -> its floor
        pyro.set_rng_seed(0)
        est = importance_estimate(model.model, model.guide, x, mask, num_particles=50, chunk_size=7)
        pyro.set_rng_seed(0)
        log_w, _ = importance_log_weights(model.model, model.guide, x, mask, num_particles=50, chunk_size=7)
    assert log_w.abs().max() > 1e4 and (log_w.max(0).values - log_w.min(0).values).max() > 1e3
    assert not torch.isfinite(log_w.exp().sum(0).log()).all()  # the naive estimate fails
    assert torch.isfinite(est.log_likelihood).all() and torch.isfinite(est.elbo).all()
    assert torch.isfinite(est.log_likelihood_se).all() and torch.isfinite(est.ess).all()
    assert (est.ess >= 1 - 1e-9).all()
    assert (est.log_likelihood >= est.elbo - 1e-6).all()  # Jensen
    assert torch.allclose(est.log_likelihood, torch.logsumexp(log_w, 0) - math.log(50))


def test_importance_rejects_bad_particle_and_chunk_counts():
    model = tiny_vrnn()
    x, mask = batch()
    with pytest.raises(ValueError, match="num_particles must be >= 1"):
        importance_log_likelihood(model.model, model.guide, x, mask, num_particles=0)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        importance_log_likelihood(model.model, model.guide, x, mask, num_particles=4, chunk_size=0)


# ---------------------------------------------------------------------------------------------- out of memory
@pytest.mark.parametrize("error", [
    lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
])
def test_out_of_memory_in_a_training_step_names_the_knobs_and_leaves_no_gradients(monkeypatch, error):
    model = tiny_vrnn()
    trainer = Trainer(model, lr=0.01)
    x, mask = batch()
    before = snapshot(model)
    real = trainer.elbo.loss_and_grads

    def oom_after_backward(model_fn, guide_fn, *args):
        real(model_fn, guide_fn, *args)  # gradients accumulated, then the allocator gives up
        raise error()

    monkeypatch.setattr(trainer.elbo, "loss_and_grads", oom_after_backward)
    with pytest.raises(OutOfMemoryError) as info:
        trainer.step(x, mask)
    message = str(info.value)
    assert message.startswith("out of memory during a training step")
    assert "--batch-size" in message and "\n" not in message
    assert_same_tensors(snapshot(model), before)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    monkeypatch.undo()
    assert trainer.step(x, mask) is not None  # a later step still works


def test_other_runtime_errors_pass_through_untranslated(monkeypatch):
    trainer = Trainer(tiny_vrnn())

    def broken(*args):
        raise RuntimeError("something else")

    monkeypatch.setattr(trainer.elbo, "loss_and_grads", broken)
    with pytest.raises(RuntimeError, match="something else") as info:
        trainer.step(*batch())
    assert not isinstance(info.value, OutOfMemoryError)


def test_out_of_memory_during_validation_names_the_knobs(monkeypatch):
    trainer = Trainer(tiny_vrnn())

    def oom(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(trainer.elbo, "loss", oom)
    with pytest.raises(OutOfMemoryError, match="--batch-size"):
        trainer.loss_per_step([torch.randn(4, 2)])


# ---------------------------------------------------------------------------------------------- bad tensors
def _entry_points(model):
    trainer = Trainer(model)
    return {
        "model": lambda x, m: model.model(x, m),
        "guide": lambda x, m: model.guide(x, m),
        "importance": lambda x, m: importance_log_likelihood(model.model, model.guide, x, m, num_particles=2),
        "trainer.step": lambda x, m: trainer.step(x, m),
    }


X_OK, MASK_OK = batch()
BAD_INPUTS = {
    "rank 2": (X_OK[0], None, r"shape \(batch, time, 2\)"),
    "rank 4": (X_OK[None], None, r"shape \(batch, time, 2\)"),
    "wrong x_dim": (torch.randn(3, 5, 4), None, "4 features per step, but the model has x_dim=2"),
    "float64 x": (X_OK.double(), None, "dtype torch.float64 but the model's parameters are torch.float32"),
    "int x": (X_OK.long(), None, "dtype torch.int64"),
    "meta device x": (X_OK.to("meta"), None, "x is on meta but the model is on cpu"),
    "empty batch": (torch.randn(0, 5, 2), None, "at least one sequence"),
    "zero steps": (torch.randn(3, 0, 2), None, "at least one sequence and one step"),
    "mask wrong shape": (X_OK, MASK_OK[:, :4], r"mask must have shape \(batch, time\) = \(3, 5\)"),
    "mask transposed": (X_OK, MASK_OK.T, r"mask must have shape"),
    "float mask": (X_OK, MASK_OK.float(), "mask must be a bool tensor"),
    "mask on meta": (X_OK, MASK_OK.to("meta"), "mask is on meta but x is on cpu"),
    "mask with holes": (X_OK, torch.tensor([[True, False, True, True, True]] * 3), "prefix"),
}


@pytest.mark.parametrize("entry", ["model", "guide", "importance", "trainer.step"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_tensors_give_a_value_error_saying_what_was_expected(entry, case):
    if case == "meta device x" and entry == "importance":
        pytest.skip("torch cannot seed a Generator on the meta device; see the model-on-meta test")
    model = tiny_vrnn()
    x, mask, expected = BAD_INPUTS[case]
    fn = _entry_points(model)[entry]
    with pytest.raises(ValueError, match=expected):
        fn(x, mask)


def test_bad_tensors_reach_the_rnn_baseline_too():
    model = RNN(2, 4, feature_dims=(4,), hidden_dims=(4,))
    with pytest.raises(ValueError, match="x_dim=2"):
        importance_log_likelihood(model.model, model.guide, torch.randn(2, 3, 5), num_particles=1)
    with pytest.raises(ValueError, match="bool tensor"):
        Trainer(model).step(torch.randn(2, 3, 2), torch.ones(2, 3))


@pytest.mark.parametrize("entry", ["model", "guide", "importance", "trainer.step"])
def test_model_on_another_device_than_the_data_is_a_value_error(entry):
    model = tiny_vrnn().to("meta")  # stands in for a GPU: a device the CPU data is not on
    with pytest.raises(ValueError, match="x is on cpu but the model is on meta"):
        _entry_points(model)[entry](X_OK, MASK_OK)


# ---------------------------------------------------------------------------------------------- the CLI
CLI_DATA = ["--data", "speech-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
            "--data-option", "num_test=2", "--data-option", "seconds=(0.2,0.3)", "--data-option", "frame_size=20",
            "--data-option", "chunk_frames=4"]
CLI_SIZES = ["--h-dim", "4", "--z-dim", "2", "--feature-dims", "4", "--hidden-dims", "4", "--batch-size", "3"]
#: the real CLI, slowed by a pause after each checkpoint so that a kill lands mid-run
SLOW_CLI = ("import sys, time; import pyro_vrnn.train.runs as runs; save = runs.save_checkpoint; "
            "runs.save_checkpoint = lambda *a, **k: (save(*a, **k), time.sleep(0.15))[0]; "
            "from pyro_vrnn.cli import main; sys.exit(main())")


def _cli(*args, slow=False, popen=False):
    command = [sys.executable, "-c", SLOW_CLI] if slow else [sys.executable, "-m", "pyro_vrnn.cli"]
    command += [str(a) for a in args]
    if popen:
        return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=180)


def test_cli_train_killed_with_sigkill_and_resumed_matches_an_uninterrupted_run(tmp_path):
    total, kill_at = 8, 3
    common = ["--model", "vrnn-normal", *CLI_DATA, *CLI_SIZES, "--steps", total, "--checkpoint-every", 1,
              "--valid-every", 2, "--quiet"]
    proc = _cli("train", *common, "--out", tmp_path / "killed", slow=True, popen=True)
    full = _cli("train", *common, "--out", tmp_path / "full", popen=True)  # meanwhile, the reference run
    _kill_when_checkpoint_reaches(proc, tmp_path / "killed" / CHECKPOINT, kill_at)
    _finish(full)
    killed_at = _checkpoint_step(tmp_path / "killed" / CHECKPOINT)
    assert kill_at <= killed_at < total

    resumed = _cli("train", "--resume", "--out", tmp_path / "killed", "--quiet")  # everything else from the run
    assert resumed.returncode == 0, resumed.stderr
    a, b = (load_checkpoint(tmp_path / run / CHECKPOINT)["trainer"] for run in ("full", "killed"))
    assert a["step"] == b["step"] == total
    assert [r["loss"] for r in a["history"]] == [r["loss"] for r in b["history"]], killed_at
    assert_same_tensors(a["model"], b["model"])
    assert_same_optimizer_state(a["optimizer"], b["optimizer"])
    assert [r["loss"] for r in a["history"]] == [r["loss"] for r in b["history"]]
    assert a["valid_history"] == b["valid_history"] and len(a["valid_history"]) == total // 2


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """A tiny trained run, a copy whose only checkpoint is truncated, and one with a corrupt config."""
    from pyro_vrnn.cli import main

    root = tmp_path_factory.mktemp("cli")
    assert main(["train", "--model", "vrnn-normal", *CLI_DATA, *CLI_SIZES, "--steps", "2", "--quiet",
                 "--checkpoint-every", "1", "--out", str(root / "run")]) == 0
    import shutil

    shutil.copytree(root / "run", root / "corrupt")
    (root / "corrupt" / PREVIOUS).unlink(missing_ok=True)
    (root / "corrupt" / CHECKPOINT).write_bytes((root / "run" / CHECKPOINT).read_bytes()[:300])
    shutil.copytree(root / "run", root / "garbage")
    for name in (CHECKPOINT, PREVIOUS):
        if (root / "garbage" / name).exists():
            (root / "garbage" / name).write_bytes(b"\x00not a checkpoint")
    (root / "a_file").write_text("not a run folder")
    return root


def _error_cases(root):
    run, out = str(root / "run"), str(root / "new")
    train = ["train", "--model", "vrnn-normal", *CLI_DATA, *CLI_SIZES, "--quiet"]
    return {
        "no command": ([], "required: COMMAND"),
        "unknown command": (["fly"], "invalid choice: 'fly'"),
        "unknown model": (["train", "--model", "vrnn-huge", *CLI_DATA, "--out", out], "invalid choice: 'vrnn-huge'"),
        "no model": (["train", *CLI_DATA, "--out", out], "--model is required"),
        "missing data path": (["train", "--model", "rnn-normal", "--data", str(root / "nope.pickle")[0:0] +
                               f"music:{root / 'nope.pickle'}", "--out", out], "no such file"),
        "unknown data": (["train", "--model", "rnn-normal", "--data", "jsb", "--out", out], "unknown dataset 'jsb'"),
        "bad data option": (["train", "--model", "rnn-normal", "--data", "speech-synthetic", "--data-option",
                             "colour=1", "--out", out], "colour"),
        "negative steps": ([*train, "--steps", "-1", "--out", out], "--steps: expected an integer >= 0, got '-1'"),
        "zero batch size": ([*train, "--batch-size", "0", "--out", out], "--batch-size: expected a positive integer"),
        "negative h-dim": ([*train, "--h-dim", "-3", "--out", out], "--h-dim: expected a positive integer, got '-3'"),
        "bad dims": ([*train, "--feature-dims", "4,x", "--out", out], "--feature-dims"),
        "nan lr": ([*train, "--lr", "nan", "--out", out], "--lr: expected a positive number"),
        "negative KL start": ([*train, "--steps", "1", "--kl-anneal-steps", "3", "--kl-anneal-start", "-5",
                               "--out", str(root / "kl")], "--kl-anneal-start: expected a number in (0, 1], got '-5'"),
        "unknown device": ([*train, "--device", "tpu9", "--out", out], "unknown device 'tpu9'"),
        "cuda without GPU": ([*train, "--device", "cuda", "--out", out], "no CUDA device"),
        "run exists without --resume": ([*train, "--steps", "1", "--out", run], "pass --resume"),
        "resume as another model": (["train", "--model", "storn", "--resume", "--out", run, "--quiet"],
                                    "checkpoint of model 'vrnn-normal', not 'storn'"),
        "resume with other sizes": (["train", "--resume", "--h-dim", "8", "--out", run, "--quiet"],
                                    "another run: it has model h_dim 4 (asked 8)"),
        "resume a corrupt run": (["train", "--resume", "--out", str(root / "corrupt"), "--quiet"],
                                 "checkpoint.pt: unreadable checkpoint"),
        "resume and overwrite": (["train", "--resume", "--overwrite", "--out", run, "--quiet"], "contradict"),
        "out is a file": ([*train, "--steps", "1", "--out", str(root / "a_file")], "a_file"),
        "evaluate a missing run": (["evaluate", str(root / "missing")], "no such run folder"),
        "evaluate a file": (["evaluate", str(root / "a_file")], "no such run folder"),
        "evaluate a corrupt run without a good copy": (["evaluate", str(root / "corrupt")], "unreadable checkpoint"),
        "evaluate garbage checkpoints": (["evaluate", str(root / "garbage")], "checkpoint.prev.pt"),
        "evaluate zero particles": (["evaluate", run, "--particles", "0"], "--particles: expected a positive"),
        "evaluate negative chunk": (["evaluate", run, "--chunk-size", "-2"], "--chunk-size"),
        "evaluate unknown split": (["evaluate", run, "--split", "dev"], "invalid choice: 'dev'"),
        "sample zero": (["sample", run, "--num", "0", "--out", out], "--num: expected a positive integer, got '0'"),
        "sample negative length": (["sample", run, "--length", "-1", "--out", out], "--length"),
        "sample a missing run": (["sample", str(root / "missing"), "--out", out], "no such run folder"),
        "sample a corrupt run": (["sample", str(root / "corrupt"), "--out", out], "unreadable checkpoint"),
        "compare unknown model": (["compare", "--models", "rnn-normal,gpt", *CLI_DATA, "--out", out],
                                  "unknown model(s) gpt"),
        "compare no models": (["compare", "--models", ",", *CLI_DATA, "--out", out], "(none given)"),
        "compare missing data": (["compare", "--data", f"speech:{root / 'nope'}", "--out", out], "no such file"),
    }


ERROR_CASES = list(_error_cases(Path("/x")))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_cli_error_is_one_line_on_stderr_with_exit_status_2(cli_runs, case, capsys):
    from pyro_vrnn.cli import main

    argv, expected = _error_cases(cli_runs)[case]
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("pyro-vrnn: error: "), captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err and "Trace Shapes" not in captured.err


@pytest.mark.parametrize("case", ["unknown model", "evaluate a corrupt run without a good copy"])
def test_cli_error_exit_status_of_the_real_process(cli_runs, case):
    argv, expected = _error_cases(cli_runs)[case]
    result = _cli(*argv)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr and "Traceback" not in result.stderr


def test_cli_resume_falls_back_to_the_last_good_checkpoint(cli_runs, tmp_path, capsys):
    import shutil

    from pyro_vrnn.cli import main

    run = tmp_path / "run"
    shutil.copytree(cli_runs / "run", run)
    assert main(["train", "--resume", "--steps", "3", "--checkpoint-every", "1", "--out", str(run), "--quiet"]) == 0
    (run / CHECKPOINT).write_bytes((run / CHECKPOINT).read_bytes()[:-50])  # step 3 damaged; prev is step 2
    capsys.readouterr()
    assert main(["train", "--resume", "--steps", "4", "--out", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "pyro-vrnn: warning:" in err and "last good checkpoint" in err and "Traceback" not in err
    assert load_checkpoint(run / CHECKPOINT)["step"] == 4


def test_cli_divergence_exits_1_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    from pyro_vrnn.cli import main

    run = tmp_path / "run"
    code = main(["train", "--model", "vrnn-normal", *CLI_DATA, *CLI_SIZES, "--steps", "40", "--lr", "1e5",
                 "--checkpoint-every", "1", "--quiet", "--out", str(run)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 1 and len(errors) == 1 and "bad steps in a row" in errors[0], err
    assert "Traceback" not in err
    payload, path = load_latest(run)
    assert path.name == CHECKPOINT and 0 < payload["step"] < 40
    assert all(torch.isfinite(v).all() for v in payload["trainer"]["model"].values())


def test_cli_divergence_between_periodic_checkpoints_still_saves_the_last_good_step(tmp_path, capsys):
    """Skipped steps change nothing, so the run saves the last good step on its way out."""
    from pyro_vrnn.cli import main

    run = tmp_path / "run"
    code = main(["train", "--model", "vrnn-normal", *CLI_DATA, *CLI_SIZES, "--steps", "40", "--lr", "1e5",
                 "--checkpoint-every", "1000", "--quiet", "--out", str(run)])
    assert code == 1 and "bad steps in a row" in capsys.readouterr().err
    payload, path = load_latest(run)
    assert path.name == CHECKPOINT and 0 < payload["step"] < 40
    assert all(torch.isfinite(v).all() for v in payload["trainer"]["model"].values())


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_cli_out_of_memory_names_the_knob_to_turn(cli_runs, tmp_path, monkeypatch, capsys, command):
    import pyro_vrnn.report.evaluation
    from pyro_vrnn.cli import main
    from pyro_vrnn.infer import SequenceELBO

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    if command == "train":
        monkeypatch.setattr(SequenceELBO, "loss_and_grads", oom)  # the Trainer's default ELBO
        argv = ["train", "--model", "vrnn-normal", *CLI_DATA, *CLI_SIZES, "--steps", "2", "--quiet",
                "--out", str(tmp_path / "run")]
        knob = "--batch-size"
    else:
        monkeypatch.setattr(pyro_vrnn.report.evaluation, "importance_estimate", oom)
        argv = ["evaluate", str(cli_runs / "run"), "--particles", "4", "--json", str(tmp_path / "e.json")]
        knob = "--chunk-size"
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("pyro-vrnn: error: out of memory during") and knob in err
