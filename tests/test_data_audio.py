import wave

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro_vrnn.data import DataError, Normalizer, frames_to_waveform, read_audio, waveform_to_frames, write_wav

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def pcm(n=1000, seed=0):
    return np.random.default_rng(seed).integers(-20000, 20000, size=n).astype(np.int16)


def write_pcm_wav(path, samples, rate=16000, width=2, channels=1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def sphere_bytes(samples, rate=16000, byte_format="01", end_marker=True, extra=""):
    lines = ["NIST_1A", "   1024", "sample_count -i %d" % len(samples), "sample_n_bytes -i 2",
             "channel_count -i 1", "sample_byte_format -s2 " + byte_format, "sample_rate -i %d" % rate,
             "sample_coding -s3 pcm"] + ([extra] if extra else []) + (["end_head"] if end_marker else [])
    header = ("\n".join(lines) + "\n").encode("ascii").ljust(1024, b" ")
    return header + samples.astype("<i2" if byte_format == "01" else ">i2").tobytes()


def test_wav_reads_back_int16_samples_scaled_to_unit_range(tmp_path):
    samples = pcm()
    wave_, rate = read_audio(write_pcm_wav(tmp_path / "a.wav", samples, rate=22050))
    assert rate == 22050 and wave_.dtype == np.float32
    np.testing.assert_array_equal(np.round(wave_ * 32768).astype(np.int16), samples)


def test_sphere_little_and_big_endian_read_the_same_samples(tmp_path):
    samples = pcm()
    for fmt in ("01", "10"):
        path = tmp_path / f"s{fmt}.WAV"  # TIMIT names SPHERE files .WAV: the format is sniffed
        path.write_bytes(sphere_bytes(samples, byte_format=fmt))
        wave_, rate = read_audio(path)
        assert rate == 16000
        np.testing.assert_array_equal(np.round(wave_ * 32768).astype(np.int16), samples)


def test_flac_reads_like_wav(tmp_path):
    samples = pcm()
    soundfile.write(tmp_path / "a.flac", samples, 16000, subtype="PCM_16")
    wave_, rate = read_audio(tmp_path / "a.flac")
    np.testing.assert_array_equal(np.round(wave_ * 32768).astype(np.int16), samples)


def test_stereo_wav_is_averaged_to_mono(tmp_path):
    stereo = np.stack([np.full(10, 1000, np.int16), np.full(10, 3000, np.int16)], axis=1)
    wave_, _ = read_audio(write_pcm_wav(tmp_path / "st.wav", stereo, channels=2))
    assert wave_.shape == (10,) and np.allclose(wave_ * 32768, 2000)


def test_sphere_header_without_end_marker_raises_data_error(tmp_path):
    path = tmp_path / "noend.wav"
    path.write_bytes(sphere_bytes(pcm(), end_marker=False))
    with pytest.raises(DataError, match="end_head") as info:
        read_audio(path)
    assert "noend.wav" in str(info.value)


def test_truncated_sphere_raises_data_error(tmp_path):
    path = tmp_path / "trunc.wav"
    path.write_bytes(sphere_bytes(pcm(1000))[:1024 + 500])
    with pytest.raises(DataError, match="truncated"):
        read_audio(path)


def test_truncated_wav_raises_data_error(tmp_path):
    path = write_pcm_wav(tmp_path / "t.wav", pcm(1000))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="t.wav"):
        read_audio(path)


def test_wav_with_8_bit_samples_raises_data_error_naming_width(tmp_path):
    path = write_pcm_wav(tmp_path / "u8.wav", np.full(100, 128, np.uint8), width=1)
    with pytest.raises(DataError, match="8 bits"):
        read_audio(path)


@pytest.mark.parametrize("field,unsupported,match", [
    (b"sample_coding -s3 pcm", b"sample_coding -s26 pcm,embedded-shorten-v2.00", "sample_coding"),  # compressed
    (b"sample_n_bytes -i 2", b"sample_n_bytes -i 1", "width"),
])
def test_sphere_with_an_unsupported_header_field_raises_data_error_naming_it(tmp_path, field, unsupported, match):
    path = tmp_path / "unsupported.wav"
    path.write_bytes(sphere_bytes(pcm()).replace(field, unsupported))
    with pytest.raises(DataError, match=match):
        read_audio(path)


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"hello world, not audio", "unknown audio format"),
                                           (b"fLaC\x00\x00garbage", "FLAC")])
def test_unknown_empty_or_corrupt_audio_raises_data_error(tmp_path, content, match):
    path = tmp_path / "bad.flac"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_audio(path)


def test_missing_audio_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")


def test_audio_to_frames_to_audio_round_trip_is_exact_up_to_normalization(tmp_path):
    samples = pcm(4000, seed=3)
    original, rate = read_audio(write_pcm_wav(tmp_path / "in.wav", samples))
    norm = Normalizer.fit_global([original], x_dim=200)
    frames = norm.normalize(waveform_to_frames(torch.as_tensor(original, dtype=torch.float32), 200))
    assert frames.shape == (20, 200)
    write_wav(tmp_path / "out.wav", frames, sample_rate=rate, normalizer=norm)
    back, back_rate = read_audio(tmp_path / "out.wav")
    assert back_rate == rate
    np.testing.assert_array_equal(np.round(back * 32768).astype(np.int16), samples)


def test_frames_to_waveform_inverts_waveform_to_frames_and_drops_partial_tail():
    w = torch.arange(1050.0)
    frames = waveform_to_frames(w, 200)
    assert frames.shape == (5, 200)
    assert torch.equal(frames_to_waveform(frames), w[:1000])


def test_write_wav_clips_to_int16(tmp_path):
    write_wav(tmp_path / "loud.wav", np.array([2.0, -2.0, 0.5]))
    back, _ = read_audio(tmp_path / "loud.wav")
    assert np.round(back * 32768).astype(int).tolist() == [32767, -32768, 16384]


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_make_audio_readers_raise_only_data_error(tmp_path, data):
    for prefix in (b"", b"RIFF\x00\x00\x00\x00WAVE", b"NIST_1A\n   1024\n", b"fLaC"):
        path = tmp_path / "fuzz.bin"
        path.write_bytes(prefix + data)
        try:
            read_audio(path)
        except DataError:
            pass


@FUZZ
@given(st.data())
def test_mutated_valid_audio_files_raise_only_data_error(tmp_path, data):
    samples = pcm(300)
    write_pcm_wav(tmp_path / "v.wav", samples)
    soundfile.write(tmp_path / "v.flac", samples, 16000, subtype="PCM_16")
    originals = [(tmp_path / "v.wav").read_bytes(), sphere_bytes(samples), (tmp_path / "v.flac").read_bytes()]
    blob = bytearray(data.draw(st.sampled_from(originals)))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    path = tmp_path / "m.bin"
    path.write_bytes(bytes(blob))
    try:
        wave_, rate = read_audio(path)
        assert wave_.ndim == 1 and rate > 0
    except DataError:
        pass
