import time

import numpy as np
import pytest
import torch

from pyro_vrnn.data import OFFLINE_DATASETS, load_dataset, synthetic_handwriting


@pytest.mark.parametrize("name,kind,x_dim", [("handwriting-synthetic", "handwriting", 3),
                                            ("speech-synthetic", "speech", 200),
                                            ("music-synthetic", "music", 88)])
def test_offline_dataset_loads_fast_small_and_says_it_is_synthetic(name, kind, x_dim):
    assert name in OFFLINE_DATASETS
    start = time.process_time()  # CPU time of this process: other jobs on the machine do not count
    data = load_dataset(name)
    assert time.process_time() - start < 5.0
    assert data.kind == kind and data.x_dim == x_dim and data.synthetic and data.name == name
    assert 100 <= len(data.train) <= 1000 and len(data.valid) and len(data.test)
    assert all(s.dtype == torch.float32 and s.shape[1] == x_dim and s.shape[0] > 0 for s in data.train)
    assert all(torch.isfinite(s).all() for s in data.train + data.valid + data.test)
    assert "SYNTHETIC" in data.describe()


def test_offline_datasets_are_deterministic_given_seed():
    for name in OFFLINE_DATASETS:
        a, b = load_dataset(name, seed=3), load_dataset(name, seed=3)
        assert all(torch.equal(x, y) for x, y in zip(a.train, b.train)), name
        c = load_dataset(name, seed=4)
        assert not all(torch.equal(x, y) for x, y in zip(a.train[:5], c.train[:5])), name


def test_synthetic_handwriting_lengths_pen_bit_and_writer_variability():
    data = synthetic_handwriting()
    lengths = [s.shape[0] for s in data.train]
    assert max(lengths) <= 150 and np.mean(lengths) > 50
    assert set(torch.cat(data.train)[:, 2].tolist()) == {0.0, 1.0}
    # writers differ: mean |dx| per writer varies far more than within-writer sampling noise
    ids = np.array(data.info["writer_ids"]["train"])
    per_writer = [np.mean([data.train[i][:, 0].abs().mean().item() for i in np.flatnonzero(ids == w)])
                  for w in np.unique(ids)]
    assert np.std(per_writer) / np.mean(per_writer) > 0.15


def test_synthetic_speech_trains_on_chunks_and_tests_on_whole_utterances():
    data = load_dataset("speech-synthetic")
    assert all(s.shape == (40, 200) for s in data.train)
    assert all(s.shape[0] > 40 for s in data.test)
    text = data.describe()
    assert "chunks of 40 frames" in text and "whole utterances" in text
    z = torch.cat(data.train)
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.1


def test_synthetic_music_is_binary_and_in_piano_range():
    data = load_dataset("music-synthetic", num_train=20, num_valid=5, num_test=5)
    rolls = torch.cat(data.train)
    assert set(rolls.unique().tolist()) == {0.0, 1.0} and rolls.sum(1).min() >= 3
    assert len(data.train) == 20
