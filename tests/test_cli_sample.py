"""``pyro-vrnn sample --reconstruct`` and ``--prime``: data beside reconstructions, continuations of a
prefix (a test sequence or a file) with the prefix marked, WAV files for speech."""

import mido
import numpy as np
import pytest
import soundfile
import torch

from pyro_vrnn.cli import main
from pyro_vrnn.data import piano_roll_to_midi, read_audio, read_midi_piano_roll, write_wav
from pyro_vrnn.train.runs import load_data, load_run

TINY_MODEL = ["--h-dim", "8", "--z-dim", "2", "--feature-dims", "8", "--hidden-dims", "8", "--num-components", "2"]
TINY_SPEECH = ["--data", "speech-synthetic", "--data-option", "num_train=2", "--data-option", "num_valid=1",
               "--data-option", "num_test=2", "--data-option", "seconds=(0.55,0.7)", "--data-option", "frame_size=20",
               "--data-option", "chunk_frames=8"]
TINY_HANDWRITING = ["--data", "handwriting-synthetic", "--data-option", "num_train=4", "--data-option", "num_valid=2",
                    "--data-option", "num_test=2", "--data-option", "min_steps=20", "--data-option", "max_steps=80"]
TINY_MUSIC = ["--data", "music-synthetic", "--data-option", "num_train=6", "--data-option", "num_valid=2",
              "--data-option", "num_test=3", "--data-option", "lengths=(6,10)"]


def trained(path, data, model="vrnn-gmm"):
    assert main(["train", "--model", model, *data, "--steps", "1", "--out", str(path), "--batch-size", "2",
                 "--quiet", *TINY_MODEL]) == 0
    return path


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("runs") / "speech", TINY_SPEECH)


@pytest.fixture(scope="module")
def handwriting_run(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("runs") / "handwriting", TINY_HANDWRITING, "storn")


def test_reconstruct_draws_test_sequences_beside_their_reconstructions(handwriting_run, tmp_path):
    out = tmp_path / "r"
    assert main(["sample", str(handwriting_run), "--reconstruct", "--num", "2", "--length", "15", "--out", str(out),
                 "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["reconstruction.png", "reconstruction.pt"]
    saved = torch.load(out / "reconstruction.pt", weights_only=False)
    _, config, normalizer, _ = load_run(handwriting_run)
    test = load_data(config).test
    for data, drawn, real in zip(saved["data"], saved["reconstruction"], test):
        assert data.shape == drawn.shape == (15, 3)
        assert torch.allclose(data[:, :2], normalizer.denormalize(real[:15])[:, :2].float())
        assert not torch.equal(data, drawn)
        assert set(drawn[:, 2].tolist()) <= {0.0, 1.0}


def test_prime_with_a_test_index_continues_the_utterance_and_writes_wav_files(speech_run, tmp_path):
    out = tmp_path / "p"
    assert main(["sample", str(speech_run), "--prime", "1", "--prime-steps", "6", "--length", "4", "--num", "2",
                 "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["primed.png", "primed.pt", "primed_0.wav", "primed_1.wav"]
    primed = torch.load(out / "primed.pt", weights_only=False)["primed"]
    _, config, normalizer, _ = load_run(speech_run)
    prefix = normalizer.denormalize(load_data(config).test[1][:6]).float()
    for seq in primed:
        assert seq.shape == (6 + 4, 20)
        assert torch.allclose(seq[:6], prefix)
    assert not torch.equal(primed[0][6:], primed[1][6:])
    wave, rate = soundfile.read(out / "primed_0.wav")
    assert rate == 16000 and wave.shape == (10 * 20,)


def test_prime_with_an_audio_file_frames_it_like_the_data(speech_run, tmp_path):
    waveform = 0.3 * np.sin(np.arange(7 * 20) / 3.0)
    write_wav(tmp_path / "prefix.wav", waveform, sample_rate=16000)
    out = tmp_path / "p"
    assert main(["sample", str(speech_run), "--prime", str(tmp_path / "prefix.wav"), "--length", "3", "--num", "1",
                 "--out", str(out), "--quiet"]) == 0
    primed = torch.load(out / "primed.pt", weights_only=False)["primed"][0]
    assert primed.shape == (7 + 3, 20)
    assert np.allclose(primed[:7].reshape(-1).numpy(), waveform, atol=1e-4)  # 16-bit PCM round trip


def test_prime_with_a_stroke_file_at_temperature_zero_is_deterministic(handwriting_run, tmp_path):
    strokes = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [-1.0, 0.5, 0.0], [0.5, -0.5, 1.0]])
    np.save(tmp_path / "line.npy", strokes)
    runs = []
    for name, seed in (("a", 1), ("b", 2)):
        assert main(["sample", str(handwriting_run), "--prime", str(tmp_path / "line.npy"), "--temperature", "0",
                     "--length", "6", "--num", "2", "--out", str(tmp_path / name), "--quiet", "--seed", str(seed)]) == 0
        runs.append(torch.load(tmp_path / name / "primed.pt", weights_only=False)["primed"])
        assert (tmp_path / name / "primed.png").stat().st_size > 1000
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert torch.allclose(runs[0][0][:5].double(), torch.as_tensor(strokes), atol=1e-5)
    assert runs[0][0].shape == (5 + 6, 3)


@pytest.fixture(scope="module")
def music_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "music"
    assert main(["train", "--model", "vrnn-normal", *TINY_MUSIC, "--steps", "2", "--out", str(path), "--batch-size",
                 "2", "--quiet", *TINY_MODEL]) == 0
    return path


def test_prime_and_reconstruct_draw_piano_rolls(music_run, tmp_path):
    run = music_run
    assert main(["sample", str(run), "--prime", "0", "--length", "4", "--num", "2", "--out", str(tmp_path / "p"),
                 "--quiet"]) == 0
    assert main(["sample", str(run), "--reconstruct", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    primed = torch.load(tmp_path / "p" / "primed.pt", weights_only=False)["primed"]
    assert set(torch.cat(primed).unique().tolist()) <= {0.0, 1.0}
    assert (tmp_path / "r" / "reconstruction.png").stat().st_size > 1000
    for label in ("data", "reconstruction"):  # each sequence as MIDI too, the roll on the grid
        rolls = torch.load(tmp_path / "r" / "reconstruction.pt", weights_only=False)[label]
        for i, roll in enumerate(rolls):
            np.testing.assert_array_equal(read_midi_piano_roll(tmp_path / "r" / f"{label}_{i}.mid"), roll.numpy())


def test_sample_on_a_music_run_writes_each_sample_as_midi_beside_the_figure(music_run, tmp_path):
    out = tmp_path / "s"
    assert main(["sample", str(music_run), "--num", "3", "--length", "12", "--tempo", "90", "--out", str(out),
                 "--quiet"]) == 0
    saved = torch.load(out / "samples.pt", weights_only=False)
    assert (out / "samples.png").is_file() and len(saved["samples"]) == 3
    for i, roll in enumerate(saved["samples"]):  # the same grid: piano roll -> .mid -> piano roll is the identity
        np.testing.assert_array_equal(read_midi_piano_roll(out / f"sample_{i}.mid", steps_per_beat=4), roll.numpy())
        tempos = [m.tempo for m in mido.MidiFile(out / f"sample_{i}.mid").tracks[0] if m.type == "set_tempo"]
        assert tempos == [mido.bpm2tempo(90)]
    for i, roll in enumerate(saved["real"]):
        np.testing.assert_array_equal(read_midi_piano_roll(out / f"real_{i}.mid"), roll.numpy())
    assert saved["samples"][0].sum() > 0  # notes were written, not only silence
    # and each as sound: 12 steps of 60 / (90 * 4) s at 16 kHz, plus the last note's release
    for label, rolls in (("sample", saved["samples"]), ("real", saved["real"])):
        for i, roll in enumerate(rolls):
            waveform, rate = read_audio(out / f"{label}_{i}.wav")
            assert rate == 16000 and len(waveform) == int(np.ceil((len(roll) / 6 + 0.04) * 16000))
            assert (np.abs(waveform).max() > 0.5) == bool(roll.sum() > 0)
    # sampling again into the same folder replaces its own files; a MIDI file it did not write is left alone
    assert main(["sample", str(music_run), "--num", "3", "--length", "12", "--out", str(out), "--quiet"]) == 0
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "sample_0.mid").write_bytes(b"MThd not ours")
    assert main(["sample", str(music_run), "--num", "1", "--length", "4", "--out", str(stranger), "--quiet"]) == 2
    assert (stranger / "sample_0.mid").read_bytes() == b"MThd not ours"


def test_prime_continues_a_midi_file_read_on_the_runs_grid(music_run, tmp_path):
    theme = np.zeros((6, 88), dtype=np.float32)
    theme[0:2, 39] = theme[2:6, 43] = theme[3:5, 46] = 1  # C4 held, then E4 under a short G4
    piano_roll_to_midi(theme, tmp_path / "theme.mid", steps_per_beat=4)
    out = tmp_path / "p"
    assert main(["sample", str(music_run), "--prime", str(tmp_path / "theme.mid"), "--length", "5", "--num", "2",
                 "--out", str(out), "--quiet"]) == 0
    primed = torch.load(out / "primed.pt", weights_only=False)["primed"]
    assert len(primed) == 2 and all(p.shape == (11, 88) for p in primed)
    for i, continuation in enumerate(primed):
        np.testing.assert_array_equal(continuation[:6].numpy(), theme)  # the prefix is the file's roll
        np.testing.assert_array_equal(read_midi_piano_roll(out / f"primed_{i}.mid"), continuation.numpy())


@pytest.mark.parametrize("argv,message", [
    (["--prime", "99"], "--prime 99: the test split has 2 sequences"),
    (["--prime", "nowhere.npy"], "--prime nowhere.npy: neither a test-sequence index nor an existing file"),
    (["--prime-steps", "3"], "--prime-steps applies only with --prime"),
    (["--reconstruct", "--temperature", "0.5"], "--temperature does not apply to --reconstruct"),
    (["--reconstruct", "--prime", "0"], "not allowed with argument"),
    (["--temperature", "-1"], "expected a number from 0 to 1000"),
    (["--temperature", "1e300"], "--temperature: expected a number from 0 to 1000, got '1e300'"),
    (["--tempo", "90"], "--tempo applies to music runs"),
])
def test_bad_sample_options_exit_2_with_one_line(handwriting_run, tmp_path, capsys, argv, message):
    capsys.readouterr()
    status = main(["sample", str(handwriting_run), "--out", str(tmp_path / "s"), "--quiet", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert message in err[-1], err
