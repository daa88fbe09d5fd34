import wave

import numpy as np
import pytest
import torch

from pyro_vrnn.data import DataError, load_speech


def write_wav(path, samples, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def write_sphere(path, samples, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("NIST_1A\n   1024\nsample_count -i %d\nsample_n_bytes -i 2\nchannel_count -i 1\n"
              "sample_byte_format -s2 01\nsample_rate -i %d\nsample_coding -s3 pcm\nend_head\n"
              % (len(samples), rate)).encode().ljust(1024, b" ")
    path.write_bytes(header + samples.astype("<i2").tobytes())


def noise(n, seed, scale=3000, offset=0):
    return (np.random.default_rng(seed).normal(offset, scale, size=n)).clip(-32000, 32000).astype(np.int16)


@pytest.fixture
def timit_root(tmp_path):
    """TIMIT layout: TRAIN/ TEST/ DR*/ SPEAKER/*.WAV (SPHERE) plus transcripts to ignore."""
    root = tmp_path / "TIMIT"
    seed = 0
    for split, speakers in (("TRAIN", ["FCJF0", "MDAB0", "MRJO0", "FDAW0"]), ("TEST", ["MDAB1", "FELC0"])):
        for dr, speaker in enumerate(speakers):
            for utt in ("SA1", "SX1"):
                seed += 1
                write_sphere(root / split / f"DR{dr % 2 + 1}" / speaker / f"{utt}.WAV", noise(16000 + 700 * seed, seed))
                (root / split / f"DR{dr % 2 + 1}" / speaker / f"{utt}.TXT").write_text("0 1 hello\n")
    return root


def test_timit_layout_gives_train_chunks_and_whole_test_utterances(timit_root):
    data = load_speech(timit_root, frame_size=200, chunk_frames=40, valid_fraction=0.25)
    assert data.kind == "speech" and data.x_dim == 200 and not data.synthetic
    assert all(s.shape == (40, 200) for s in data.train)
    assert len(data.test) == 4 and all(s.shape[0] > 40 for s in data.test)
    assert len(data.valid) == 2  # 25% of the 8 training files held out
    text = data.describe()
    assert "chunks of 40 frames" in text and "whole utterances" in text and "split folders" in text


def test_speech_normalization_is_fitted_on_training_audio_only(tmp_path):
    for i in range(4):
        write_wav(tmp_path / "train" / f"{i}.wav", noise(8000, i, scale=1000, offset=500))
    write_wav(tmp_path / "test" / "t.wav", noise(8000, 9, scale=10000, offset=-5000))
    write_wav(tmp_path / "dev" / "d.wav", noise(8000, 10))
    data = load_speech(tmp_path, frame_size=100, chunk_frames=10)
    train = torch.cat(data.train)
    assert abs(train.mean().item()) < 0.05 and abs(train.std().item() - 1) < 0.05
    assert abs(data.normalizer.shift[0].item() - 500 / 32768) < 1e-3
    assert torch.cat(data.test).std().item() > 5  # test audio is louder; not refitted


def test_single_folder_is_split_by_seeded_shuffle_and_chunks_can_be_used_at_test_time(tmp_path):
    for i in range(20):
        write_wav(tmp_path / "wavs" / f"LJ{i:03d}.wav", noise(9000, i), rate=22050)
    a = load_speech(tmp_path, test_chunking="chunks", chunk_frames=20, seed=1)
    b = load_speech(tmp_path, test_chunking="chunks", chunk_frames=20, seed=1)
    assert len(a.train) and len(a.valid) and len(a.test)
    assert all(s.shape == (20, 200) for s in a.test)
    assert all(torch.equal(x, y) for x, y in zip(a.test, b.test))
    assert a.info["sample_rate"] == 22050 and "single folder" in a.describe()


def test_mixed_sample_rates_raise_data_error_naming_the_file(tmp_path):
    for i in range(5):
        write_wav(tmp_path / f"{i}.wav", noise(4000, i), rate=16000 if i != 3 else 8000)
    with pytest.raises(DataError, match="3.wav"):
        load_speech(tmp_path)


def test_audio_shorter_than_a_frame_raises_unless_skipping(tmp_path):
    for i in range(6):
        write_wav(tmp_path / f"{i}.wav", noise(9000 if i else 50, i))
    with pytest.raises(DataError, match="0.wav.*empty sequence"):
        load_speech(tmp_path, valid_fraction=0.2, test_fraction=0.2, seed=3)
    with pytest.warns(UserWarning, match="0.wav"):
        data = load_speech(tmp_path, valid_fraction=0.2, test_fraction=0.2, seed=3, on_error="skip", chunk_frames=10)
    assert data.info["files"] != ""


def test_corrupt_file_in_folder_raises_data_error_or_is_skipped_with_warning(tmp_path):
    for i in range(6):
        write_wav(tmp_path / f"{i}.wav", noise(9000, i))
    (tmp_path / "2.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(DataError, match="2.wav"):
        load_speech(tmp_path, valid_fraction=0.2, test_fraction=0.2)
    with pytest.warns(UserWarning, match="2.wav"):
        load_speech(tmp_path, valid_fraction=0.2, test_fraction=0.2, on_error="skip", chunk_frames=10)


def test_folder_without_audio_or_missing_folder_raises_data_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no audio files"):
        load_speech(tmp_path)
    with pytest.raises(DataError, match="folder"):
        load_speech(tmp_path / "missing")
