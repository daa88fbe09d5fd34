"""Windowed training (``--train-window N``): truncated backpropagation through consecutive windows.

- the programs' ``initial_state`` starts the recurrence from a given state, and the fast ELBO gives
  ``Trace_ELBO``'s loss and gradients from it in float64;
- a window as long as the batch is today's training: the same parameters after several steps, bitwise;
- across windows the trainer equals a hand-written loop: per window the same loss and gradients, the
  state carried being the model's filtering state given the guide's latents, detached;
- evaluation (validation) runs whole sequences; the settings and the CLI carry the option.
"""

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO

from pyro_vrnn import DMM, RNN, SRNN, STORN, VRNN
from pyro_vrnn.data.batching import updates_per_epoch
from pyro_vrnn.infer import SequenceELBO
from pyro_vrnn.infer.engine import _tree_map
from pyro_vrnn.train.settings import TrainingSettings
from pyro_vrnn.train.trainer import Trainer


def _vrnn(**kw):
    pyro.clear_param_store()
    torch.manual_seed(0)
    return VRNN(3, 2, 6, feature_dims=(6,), hidden_dims=(6,), **kw).double()


def _batch(batch=3, steps=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(batch, steps, dtype=torch.bool)
    mask[1, 7:] = False   # ends inside the second window of 4
    mask[2, 3:] = False   # ends inside the first
    return x, mask


def _state(m, batch, seed=1):
    g = torch.Generator().manual_seed(seed)
    return _tree_map(lambda leaf: torch.randn(leaf.shape, generator=g, dtype=leaf.dtype),
                     m.initial_state((batch,), torch.zeros((), dtype=torch.float64)))


def _loss_and_grads(elbo, m, *args, **kwargs):
    pyro.set_rng_seed(3)
    for p in m.parameters():
        p.grad = None
    loss = elbo.loss_and_grads(m.model, m.guide, *args, **kwargs)
    return loss, [p.grad.clone() for p in m.parameters() if p.grad is not None]


@pytest.mark.parametrize("guide", ["filtering", "smoothing"])
def test_the_fast_elbo_from_an_initial_state_equals_trace_elbo_in_float64(guide):
    m = _vrnn(guide=guide)
    x, mask = _batch()
    state = _state(m, 3)
    kw = dict(num_particles=2, vectorize_particles=True, max_plate_nesting=1)
    fast = _loss_and_grads(SequenceELBO(**kw), m, x, mask, 0.5, initial_state=state)
    plain = _loss_and_grads(Trace_ELBO(**kw), m, x, mask, 0.5, initial_state=state)
    assert fast[0] == pytest.approx(plain[0], rel=1e-12)
    assert len(fast[1]) == len(plain[1]) > 5
    for a, b in zip(fast[1], plain[1]):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)
    # and the state matters: from h_0 the loss is another one
    assert _loss_and_grads(SequenceELBO(**kw), m, x, mask, 0.5)[0] != pytest.approx(fast[0], rel=1e-6)


def test_initial_state_of_the_wrong_batch_size_is_refused_naming_the_argument():
    m = _vrnn()
    x, mask = _batch()
    with pytest.raises(ValueError, match="initial_state must be a state of 3 sequences"):
        m.guide(x, mask, initial_state=_state(m, 2))


@pytest.mark.parametrize("make", [lambda: _vrnn(), lambda: STORN(3, 2, 6, feature_dims=(6,), hidden_dims=(6,)).double(),
                                  lambda: DMM(3, 2, "normal", transition_dim=4, emission_dims=(4,), rnn_dim=4).double()])
def test_final_state_is_the_recurrence_run_with_the_guides_latents(make):
    """``final_state`` on a window equals the state the model's own loop reaches when replayed on the
    guide's trace (for STORN and the DMM, whose states are ``(h, phi_x(x_{t-1}))`` and ``z_t``), and
    the state a window ends in starts the next as the whole sequence's loop would go on."""
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = make()
    x = torch.randn(2, 8, 3, dtype=torch.float64)
    trace = poutine.trace(m.guide).get_trace(x)
    end = m.final_state(x, guide_trace=trace)
    # by hand: the model's steps, z_t from the trace
    state = m.initial_state((2,), x)
    with poutine.block(), pyro.plate("sequences", 2, dim=-1):
        for t in range(8):
            with poutine.condition(data={f"z_{t}": trace.nodes[f"z_{t}"]["value"]}):
                state, _ = m.model_step(t, state, x[:, t])
    for a, b in zip(_leaves(end), _leaves(state)):
        assert torch.equal(a, b) and not a.requires_grad
    # two windows of 4 from the carried state end where one window of 8 ends (same latents)
    first = m.final_state(x[:, :4], guide_trace=_renamed(trace, range(4), 0))
    second = m.final_state(x[:, 4:], initial_state=first, guide_trace=_renamed(trace, range(4, 8), 4))
    for a, b in zip(_leaves(second), _leaves(end)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    # filtering_state (the guide's own return value where it runs the model's recurrence: VRNN, DMM)
    # is final_state on a fresh guide trace, drawn with the same noise
    pyro.set_rng_seed(2)
    fresh = m.filtering_state(x, initial_state=first)
    pyro.set_rng_seed(2)
    replayed = m.final_state(x, initial_state=first,
                             guide_trace=poutine.trace(m.guide).get_trace(x, initial_state=first))
    for a, b in zip(_leaves(fresh), _leaves(replayed)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12) and not a.requires_grad


def _leaves(state):
    return [state] if isinstance(state, torch.Tensor) else [leaf for part in state for leaf in _leaves(part)]


def _renamed(trace, steps, offset):
    """A trace holding ``z_{t - offset}`` = the given trace's ``z_t`` for ``t`` in ``steps``."""
    out = poutine.Trace()
    for t in steps:
        site = dict(trace.nodes[f"z_{t}"], name=f"z_{t - offset}")
        out.add_node(f"z_{t - offset}", **site)
    return out


def _train(window, steps=4, data=None, trainer_kwargs=None, **kw):
    m = _vrnn(**kw)
    trainer = Trainer(m, lr=0.01, train_window=window, **(trainer_kwargs or {}))
    sequences = data if data is not None else [s[:n] for s, n in zip(_batch(3, 10)[0], (10, 7, 3))]
    pyro.set_rng_seed(11)
    trainer.fit(sequences, steps, batch_size=3, progress=False, generator=torch.Generator().manual_seed(0))
    return m, trainer


@pytest.mark.parametrize("window", [10, 50])
def test_a_window_as_long_as_the_batch_is_todays_training_bit_for_bit(window):
    whole, whole_trainer = _train(0)
    windowed, windowed_trainer = _train(window)
    for (name, a), b in zip(whole.named_parameters(), windowed.parameters()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in whole_trainer.history] == [r["loss"] for r in windowed_trainer.history]
    assert windowed_trainer.step_count == 4


@pytest.mark.parametrize("guide", ["filtering", "smoothing"])
def test_windowed_training_equals_a_hand_written_loop_over_the_windows(guide):
    """Batch of 3 pieces (10, 7, 3 steps), windows of 4: updates on steps [0, 4) (3 rows), [4, 8) (2
    rows, from the carried state) and [8, 10) (1 row); each window's loss and gradients equal a
    Trace_ELBO step written out by hand, the state carried being the LSTM run by hand on the guide's
    latents from a fresh guide trace after the update."""
    x, mask = _batch()
    x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # padded with zeros, as pad_batch pads
    m = _vrnn(guide=guide)
    reference = _vrnn(guide=guide)
    reference.load_state_dict(m.state_dict())
    trainer = Trainer(m, lr=0.01, train_window=4)
    seen = []  # (x_w, mask_w, initial_state, gradients) per update
    step, optim = trainer.step, trainer.optim

    def recording_step(x_w, mask_w, initial_state=None):
        seen.append([x_w.clone(), mask_w.clone(), initial_state])
        return step(x_w, mask_w, initial_state)

    def recording_optim(params):
        seen[-1].append({name: p.grad.clone() for name, p in m.named_parameters() if p.grad is not None})
        optim(params)

    trainer.step, trainer.optim = recording_step, recording_optim
    pyro.set_rng_seed(5)
    updates = list(trainer.window_steps(x, mask))
    assert [(n, last) for _, n, last in updates] == [(4 + 4 + 3, False), (4 + 3, False), (2, True)]
    assert trainer.step_count == 3 and len(seen) == 3

    ref_optim = Trainer(reference, lr=0.01).optim  # the same clipped Adam
    elbo = Trace_ELBO(max_plate_nesting=1)
    pyro.set_rng_seed(5)
    state, rows = None, torch.arange(3)
    for k, start in enumerate((0, 4, 8)):
        alive = mask[rows, start]
        rows = rows[alive]
        state = None if state is None else _tree_map(lambda leaf: leaf[alive], state)
        x_w, mask_w = x[rows, start:start + 4], mask[rows, start:start + 4]
        got_x, got_mask, got_state, got_grads = seen[k]
        assert torch.equal(x_w, got_x) and torch.equal(mask_w, got_mask)
        assert (state is None) == (got_state is None)
        if state is not None:
            for a, b in zip(_leaves(state), _leaves(got_state)):
                assert torch.allclose(a, b, rtol=0, atol=1e-12) and not b.requires_grad
        with poutine.trace(param_only=True) as params:
            loss = elbo.loss_and_grads(reference.model, reference.guide, x_w, mask_w,
                                       **({} if state is None else {"initial_state": state}))
        assert updates[k][0] == pytest.approx(loss, rel=1e-12)
        grads = {name: p.grad for name, p in reference.named_parameters() if p.grad is not None}
        assert sorted(grads) == sorted(got_grads) and len(grads) > 5
        for name, g in grads.items():
            assert torch.allclose(g, got_grads[name], rtol=0, atol=1e-10), name
        unconstrained = {site["value"].unconstrained() for site in params.trace.nodes.values()}
        ref_optim(unconstrained)
        for p in unconstrained:
            p.grad = None
        if start + 4 < 10:
            with torch.no_grad():
                trace = poutine.trace(reference.guide).get_trace(x_w, mask_w, initial_state=state)
                state = _by_hand_state(reference, x_w, trace, state)
    for (name, p), q in zip(reference.named_parameters(), m.parameters()):
        assert torch.allclose(p, q, rtol=0, atol=1e-12), name


def _by_hand_state(m, x_w, trace, state):
    """``h`` after the window: LSTM cell on ``[phi_x(x_t), phi_z(z_t)]`` from ``state`` (or zeros)."""
    batch = x_w.shape[0]
    h, c = state if state is not None else (x_w.new_zeros(batch, 6), x_w.new_zeros(batch, 6))
    for t in range(x_w.shape[1]):
        u = torch.cat([m.phi_x(x_w[:, t]), m.phi_z(trace.nodes[f"z_{t}"]["value"])], -1)
        h, c = m.transition.cell(u, (h, c))
    return h, c


def test_windowed_fit_counts_one_step_per_window_and_validates_whole_sequences():
    m, trainer = _train(4, steps=5)
    assert [r["step"] for r in trainer.history] == [1, 2, 3, 4, 5]
    # the one batch of epoch 1 in 3 windows, epoch 2 left after 2 of them: a resume takes that batch again
    assert trainer._epoch is not None and trainer._epoch[1] == 0
    sequences = [s[:n] for s, n in zip(_batch(3, 10)[0], (10, 7, 3))]
    pyro.set_rng_seed(0)
    whole = Trainer(m, lr=0.01).loss_per_step(sequences)  # a trainer without windows: whole sequences
    pyro.set_rng_seed(0)
    assert trainer.loss_per_step(sequences) == whole


@pytest.mark.parametrize("steps, epoch_done", [(12, False), (13, True)])
def test_an_epoch_of_windows_is_the_windows_of_the_length_sorted_batches(steps, epoch_done):
    """--epochs counts updates by updates_per_epoch: batches [3, 7], [10, 14], [25] in windows of 4
    take 2 + 4 + 7 = 13 updates, and the trainer finishes its pass over the data at the 13th."""
    lengths = (10, 7, 3, 25, 14)
    assert updates_per_epoch(lengths, 2, train_window=4, bucket_by_length=True) == 13
    assert updates_per_epoch(lengths, 2) == 3
    with pytest.raises(ValueError, match="bucket-by-length"):
        updates_per_epoch(lengths, 2, train_window=4)
    g = torch.Generator().manual_seed(5)
    data = [torch.randn(n, 3, generator=g, dtype=torch.float64) for n in lengths]
    trainer = Trainer(_vrnn(), lr=0.01, train_window=4)
    pyro.set_rng_seed(11)
    trainer.fit(data, steps, batch_size=2, bucket_by_length=True, progress=False,
                generator=torch.Generator().manual_seed(0))
    assert trainer.step_count == steps and (trainer.state_dict()["epoch"] is None) == epoch_done


def test_train_window_is_a_training_setting_checked_and_refused_with_a_renyi_elbo_instance():
    settings = TrainingSettings(train_window=100)
    assert TrainingSettings.from_dict(settings.to_dict()).train_window == 100
    assert TrainingSettings.from_dict({}).train_window == 0  # a run saved before the setting existed
    with pytest.raises(ValueError, match="train_window must be >= 0"):
        TrainingSettings(train_window=-1)
    assert settings.build_trainer(_vrnn()).train_window == 100
    with pytest.raises(ValueError, match=r"--train-window"):
        Trainer(_vrnn(), elbo=RenyiELBO(alpha=0.0, num_particles=2), train_window=10)


# ------------------------------------------------------------------------------------------ FIVO and iwae
def test_fivo_from_the_initial_particles_equals_todays_fivo_on_fixed_noise():
    """Particles started from ``h_0`` given as an ``initial_state`` (leaves ``(K, B, D)``) give today's
    FIVO loss and gradients for the same seed (to rounding in float64: without one, the first step's
    networks run once for all particles, their gradients summed by broadcasting); and a trainer whose
    window covers the batch trains exactly as today's FIVO trainer."""
    from pyro_vrnn.infer import FIVO
    m = _vrnn()
    x, mask = _batch()
    h_0 = m.initial_state((4, 3), x)
    results = []
    for kwargs in ({}, {"initial_state": h_0}):
        results.append(_loss_and_grads(FIVO(num_particles=4), m, x, mask, **kwargs))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-13)
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    fivo = {"elbo": "fivo", "num_particles": 3}
    whole, whole_trainer = _train(0, trainer_kwargs=fivo)
    windowed, windowed_trainer = _train(10, trainer_kwargs=fivo)
    for (name, a), b in zip(whole.named_parameters(), windowed.parameters()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in whole_trainer.history] == [r["loss"] for r in windowed_trainer.history]


def test_carried_particles_are_the_filters_final_particles_resampled_by_their_weights():
    from pyro_vrnn.infer.smc import FilterResult, carry_particles
    K, B = 4, 2
    h = torch.arange(K * B * 3, dtype=torch.float64).view(1, K, B, 3)
    log_w = torch.full((1, K, B), -torch.inf, dtype=torch.float64)
    log_w[0, 2, 0] = 0.0          # sequence 0: all the weight on particle 2
    log_w[0, :, 1] = 0.0          # sequence 1: uniform: systematic resampling keeps every particle once
    result = FilterResult(None, None, None, None, state=(h, h + 0.5), log_w=log_w.requires_grad_())
    carried = carry_particles(result, torch.full((1, B, 1), 0.5, dtype=torch.float64))
    assert carried[0].shape == (K, B, 3) and not carried[0].requires_grad
    assert torch.equal(carried[0][:, 0], h[0, 2, 0].expand(K, 3))
    assert torch.equal(carried[0][:, 1], h[0, :, 1]) and torch.equal(carried[1], carried[0] + 0.5)


@pytest.mark.parametrize("elbo", ["fivo", "iwae"])
def test_windowed_fivo_and_iwae_carry_their_particles_across_windows(elbo):
    from pyro_vrnn.infer import FIVO
    m = _vrnn()
    trainer = Trainer(m, lr=0.01, train_window=4, elbo=elbo, num_particles=3)
    assert isinstance(trainer.elbo, FIVO) and trainer.elbo.ess_threshold == (0.0 if elbo == "iwae" else 0.5)
    starts = []
    step = trainer.step
    trainer.step = lambda x_w, mask_w, initial_state=None: starts.append(initial_state) or step(x_w, mask_w,
                                                                                                  initial_state)
    x, mask = _batch()
    pyro.set_rng_seed(0)
    updates = list(trainer.window_steps(x, mask))
    assert [n for _, n, _ in updates] == [11, 7, 2] and all(loss is not None for loss, _, _ in updates)
    assert starts[0] is None
    assert [leaf.shape for leaf in starts[1]] == [(3, 2, 6), (3, 2, 6)]  # K particles of the 2 rows left
    assert [leaf.shape for leaf in starts[2]] == [(3, 1, 6), (3, 1, 6)]
    # the particles differ from each other (each carries its own latents' history)
    assert not torch.equal(starts[1][0][0], starts[1][0][1])


def test_the_cli_trains_srnn_in_windows_with_the_music_long_preset_and_resumes(tmp_path):
    """``--preset music-long`` sets ``--train-window 100``; a flag given wins; the run trains an SRNN
    one update per window and resumes with the window it was saved with."""
    import json

    from pyro_vrnn.cli.main import main
    from pyro_vrnn.train.presets import get_preset
    assert get_preset("music-long").flags["train_window"] == 100
    tiny = ["--data", "music-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
            "--data-option", "num_test=2", "--data-option", "lengths=(9,12)", "--h-dim", "8", "--z-dim", "2",
            "--feature-dims", "8", "--hidden-dims", "8", "--batch-size", "4", "--valid-every", "2", "--quiet"]
    run = tmp_path / "run"
    assert main(["train", "--preset", "music-long", "--model", "srnn", *tiny, "--train-window", "5",
                 "--steps", "4", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["train_window"] == 5 and config["model"]["family"] == "srnn"
    history = json.loads((run / "history.json").read_text())["train"]
    assert [r["step"] for r in history] == [1, 2, 3, 4]  # one batch of pieces of 9-12 steps: 3 windows, then 1
    assert main(["train", "--resume", "--out", str(run), "--steps", "6", "--quiet"]) == 0
    history = json.loads((run / "history.json").read_text())["train"]
    assert [r["step"] for r in history] == [1, 2, 3, 4, 5, 6]
    assert json.loads((run / "config.json").read_text())["training"]["train_window"] == 5


@pytest.mark.parametrize("make", [
    lambda: _vrnn(), lambda: _vrnn(guide="smoothing"), lambda: _vrnn(prior="standard", guide="storn"),
    lambda: DMM(3, 2, "normal", transition_dim=4, emission_dims=(4,), rnn_dim=4).double(),
    lambda: SRNN(3, 2, 5, feature_dims=(4,), hidden_dims=(6,), rnn_dim=4).double(),
    lambda: RNN(3, 5, feature_dims=(4,), hidden_dims=(4,)).double()])
def test_the_engines_carried_state_equals_the_guides_for_the_same_noise(make):
    """What the trainer carries for a model the engine supports (the guide's loop without Pyro) is the
    state the guide program reaches, or the model replayed on its trace, with the same seed."""
    from pyro_vrnn.infer.engine import filtering_state
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = make()
    x, mask = _batch(3, 7)
    start = _tree_map(lambda leaf: leaf + 0.1, m.initial_state((3,), x))
    pyro.set_rng_seed(6)
    fast = filtering_state(m, x, mask, initial_state=start)
    pyro.set_rng_seed(6)
    programs = m.filtering_state(x, mask, initial_state=start)
    for a, b in zip(_leaves(fast), _leaves(programs)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12) and not a.requires_grad
    assert not torch.equal(_leaves(fast)[0], _leaves(m.initial_state((3,), x))[0])


@pytest.mark.parametrize("elbo", ["trace", "fivo"])
def test_a_run_checkpointed_between_two_windows_resumes_to_the_uninterrupted_parameters(tmp_path, elbo):
    """The checkpoint holds where the batch goes on (the next window and the carried state, the
    particles for FIVO): stopped after each update of a batch in 3 windows and resumed from the
    checkpoint file in a fresh trainer, the run ends with the uninterrupted run's parameters, bitwise."""
    from pyro_vrnn.train.checkpoint import load_latest, save_checkpoint, set_rng_state
    sequences = [s[:n] for s, n in zip(_batch(3, 10)[0], (10, 7, 3))]

    def build():
        m = _vrnn()
        return m, Trainer(m, lr=0.01, train_window=4, elbo=elbo, num_particles=2)

    model, trainer = build()
    pyro.set_rng_seed(11)
    trainer.fit(sequences, 5, 3, progress=False, generator=torch.Generator().manual_seed(0))
    reference = [p.detach().clone() for p in model.parameters()]
    for stop in (1, 2, 4):
        run = tmp_path / f"{elbo}{stop}"
        model, trainer = build()
        pyro.set_rng_seed(11)
        trainer.fit(sequences, stop, 3, progress=False, generator=torch.Generator().manual_seed(0),
                    callback=lambda tr, rec: save_checkpoint(run, trainer=tr, config={}))
        assert (trainer._window is not None) == (stop != 3)  # between two windows of a batch, or not
        torch.manual_seed(999)
        model, trainer = build()
        payload, _ = load_latest(run)
        trainer.load_state_dict(payload["trainer"])
        set_rng_state(payload["rng"])
        trainer.fit(sequences, 5, 3, progress=False)
        for a, b in zip(model.parameters(), reference):
            assert torch.equal(a, b)
