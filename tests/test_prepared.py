"""Prepared corpora: ``pyro-vrnn prepare`` writes what the loaders give, ``prepared:DIR`` trains
from disk through DataLoader workers exactly as from memory, and broken folders are reported."""

import json
import wave

import numpy as np
import pytest
import torch

from pyro_vrnn.cli import main
from pyro_vrnn.data import DataError, load_dataset, load_speech
from pyro_vrnn.data.preparation import prepare
from pyro_vrnn.data.prepared import PreparedSplit, open_prepared, write_prepared

SMALL_MUSIC = {"num_train": 7, "num_valid": 2, "num_test": 3, "lengths": (4, 9)}


def _write_wav(path, seed, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).normal(0, 3000, size=int(16000 * seconds)).clip(-32000, 32000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.astype("<i2").tobytes())


def _assert_same_dataset(a, b):
    for split in ("train", "valid", "test"):
        assert len(a.split(split)) == len(b.split(split)), split
        for i, (x, y) in enumerate(zip(a.split(split), b.split(split))):
            assert x.dtype == y.dtype == torch.float32 and torch.equal(x, y), (split, i)
    assert torch.equal(a.normalizer.shift, b.normalizer.shift) and torch.equal(a.normalizer.scale, b.normalizer.scale)
    assert a.kind == b.kind and a.x_dim == b.x_dim


def test_a_streamed_speech_folder_equals_load_speech_value_for_value(tmp_path):
    for i, seconds in enumerate((0.61, 0.9, 0.33, 1.2, 0.7)):
        _write_wav(tmp_path / "audio" / "train" / f"t{i}.wav", i, seconds)
    for i, seconds in enumerate((0.5, 0.45)):
        _write_wav(tmp_path / "audio" / "test" / f"s{i}.wav", 10 + i, seconds)
    options = {"frame_size": 40, "chunk_frames": 30, "valid_fraction": 0.2}
    prepare(f"speech:{tmp_path / 'audio'}", tmp_path / "prepared", **options)
    prepared = load_dataset(f"prepared:{tmp_path / 'prepared'}")
    _assert_same_dataset(prepared, load_speech(tmp_path / "audio", **options))
    assert "prepared corpus of speech:" in prepared.describe() and "train: " in prepared.describe()
    index = json.loads((tmp_path / "prepared" / "index.json").read_text())
    assert index["source"] == {"data": f"speech:{tmp_path / 'audio'}", "data_options": options}


def test_a_loaded_spec_is_written_as_it_loads_and_maps_with_numpy(tmp_path):
    prepare("music-synthetic", tmp_path / "music", **SMALL_MUSIC)
    original = load_dataset("music-synthetic", **SMALL_MUSIC)
    prepared = open_prepared(tmp_path / "music")
    _assert_same_dataset(prepared, original)
    values = np.load(tmp_path / "music" / "train.values.npy", mmap_mode="r")
    offsets = np.load(tmp_path / "music" / "train.offsets.npy")
    assert isinstance(values, np.memmap) and values.dtype == np.float32
    assert np.array_equal(values[offsets[2]:offsets[3]], original.train[2].numpy())
    assert prepared.train.lengths.tolist() == [len(s) for s in original.train]


def test_the_emission_the_data_call_for_survives_preparation(tmp_path):
    """0/1 data name the Bernoulli emission; a prepared copy must too, or `train` would fit a Gaussian."""
    prepare("music-synthetic", tmp_path / "music", **SMALL_MUSIC)
    assert load_dataset("music-synthetic", **SMALL_MUSIC).emission == "bernoulli"
    assert open_prepared(tmp_path / "music").emission == "bernoulli"
    index = json.loads((tmp_path / "music" / "index.json").read_text())
    del index["emission"]  # a corpus written before the field was kept: the model's default
    (tmp_path / "music" / "index.json").write_text(json.dumps(index))
    assert open_prepared(tmp_path / "music").emission is None


@pytest.mark.parametrize("workers", [0, 2])
def test_training_from_a_prepared_corpus_equals_training_from_memory_and_resumes_exactly(tmp_path, workers):
    prepare("music-synthetic", tmp_path / "corpus", **SMALL_MUSIC)
    tiny = ["--model", "vrnn-normal", "--h-dim", "6", "--z-dim", "2", "--feature-dims", "6", "--hidden-dims", "6",
            "--batch-size", "3", "--quiet", "--checkpoint-every", "2"]
    memory = ["--data", "music-synthetic", *[f"--data-option={k}={v}" for k, v in SMALL_MUSIC.items()]]
    disk = ["--data", f"prepared:{tmp_path / 'corpus'}", "--data-option", f"workers={workers}"]
    assert main(["train", *tiny, *memory, "--steps", "7", "--out", str(tmp_path / "memory")]) == 0
    assert main(["train", *tiny, *disk, "--steps", "4", "--out", str(tmp_path / "disk")]) == 0
    assert main(["train", "--out", str(tmp_path / "disk"), "--resume", "--steps", "7", "--quiet"]) == 0
    a = torch.load(tmp_path / "memory" / "checkpoint.pt", weights_only=True)["trainer"]
    b = torch.load(tmp_path / "disk" / "checkpoint.pt", weights_only=True)["trainer"]
    for name, value in a["model"].items():
        assert torch.equal(b["model"][name], value), name
    assert [r["loss"] for r in a["history"]] == [r["loss"] for r in b["history"]]


def test_batches_are_padded_in_the_order_asked_and_an_empty_share_gives_none(tmp_path):
    prepare("music-synthetic", tmp_path / "corpus", **SMALL_MUSIC)
    split = open_prepared(tmp_path / "corpus", workers=2).train
    asked = [[4, 0], [], [6, 1, 2], [3]]
    got = list(split.batches(iter(asked)))
    assert got[1] is None
    for idx, batch in zip(asked, got):
        if idx:
            x, mask = batch
            assert mask.sum(1).tolist() == [len(split[i]) for i in idx]
            for row, i in enumerate(idx):
                assert torch.equal(x[row, :len(split[i])], split[i])


def test_reading_does_not_keep_the_values_file_mapped(tmp_path):
    prepare("music-synthetic", tmp_path / "corpus", **SMALL_MUSIC)
    split = open_prepared(tmp_path / "corpus").train
    assert sum(len(s) for s in split) == int(split.lengths.sum())
    with open("/proc/self/maps") as maps:
        assert str(split.values_path) not in maps.read()


def test_prepare_cli_writes_the_corpus_and_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    args = ["prepare", "--data", "music-synthetic", *[f"--data-option={k}={v}" for k, v in SMALL_MUSIC.items()],
            "--out", str(tmp_path / "corpus")]
    assert main(args) == 0
    assert "prepared:" in capsys.readouterr().out
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(args[:-1] + [str(tmp_path / "mine"), "--overwrite"]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_interrupted_write_leaves_no_folder_behind(tmp_path):
    dataset = load_dataset("music-synthetic", **SMALL_MUSIC)

    def failing():
        yield dataset.train[0].numpy()
        raise KeyboardInterrupt

    splits = {s: ([len(x) for x in dataset.split(s)], (x.numpy() for x in dataset.split(s))) for s in ("valid", "test")}
    splits["train"] = ([len(x) for x in dataset.train], failing())
    with pytest.raises(KeyboardInterrupt):
        write_prepared(tmp_path / "corpus", name="x", kind="music", normalizer=dataset.normalizer, splits=splits)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "index.json").unlink(), "no index.json"),
    (lambda d: (d / "index.json").write_text("{}"), "expected format"),
    (lambda d: (d / "train.values.npy").write_bytes((d / "train.values.npy").read_bytes()[:-40]), "truncated"),
    (lambda d: np.save(d / "train.offsets.npy", np.load(d / "train.offsets.npy")[[0, 2, 1, 3, 4, 5, 6, 7]]),
     "offsets must rise"),
    (lambda d: np.save(d / "train.offsets.npy", np.array([0, 5, 3])), "expected 8 offsets"),
    (lambda d: (d / "test.values.npy").write_bytes(b"garbage"), "not a .npy file"),
    (lambda d: (d / "index.json").write_text((d / "index.json").read_text().replace('"bernoulli"', '"gamma"')),
     "emission.*must be null or one of"),
])
def test_a_damaged_corpus_is_a_data_error_naming_the_file(tmp_path, damage, message):
    prepare("music-synthetic", tmp_path / "corpus", **SMALL_MUSIC)
    damage(tmp_path / "corpus")
    with pytest.raises(DataError, match=message):
        open_prepared(tmp_path / "corpus")


def test_a_split_refuses_indices_out_of_range(tmp_path):
    prepare("music-synthetic", tmp_path / "corpus", **SMALL_MUSIC)
    split = open_prepared(tmp_path / "corpus").test
    assert isinstance(split, PreparedSplit) and torch.equal(split[-1], split[len(split) - 1])
    with pytest.raises(IndexError, match="out of range"):
        split[len(split)]
