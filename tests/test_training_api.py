"""The training API a user meets first: the exports, ``fit(seed=...)``, the ``iwae`` objective with a
particle count, presets on the command line, and the progress bar."""

import io
import json

import pyro
import pytest
import torch
from pyro.infer import RenyiELBO

import pyro_vrnn
from pyro_vrnn import VRNN, KLAnnealing, Trainer, fit
from pyro_vrnn.cli import build_parser, main
from pyro_vrnn.data.batching import batch_indices, pad_batch
from pyro_vrnn.train.presets import PRESETS, get_preset
from pyro_vrnn.train.progress import progress_bar

TINY_MUSIC = ["--data", "music-synthetic", "--data-option", "num_train=6", "--data-option", "num_valid=2",
              "--data-option", "num_test=3", "--data-option", "lengths=(6,10)"]
TINY_MODEL = ["--h-dim", "8", "--z-dim", "2", "--feature-dims", "8", "--hidden-dims", "8"]


def sequences(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3 + i % 4, 2, generator=g).cumsum(0) * 0.3 for i in range(n)]


def test_trainer_fit_and_kl_annealing_are_importable_from_the_package():
    assert pyro_vrnn.Trainer is Trainer and pyro_vrnn.fit is fit and pyro_vrnn.KLAnnealing is KLAnnealing
    assert {"Trainer", "fit", "KLAnnealing"} <= set(pyro_vrnn.__all__)


def test_validation_batches_are_cut_from_the_length_sorted_order_and_give_the_same_loss():
    """Padding costs as much as a real step, so validation batches sequences of similar lengths; the
    figure is a sum over sequences and does not depend on the batching (exact: an RNN, float64)."""
    from pyro_vrnn.models.seeds import RNN
    torch.manual_seed(0)
    model = RNN(2, 5, emission="normal").double()
    seqs = [s.double() for s in sequences(9)]   # lengths 3, 4, 5, 6, 3, 4, 5, 6, 3 in file order
    trainer = Trainer(model)
    seen = []
    loss = trainer.elbo.loss
    trainer.elbo.loss = lambda model_fn, guide, x, mask: seen.append(mask.sum(1).tolist()) or loss(model_fn, guide, x,
                                                                                                    mask)
    per_step = trainer.loss_per_step(seqs, batch_size=3)
    assert seen == [[3, 3, 3], [4, 4, 5], [5, 6, 6]]
    by_sequence = []
    for s in seqs:  # one sequence a batch: no padding at all
        by_sequence.append(loss(model.model, trainer.guide, s.unsqueeze(0), torch.ones(1, len(s), dtype=torch.bool)))
    assert per_step == pytest.approx(sum(by_sequence) / sum(len(s) for s in seqs), rel=1e-12)


def test_the_validation_cost_benchmark_counts_the_padded_steps_of_both_batchings(tmp_path):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "validation_cost.py"
    spec = importlib.util.spec_from_file_location("validation_cost", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.computed_steps([3, 9, 3, 9], 2, sorted_batches=False) == 36  # each pair padded to 9
    assert script.computed_steps([3, 9, 3, 9], 2, sorted_batches=True) == 24   # (3, 3) and (9, 9)
    run = tmp_path / "run"
    assert main(["train", "--model", "rnn-normal", "--data", "music-synthetic", "--data-option", "num_train=4",
                 "--data-option", "num_valid=5", "--data-option", "num_test=1", "--data-option", "lengths=(4,20)",
                 "--steps", "1", "--valid-every", "0", "--quiet", "--out", str(run), *TINY_MODEL]) == 0
    (record,) = script.main([str(run), "--batch-size", "2", "--repeats", "1", "--json", str(tmp_path / "v.json")])
    assert record["num_sequences"] == 5
    assert record["real_steps"] <= record["computed_steps_sorted"] <= record["computed_steps_file_order"]
    # an RNN's loss is exact: the batching changes nothing but the rounding
    assert record["loss_per_step_sorted"][0] == pytest.approx(record["loss_per_step_file_order"][0], rel=1e-5)
    assert json.loads((tmp_path / "v.json").read_text())[0]["command"].startswith("python benchmarks/validation_cost")


# ------------------------------------------------------------------------------------------ fit(seed=...)
def _same_parameters(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_fit_with_a_seed_gives_bitwise_equal_parameters_for_separately_constructed_models():
    models = []
    for construction_seed in (11, 22):  # different initial parameters before fit
        torch.manual_seed(construction_seed)
        models.append(VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,)))
    assert not _same_parameters(*models)
    for model in models:
        torch.manual_seed(999)  # nor does the global RNG state before the call matter
        fit(model, sequences(), num_steps=3, batch_size=4, seed=5, progress=False, lr=0.02)
    assert _same_parameters(*models)
    other = VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,))
    fit(other, sequences(), num_steps=3, batch_size=4, seed=6, progress=False, lr=0.02)
    assert not _same_parameters(other, models[0])


def test_fit_num_steps_is_a_total_to_reach_not_a_number_of_further_steps():
    model = VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,))
    trainer = Trainer(model, lr=0.01)
    trainer.fit(sequences(), 4, 3, progress=False)
    trainer.fit(sequences(), 6, 3, progress=False)
    assert trainer.step_count == 6 and [r["step"] for r in trainer.history] == [1, 2, 3, 4, 5, 6]


# ------------------------------------------------------------------------------------------ iwae
def _first_step_loss(run):
    return json.loads((run / "history.json").read_text())["train"][0]["loss"]


def test_cli_iwae_with_train_particles_is_renyi_alpha_zero_with_k_particles(tmp_path):
    args = ["train", "--model", "vrnn-normal", *TINY_MUSIC, *TINY_MODEL, "--steps", "1", "--batch-size", "3",
            "--quiet", "--seed", "3"]
    assert main([*args, "--elbo", "iwae", "--train-particles", "5", "--out", str(tmp_path / "iwae")]) == 0
    assert main([*args, "--elbo", "trace", "--out", str(tmp_path / "trace")]) == 0
    iwae, trace = _first_step_loss(tmp_path / "iwae"), _first_step_loss(tmp_path / "trace")
    assert iwae != pytest.approx(trace, rel=1e-3)

    # the same first batch and initial parameters, RenyiELBO(alpha=0, num_particles=5) called directly
    from pyro_vrnn.train.runs import load_data
    from pyro_vrnn.models.zoo import build_model

    config = json.loads((tmp_path / "iwae" / "config.json").read_text())
    assert config["training"]["num_particles"] == 5
    dataset = load_data(config)
    first = batch_indices([len(s) for s in dataset.train], 3, True, torch.Generator().manual_seed(3), False)[0]
    x, mask = pad_batch([dataset.train[i] for i in first])
    pyro.enable_validation(False)  # as the CLI runs
    pyro.set_rng_seed(3)
    pyro.clear_param_store()
    model = build_model(config["model"])
    elbo = RenyiELBO(alpha=0.0, num_particles=5, vectorize_particles=True, max_plate_nesting=1)
    direct = elbo.loss(model.model, model.guide, x, mask) / float(mask.sum())
    assert iwae == pytest.approx(direct, rel=1e-5)


def test_kl_annealing_with_iwae_warns_that_it_is_not_kl_annealing():
    model = VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,))
    with pytest.warns(UserWarning, match="not KL annealing"):
        Trainer(model, elbo="iwae", num_particles=3, annealing=KLAnnealing(10, 0.2))
    with pytest.raises(ValueError, match="num_particles"):
        Trainer(model, elbo="iwae", num_particles=0)


# ------------------------------------------------------------------------------------------ presets
def test_preset_fills_the_flags_and_explicit_flags_win(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--preset", "music", *TINY_MUSIC, "--h-dim", "8", "--feature-dims", "8",
                 "--hidden-dims", "8", "--steps", "2", "--lr", "0.02", "--valid-every", "1", "--quiet",
                 "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    music = get_preset("music").flags
    assert config["model"]["name"] == music["model"]
    assert config["model"]["h_dim"] == 8 and config["training"]["lr"] == 0.02  # given: they win
    assert config["training"]["steps"] == 2 and config["training"]["valid_every"] == 1
    assert config["model"]["z_dim"] == music["z_dim"]  # not given: the preset's
    for key in ("batch_size", "patience", "lr_schedule", "lr_patience", "bucket_by_length"):
        assert config["training"][key] == music[key], key


def test_every_preset_names_only_real_train_flags_and_the_presets_command_lists_them(capsys):
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    dests = {action.dest for action in train._actions}
    for preset in PRESETS.values():
        assert set(preset.flags) <= dests, preset.name
        train.parse_args(["--out", "x", *preset.command_line().split()])  # the listed flags parse
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("music", "speech", "handwriting", "paper"))
    assert get_preset("paper").flags["h_dim"] == 2000
    with pytest.raises(ValueError, match="unknown preset 'jazz'"):
        get_preset("jazz")


# ------------------------------------------------------------------------------------------ progress
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_and_stays_quiet_elsewhere(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    shown = {}
    for label, stream, enabled in (("terminal", _Terminal(), True), ("quiet", _Terminal(), False),
                                   ("log file", io.StringIO(), True)):
        bar = progress_bar(4, desc="train", stream=stream, enabled=enabled)
        bar.set_postfix_str("loss 1.234", refresh=False)
        bar.update(4)
        bar.close()
        shown[label] = stream.getvalue()
    assert "train" in shown["terminal"] and "4/4" in shown["terminal"] and "loss 1.234" in shown["terminal"]
    assert shown["quiet"] == "" and shown["log file"] == ""
    monkeypatch.setenv("CI", "true")
    stream = _Terminal()
    progress_bar(4, stream=stream).close()
    assert stream.getvalue() == ""


def test_a_fivo_run_labels_its_loss_by_its_objective(tmp_path, capsys, monkeypatch):
    """Issue 23: a FIVO run's log line and plot said "negative ELBO per step"."""
    from pyro_vrnn.train import curves
    labels = []
    real = curves.plot_history
    monkeypatch.setattr("pyro_vrnn.train.runs.plot_history", lambda *a, **k: labels.append(k["loss"]) or real(*a, **k))
    run = tmp_path / "fivo"
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, "--h-dim", "8", "--z-dim", "2", "--feature-dims", "8",
                 "--hidden-dims", "8", "--steps", "2", "--elbo", "fivo", "--train-particles", "2",
                 "--out", str(run)]) == 0
    assert labels and set(labels) == {"negative FIVO bound (K = 2)"}
    err = capsys.readouterr().err
    assert "loss (negative FIVO bound (K = 2) per step, last 50)" in err and "negative ELBO" not in err
    assert curves.loss_label("trace") == "negative ELBO" and curves.loss_label("iwae", 4) == "negative IWAE bound (K = 4)"
