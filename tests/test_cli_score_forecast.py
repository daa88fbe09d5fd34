"""``pyro-vrnn score`` and ``pyro-vrnn forecast`` on a run trained on a CSV of sensor series: one row per
real step (scores) or per future step and feature (forecasts), the library's own numbers, the data's
own units, every sequence of --data (no split), and no file written over that the command did not create."""

import csv
import math

import numpy as np
import pytest
import torch

from pyro_vrnn import score
from pyro_vrnn.cli import main
from pyro_vrnn.data import load_series, pad_batch
from pyro_vrnn.train.runs import load_run

TINY_MODEL = ["--h-dim", "8", "--z-dim", "2", "--feature-dims", "8", "--hidden-dims", "8"]
SERIES_OPTIONS = ["--data-option", "id_column=unit", "--data-option", "time_column=t"]
LENGTHS = {"u0": 12, "u1": 9, "u2": 15, "u3": 10, "u4": 11}


def write_sensors(path, offset=20.0, extra_column=False):
    """Five units' series in long form, rows shuffled; temperature around ``offset``."""
    rng = np.random.default_rng(0)
    rows = []
    for unit, length in LENGTHS.items():
        level = 0.0
        for t in range(length):
            level = 0.8 * level + rng.normal()
            rows.append([unit, t, offset + 3 * level, 0.5 * level + rng.normal()] + ([1.0] if extra_column else []))
    rng.shuffle(rows)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["unit", "t", "temp", "load"] + (["extra"] if extra_column else []))
        writer.writerows(rows)
    return path


def read_csv(path):
    with open(path) as f:
        comments = [line for line in f if line.startswith("#")]
    with open(path) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return comments, rows


@pytest.fixture(scope="module")
def sensor_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sensors")
    data = write_sensors(folder / "sensors.csv")
    run = folder / "run"
    assert main(["train", "--model", "vrnn-normal", "--data", f"series:{data}", *SERIES_OPTIONS, "--steps", "2",
                 "--batch-size", "2", "--out", str(run), "--quiet", *TINY_MODEL]) == 0
    return run, data


def test_score_writes_one_row_per_real_step_of_every_sequence_with_the_librarys_numbers(sensor_run, tmp_path):
    run, data = sensor_run
    out = tmp_path / "scores.csv"
    assert main(["score", str(run), "--data", f"series:{data}", *SERIES_OPTIONS, "--particles", "7", "--seed", "3",
                 "--out", str(out), "--quiet"]) == 0
    comments, rows = read_csv(out)
    assert list(rows[0]) == ["sequence", "step", "log_prob", "ess"]
    assert "estimate of log p(x_t | x_{<t})" in comments[1] and "anomaly detector" in comments[1]
    steps = {}
    for row in rows:
        steps.setdefault(row["sequence"], []).append(int(row["step"]))
    assert steps == {unit: list(range(n)) for unit, n in LENGTHS.items()}  # all of them: no split, no cut
    assert all(1 - 1e-6 <= float(row["ess"]) <= 7 + 1e-6 for row in rows)

    # the numbers are the library's: the run's model, the run's normalization, sequence i seeded 3 * 1000003 + i
    model, _, normalizer, _ = load_run(run)
    whole = load_series(data, id_column="unit", time_column="t", valid_fraction=0, test_fraction=0)
    names = whole.info["sequence_names"]["train"]
    sequences = [normalizer.normalize(whole.normalizer.denormalize(s.double())).float() for s in whole.train]
    x, mask = pad_batch(sequences)
    expected = score(model, x, mask, num_particles=7, seed=[3 * 1000003 + i for i in range(len(sequences))])
    for i, name in enumerate(names):
        written = [float(row["log_prob"]) for row in rows if row["sequence"] == name]
        np.testing.assert_allclose(written, expected.log_prob[i, :LENGTHS[name]].numpy(), rtol=1e-4, atol=1e-5)


def test_score_without_data_reads_the_runs_test_split_and_rewrites_only_its_own_file(sensor_run, tmp_path):
    run, _ = sensor_run
    out = tmp_path / "test.csv"
    assert main(["score", str(run), "--particles", "3", "--out", str(out), "--quiet"]) == 0
    comments, rows = read_csv(out)
    assert "the test split of series:" in comments[0] and rows
    assert main(["score", str(run), "--particles", "3", "--out", str(out), "--quiet"]) == 0  # its own: replaced
    for foreign in (run / "checkpoint.pt", run / "config.json"):
        before = foreign.read_bytes()
        assert main(["score", str(run), "--particles", "3", "--out", str(foreign), "--quiet"]) == 2
        assert foreign.read_bytes() == before
    forecast_out = tmp_path / "forecast.csv"
    assert main(["forecast", str(run), "--horizon", "2", "--num-samples", "4", "--out", str(forecast_out),
                 "--quiet"]) == 0
    assert main(["score", str(run), "--particles", "3", "--out", str(forecast_out), "--quiet"]) == 2  # not a score file


def test_forecast_writes_quantiles_of_every_future_step_and_feature_in_data_units(sensor_run, tmp_path):
    run, data = sensor_run
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(run), "--data", f"series:{data}", *SERIES_OPTIONS, "--horizon", "3",
                 "--num-samples", "40", "--out", str(out), "--quiet"]) == 0
    comments, rows = read_csv(out)
    assert list(rows[0]) == ["sequence", "step", "feature", "mean", "q05", "q50", "q95"]
    assert "data's own units" in comments[2]
    keys = sorted((row["sequence"], int(row["step"]), row["feature"]) for row in rows)
    assert keys == sorted((unit, n + h, feature) for unit, n in LENGTHS.items() for h in range(3)
                          for feature in ("temp", "load"))
    for row in rows:
        q05, q50, q95 = float(row["q05"]), float(row["q50"]), float(row["q95"])
        assert q05 <= q50 <= q95 and q05 < q95 and math.isfinite(float(row["mean"]))
    # data units: the temperatures sit around 20 (normalized, they would sit around 0)
    temp = [float(row["q50"]) for row in rows if row["feature"] == "temp"]
    assert 10 < float(np.mean(temp)) < 30, temp
    assert main(["forecast", str(run), "--data", f"series:{data}", *SERIES_OPTIONS, "--horizon", "3",
                 "--num-samples", "40", "--out", str(out), "--quiet"]) == 0  # rewrites its own file
    assert read_csv(out)[1] == rows  # the same seed: the same numbers


def test_data_with_other_features_is_refused_naming_the_option(sensor_run, tmp_path, capsys):
    run, _ = sensor_run
    other = write_sensors(tmp_path / "wider.csv", extra_column=True)
    assert main(["score", str(run), "--data", f"series:{other}", *SERIES_OPTIONS, "--out",
                 str(tmp_path / "s.csv")]) == 2
    error = capsys.readouterr().err
    assert "--data series:" in error and "3 features" in error and "takes 2" in error
    assert not (tmp_path / "s.csv").exists()


def test_train_on_a_series_of_0_1_columns_picks_the_bernoulli_emission(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "switches.csv"
    with open(path, "w") as f:
        f.write("a,b\n" + "".join(f"{int(u)},{int(v)}\n" for u, v in rng.random((40, 2)) < 0.3))
    assert main(["train", "--model", "vrnn-normal", "--data", f"series:{path}", "--steps", "1", "--batch-size", "1",
                 "--out", str(tmp_path / "run"), "--quiet", *TINY_MODEL]) == 0
    assert load_run(tmp_path / "run")[1]["model"]["emission"] == "bernoulli"
    assert main(["train", "--model", "vrnn-normal", "--data", f"series:{path}", "--steps", "1", "--batch-size", "1",
                 "--emission", "normal", "--out", str(tmp_path / "run2"), "--quiet", *TINY_MODEL]) == 0
    assert load_run(tmp_path / "run2")[1]["model"]["emission"] == "normal"  # an explicit --emission wins


def test_a_single_series_is_scored_whole_not_cut_into_train_valid_test(sensor_run, tmp_path):
    run, _ = sensor_run
    path = tmp_path / "one.csv"
    rng = np.random.default_rng(2)
    with open(path, "w") as f:
        f.write("t,temp,load\n" + "".join(f"{t},{20 + rng.normal():.3f},{rng.normal():.3f}\n" for t in range(30)))
    assert len(load_series(path, time_column="t").train[0]) < 30  # training on it would hold out its end
    out = tmp_path / "one-scores.csv"
    assert main(["score", str(run), "--data", f"series:{path}", "--data-option", "time_column=t", "--particles", "3",
                 "--out", str(out), "--quiet"]) == 0
    rows = read_csv(out)[1]
    assert [int(row["step"]) for row in rows] == list(range(30)) and len({row["sequence"] for row in rows}) == 1


def test_sample_draws_a_series_run_one_line_per_feature(sensor_run, tmp_path):
    run, _ = sensor_run
    for extra, figure in ((["--num", "2", "--length", "8"], "samples.png"),
                          (["--prime", "0", "--length", "4"], "primed.png"),
                          (["--reconstruct", "--num", "1"], "reconstruction.png")):
        out = tmp_path / figure.split(".")[0]
        assert main(["sample", str(run), *extra, "--out", str(out), "--quiet"]) == 0
        assert (out / figure).stat().st_size > 1000
    primed = torch.load(tmp_path / "primed" / "primed.pt", weights_only=False)["primed"]
    assert primed[0].shape[1] == 2 and 10 < float(primed[0][:, 0].mean()) < 30  # temperatures, in data units
