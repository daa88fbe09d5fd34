"""Tabular time series as datasets: CSV/TSV long form, folders of CSV or .npy, .npz archives."""

import random
import re

import numpy as np
import pytest
import torch

from pyro_vrnn.data import DataError, Normalizer, load_dataset, load_series


def long_csv(path, sequences, delimiter=",", shuffle=True, header=("id", "time", "temp", "load")):
    """Write ``{id: [(time, temp, load), ...]}`` in long form, rows shuffled; returns ``path``."""
    rows = [delimiter.join([str(ident)] + [str(v) for v in row]) for ident, rows in sequences.items() for row in rows]
    if shuffle:
        random.Random(0).shuffle(rows)
    path.write_text(delimiter.join(header) + "\n" + "\n".join(rows) + "\n")
    return path


SENSORS = {  # id: rows (time, temp, load); times given out of order and not evenly spaced
    "s1": [(3, 20.5, 1.0), (1, 20.0, 2.0), (10, 22.0, 0.5)],
    "s2": [(0.5, 18.0, 4.0), (2.5, 19.0, 3.0)],
    "s3": [(7, 25.0, 1.5), (8, 26.0, 2.5), (9, 27.0, 3.5), (11, 28.0, 4.5)],
}


def denormalized(data, split):
    return [data.normalizer.denormalize(seq.double()).numpy() for seq in data.split(split)]


def by_name(data):
    return {name: seq for split in ("train", "valid", "test")
            for name, seq in zip(data.info["sequence_names"][split], denormalized(data, split))}


def test_long_form_csv_with_shuffled_rows_is_ordered_by_the_time_column(tmp_path):
    data = load_series(long_csv(tmp_path / "s.csv", SENSORS), id_column="id", time_column="time",
                       valid_fraction=0.3, test_fraction=0.3)
    assert data.kind == "series" and data.x_dim == 2 and data.emission == "normal"
    assert data.info["feature_names"] == ["temp", "load"]
    seqs = by_name(data)
    np.testing.assert_allclose(seqs["s1"], [[20.0, 2.0], [20.5, 1.0], [22.0, 0.5]], atol=1e-5)
    np.testing.assert_allclose(seqs["s2"], [[18.0, 4.0], [19.0, 3.0]], atol=1e-5)
    np.testing.assert_allclose(seqs["s3"], [[25.0, 1.5], [26.0, 2.5], [27.0, 3.5], [28.0, 4.5]], atol=1e-5)
    assert all(data.info["sequence_names"][s] for s in ("train", "valid", "test"))


def test_a_tsv_file_without_id_column_is_one_sequence_cut_in_time(tmp_path):
    rows = {"": [(t, float(t * t), float(-t)) for t in range(20)]}
    path = tmp_path / "log.tsv"
    path.write_text("time\ttemp\tload\n" + "\n".join(f"{t}\t{a}\t{b}" for t, a, b in reversed(rows[""])) + "\n")
    data = load_series(path, time_column="time", valid_fraction=0.1, test_fraction=0.2)
    assert [s.shape[0] for s in (data.train + data.valid + data.test)] == [14, 2, 4]
    whole = np.concatenate(denormalized(data, "train") + denormalized(data, "valid") + denormalized(data, "test"))
    np.testing.assert_allclose(whole, [[t * t, -t] for t in range(20)], atol=1e-4)
    assert data.info["sequence_names"]["test"] == ["log.tsv [steps 16:20]"]


def test_features_are_z_scored_on_the_training_split_only(tmp_path):
    data = load_series(long_csv(tmp_path / "s.csv", SENSORS), id_column="id", time_column="time",
                       valid_fraction=0.3, test_fraction=0.3)
    train = np.concatenate([SENSORS[name] for name in data.info["sequence_names"]["train"]])[:, 1:]
    np.testing.assert_allclose(data.normalizer.shift.numpy(), train.mean(0))
    np.testing.assert_allclose(data.normalizer.scale.numpy(), train.std(0))
    normalized_train = torch.cat(data.train).double()
    np.testing.assert_allclose(normalized_train.mean(0).numpy(), [0, 0], atol=1e-6)
    np.testing.assert_allclose(normalized_train.std(0, unbiased=False).numpy(), [1, 1], atol=1e-6)
    again = Normalizer.from_state_dict(data.normalizer.state_dict())  # saved with the run as today
    assert torch.equal(again.shift, data.normalizer.shift) and torch.equal(again.scale, data.normalizer.scale)


def test_missing_values_are_refused_naming_file_and_line_unless_dropped(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("id,time,temp,load\n"
                    "a,1,1.0,2.0\n"
                    "a,2,,3.0\n"      # line 3: empty cell
                    "a,3,2.0,NaN\n"   # line 4
                    "a,4,3.0,5.0\n"
                    "b,1,NA,1.0\n"    # line 6
                    "b,2,4.0,1.5\n"
                    "b,3,5.0,0.5\n"
                    "c,1,6.0,1.0\n"
                    "c,2,7.0,9.0\n")
    with pytest.raises(DataError, match=r"gaps\.csv: line 3: missing value in column 'temp'"):
        load_series(path, id_column="id", time_column="time")
    data = load_series(path, id_column="id", time_column="time", missing="drop", valid_fraction=0.3,
                       test_fraction=0.3)
    seqs = by_name(data)
    np.testing.assert_allclose(seqs["a"], [[1.0, 2.0], [3.0, 5.0]], atol=1e-5)
    np.testing.assert_allclose(seqs["b"], [[4.0, 1.5], [5.0, 0.5]], atol=1e-5)
    assert data.info["rows_dropped"].startswith("3 ")


def test_a_non_numeric_feature_column_is_named(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("time,temp,room\n1,20.0,kitchen\n2,21.0,hall\n")
    with pytest.raises(DataError, match=r"mixed\.csv: line 2: column 'room' holds 'kitchen', not a number"):
        load_series(path, time_column="time")
    data = load_series(path, time_column="time", columns="temp", valid_fraction=0.0, test_fraction=0.0)
    assert data.info["feature_names"] == ["temp"] and data.valid == [] and data.test == []


@pytest.mark.parametrize("text,options,match", [
    ("time,temp\n1,2\n1,3\n", {"time_column": "time"}, r"time '1' appears twice \(lines 2 and 3\)"),
    ("time,temp\n1,2\n2\n", {}, r"line 3: 1 cells, but the header names 2 columns"),
    ("time,temp\n1,inf\n", {}, "infinite value"),
    ("time,temp\n", {}, "no data rows"),
    ("", {}, "no header row"),
    ("a,b\n1,2\n", {"id_column": "id"}, "id_column 'id' is not a column of this file; its columns are 'a', 'b'"),
    (",temp\n0,1\n1,2\n", {}, "column 1 has no name"),
    ("t,t\n1,2\n", {}, "'t' appear more than once"),
    ("x\n5\n5\n5\n", {}, r"column 'x' are all equal .* leave such a column out with columns="),
])
def test_a_malformed_table_is_a_data_error_naming_the_file(tmp_path, text, options, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        load_series(path, valid_fraction=0.3, test_fraction=0.3, **options)
    assert str(info.value).startswith(str(path))


def test_a_folder_of_npy_files_is_one_sequence_a_file(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"run{i}.npy": rng.normal(size=(5 + i, 3)) * [1, 10, 100] for i in range(5)}
    for name, value in arrays.items():
        np.save(tmp_path / name, value)
    data = load_series(tmp_path, valid_fraction=0.2, test_fraction=0.2, seed=3)
    assert (len(data.train), len(data.valid), len(data.test)) == (3, 1, 1)
    for name, seq in by_name(data).items():
        np.testing.assert_allclose(seq, arrays[name], rtol=1e-5, atol=1e-4)
    assert data.info["feature_names"] == ["x0", "x1", "x2"]


def test_train_valid_test_files_and_sub_folders_are_the_splits(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    for split, ids in (("train", ["a", "b", "c"]), ("valid", ["d"]), ("test", ["e", "f"])):
        long_csv(files / f"{split}.csv", {i: [(t, float(t) + ord(i), float(t % 3)) for t in range(4)] for i in ids})
    data = load_series(files, id_column="id", time_column="time")
    assert data.info["sequence_names"] == {"train": ["a", "b", "c"], "valid": ["d"], "test": ["e", "f"]}
    folders = tmp_path / "folders"
    for split, count in (("train", 3), ("test", 1)):
        (folders / split).mkdir(parents=True)
        for i in range(count):
            np.save(folders / split / f"{i}.npy", np.arange(6.0 + i))
    data = load_series(folders, valid_fraction=0.3)  # no valid/ folder: held out of train
    assert data.info["sequence_names"]["test"] == ["test/0.npy"]
    assert len(data.valid) == 1 and len(data.train) == 2 and data.x_dim == 1


def test_an_npz_of_arrays_per_key_or_per_split(tmp_path):
    rng = np.random.default_rng(1)
    per_key = {f"k{i}": rng.normal(size=(4 + i, 2)) for i in range(4)}
    np.savez(tmp_path / "keys.npz", **per_key)
    data = load_series(tmp_path / "keys.npz", valid_fraction=0.25, test_fraction=0.25)
    assert sorted(sum(data.info["sequence_names"].values(), [])) == sorted(per_key)
    for name, seq in by_name(data).items():
        np.testing.assert_allclose(seq, per_key[name], rtol=1e-5, atol=1e-5)
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = rng.normal(size=(3, 2)), rng.normal(size=(5, 2))
    np.savez(tmp_path / "splits.npz", train=ragged, test=rng.normal(size=(2, 6, 2)))
    data = load_series(tmp_path / "splits.npz", valid_fraction=0.0)
    assert data.info["sequence_names"] == {"train": ["train[0]", "train[1]"], "valid": [],
                                           "test": ["test[0]", "test[1]"]}
    np.testing.assert_allclose(denormalized(data, "train")[1], ragged[1], rtol=1e-5, atol=1e-5)
    with_nan = {"k0": np.array([[1.0], [np.nan], [2.0]]), "k1": np.array([[0.0], [4.0]]), "k2": np.array([[5.0]])}
    np.savez(tmp_path / "nan.npz", **with_nan)
    with pytest.raises(DataError, match=r"nan\.npz: array k0: missing value \(NaN\) at row 1"):
        load_series(tmp_path / "nan.npz")


def test_all_binary_columns_call_for_a_bernoulli_emission_and_stay_unnormalized(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {f"b{i}": (rng.random((6, 3)) < 0.5).astype(np.float64) for i in range(4)}
    np.savez(tmp_path / "bits.npz", **arrays)
    data = load_series(tmp_path / "bits.npz", valid_fraction=0.25, test_fraction=0.25)
    assert data.emission == "bernoulli" and data.normalizer.is_identity
    assert data.info["binary_columns"] == ["x0", "x1", "x2"]
    for name, seq in zip(data.info["sequence_names"]["train"], data.train):
        np.testing.assert_array_equal(seq.numpy(), arrays[name])
    assert "emission the data call for: bernoulli" in data.describe()


def test_load_dataset_reads_series_with_data_options(tmp_path):
    path = long_csv(tmp_path / "s.csv", SENSORS)
    data = load_dataset(f"series:{path}", id_column="id", time_column="time", valid_fraction=0.3, test_fraction=0.3,
                        chunk_length=2)
    assert data.name == f"series:{path}" and data.kind == "series"
    assert max(seq.shape[0] for split in ("train", "valid", "test") for seq in data.split(split)) == 2
    with pytest.raises(DataError, match="unknown option 'bogus'"):
        load_dataset(f"series:{path}", bogus=1)


@pytest.mark.parametrize("option,value", [("missing", "bogus"), ("id_column", ""), ("id_column", 1.5),
                                          ("columns", []), ("delimiter", ";;"), ("chunk_length", 0),
                                          ("valid_fraction", 1.0), ("seed", -2), ("on_error", "bogus"),
                                          ("max_bytes", 0)])
def test_a_bad_series_option_is_a_data_error_naming_it(tmp_path, option, value):
    with pytest.raises(DataError, match=rf"{option} must be .*{re.escape(repr(value))}"):
        load_series(long_csv(tmp_path / "s.csv", SENSORS), **{option: value})


def test_a_broken_file_in_a_series_folder_is_named_or_skipped(tmp_path):
    for i in range(4):
        np.save(tmp_path / f"ok{i}.npy", np.arange(5.0) * (i + 1))
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=r"broken\.npy: not a readable \.npy array"):
        load_series(tmp_path)
    with pytest.warns(UserWarning, match=r"broken\.npy"):
        data = load_series(tmp_path, on_error="skip", valid_fraction=0.25, test_fraction=0.25)
    assert len(data.train) + len(data.valid) + len(data.test) == 4


def test_files_of_a_folder_must_share_their_features_and_a_skipped_file_leaves_no_trace(tmp_path):
    (tmp_path / "a.csv").write_text("temp,load\n1,2\n3,4\n")
    (tmp_path / "b.csv").write_text("temp,humidity\n1,2\n3,5\n")
    with pytest.raises(DataError, match=r"b\.csv: its feature columns temp, humidity differ from temp, load of"):
        load_series(tmp_path)
    (tmp_path / "b.csv").unlink()
    np.save(tmp_path / "0_wide.npy", np.ones((100, 3)))  # read first; 2400 bytes of values: over the limit
    for i in range(3):
        np.save(tmp_path / f"c{i}.npy", np.arange(6.0).reshape(3, 2) * (i + 2))
    with pytest.warns(UserWarning, match=r"0_wide\.npy: the series read so far .* over the limit of 500 bytes"):
        data = load_series(tmp_path, on_error="skip", valid_fraction=0.25, test_fraction=0.25, max_expanded_bytes=500)
    assert data.x_dim == 2 and data.info["feature_names"] == ["temp", "load"]
    assert sorted(sum(data.info["sequence_names"].values(), [])) == ["a.csv", "c0.npy", "c1.npy", "c2.npy"]


def test_a_relative_series_path_is_looked_up_under_the_data_folder(tmp_path, monkeypatch):
    from pyro_vrnn.data import DATA_ENV_VAR

    (tmp_path / "data" / "series").mkdir(parents=True)
    long_csv(tmp_path / "data" / "series" / "s.csv", SENSORS)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "data"))
    data = load_series("s.csv", id_column="id", time_column="time", valid_fraction=0.3, test_fraction=0.3)
    assert data.info["source"] == str(tmp_path / "data" / "series" / "s.csv")
