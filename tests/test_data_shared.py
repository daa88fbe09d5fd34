"""Loads the project's shared real data (``$PYRO_VRNN_DATA`` or ``<repo>/../shared/data``) and checks
the counts documented in its README. Skipped when the folder is absent."""

import os
from pathlib import Path

import pytest
import torch

from pyro_vrnn.data import load_dataset, load_music, load_speech, read_audio
from pyro_vrnn.data.speech import find_audio_files


def _shared_data():
    env = os.environ.get("PYRO_VRNN_DATA")
    candidates = ([Path(env)] if env else []) + [Path(__file__).resolve().parents[1].parent / "shared" / "data"]
    return next((p for p in candidates if (p / "README.md").exists()), None)


SHARED = _shared_data()
pytestmark = pytest.mark.skipif(SHARED is None, reason="shared data folder not found")

MUSIC_COUNTS = {  # README: train / valid / test sequences, then steps
    "jsb_chorales": ((229, 76, 77), (13807, 4602, 4725)),
    "nottingham": ((694, 173, 170), (176561, 45513, 44463)),
    "muse_data": ((524, 135, 124), (245202, 82755, 64339)),
    "piano_midi": ((87, 12, 25), (75911, 8540, 19036)),
}


@pytest.mark.parametrize("name", sorted(MUSIC_COUNTS))
def test_shared_music_pickle_matches_documented_counts(name):
    data = load_music(SHARED / "music" / f"{name}.pickle")
    seqs, steps = MUSIC_COUNTS[name]
    assert tuple(len(data.split(s)) for s in ("train", "valid", "test")) == seqs
    assert tuple(sum(x.shape[0] for x in data.split(s)) for s in ("train", "valid", "test")) == steps
    assert data.x_dim == 88 and set(data.train[0].unique().tolist()) <= {0.0, 1.0}


def test_shared_omniglot_stroke3_matches_documented_counts():
    data = load_dataset("handwriting:" + str(SHARED / "handwriting" / "omniglot.npz"))
    assert (len(data.train), len(data.valid), len(data.test)) == (30000, 1000, 1000)
    mean_len = sum(s.shape[0] for s in data.train) / len(data.train)
    assert 30 < mean_len < 32 and max(s.shape[0] for s in data.train) == 143
    assert set(torch.cat(data.train[:200])[:, 2].unique().tolist()) == {0.0, 1.0}


def test_shared_librispeech_loads_whole_with_documented_files_and_minutes():
    root = SHARED / "speech" / "librispeech"
    assert len(find_audio_files(root / "librispeech_train-clean-100")) == 251
    test_files = find_audio_files(root / "librispeech_test-other")
    assert len(test_files) == 100 and len({Path(f).parent.name for f in test_files}) == 10
    data = load_speech(root)  # about 3 s for all 65 minutes
    assert data.info["sample_rate"] == 16000 and data.x_dim == 200
    assert data.info["files"] == "train 238, valid 13, test 100"  # valid held out of train-clean-100
    seconds = data.info["seconds_per_split"]
    assert (seconds["train"] + seconds["valid"]) / 60 == pytest.approx(52.3, abs=0.05)
    assert seconds["test"] / 60 == pytest.approx(12.8, abs=0.05)
    assert all(s.shape == (40, 200) for s in data.train)
    assert len(data.test) == 100 and "librispeech_test-other" in data.describe()


def test_shared_ljspeech_wav_folder_loads_at_22050_hz():
    root = SHARED / "speech" / "ljspeech"
    assert len(find_audio_files(root)) == 32
    _, rate = read_audio(find_audio_files(root)[0])
    assert rate == 22050
    data = load_speech(root)
    assert data.info["files"] == "train 28, valid 2, test 2"
    minutes = sum(len(read_audio(f)[0]) for f in find_audio_files(root)) / 22050 / 60
    assert minutes == pytest.approx(3.7, abs=0.05)  # README: 3.7 min
