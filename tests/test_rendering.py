"""Piano rolls rendered as audio (report/rendering.py): the pitch, the length, the silence, the notes'
onsets and the Nyquist limit are those the module docstring gives."""

import numpy as np
import pytest

from pyro_vrnn.data.errors import DataError
from pyro_vrnn.report.rendering import RELEASE_SECONDS, note_frequency, render_piano_roll

RATE = 16000


def _roll(steps, *notes):
    roll = np.zeros((steps, 88))
    for pitch, first, end in notes:
        roll[first:end, pitch - 21] = 1
    return roll


def _spectrum(wave):
    return np.fft.rfftfreq(len(wave), 1 / RATE), np.abs(np.fft.rfft(wave))


def test_a_held_a4_sounds_at_440_hz_for_its_steps_and_its_release_then_stops():
    wave = render_piano_roll(_roll(8, (69, 0, 4)), 0.125, RATE)
    assert wave.dtype == np.float32 and len(wave) == int(np.ceil((8 * 0.125 + RELEASE_SECONDS) * RATE))
    assert np.abs(wave).max() == pytest.approx(0.8)
    freqs, power = _spectrum(wave[:RATE // 2])
    assert freqs[power.argmax()] == pytest.approx(440.0, abs=2.0) and note_frequency(69) == 440.0
    assert np.abs(wave[int(0.45 * RATE):int(0.5 * RATE)]).max() > 0.1        # still held
    assert np.abs(wave[int((0.5 + RELEASE_SECONDS) * RATE) + 1:]).max() == 0  # released, then silence


def test_a_silent_roll_is_silence_of_the_rolls_length():
    wave = render_piano_roll(_roll(5), 0.25, RATE)
    assert len(wave) == int(np.ceil((5 * 0.25 + RELEASE_SECONDS) * RATE)) and not wave.any()


def test_a_key_struck_twice_starts_its_envelope_again():
    """Steps 0-1 and 4-5 of one key are two notes: the second onset is as loud as the first."""
    wave = render_piano_roll(_roll(6, (60, 0, 2), (60, 4, 6)), 0.25, RATE)
    first = np.abs(wave[:int(0.05 * RATE)]).max()
    second = np.abs(wave[RATE:RATE + int(0.05 * RATE)]).max()
    assert np.abs(wave[int(0.6 * RATE):int(0.95 * RATE)]).max() == 0  # the rest between them
    assert second == pytest.approx(first, rel=1e-3)


def test_harmonics_above_the_nyquist_frequency_are_left_out():
    """The top key (4,186 Hz) at 16 kHz: its second harmonic (8,372 Hz) would alias to 7,628 Hz."""
    freqs, power = _spectrum(render_piano_roll(_roll(4, (108, 0, 4)), 0.25, RATE)[:RATE // 2])
    assert freqs[power.argmax()] == pytest.approx(note_frequency(108), abs=2.0)
    assert power[np.abs(freqs - 7628).argmin()] < 1e-3 * power.max()
    freqs, power = _spectrum(render_piano_roll(_roll(4, (45, 0, 4)), 0.25, RATE)[:RATE // 2])
    assert power[np.abs(freqs - 2 * 110.0).argmin()] > 0.3 * power.max()  # A2 keeps its harmonics


def test_bad_rolls_and_settings_are_refused():
    with pytest.raises(DataError, match="only 0 and 1"):
        render_piano_roll(np.full((3, 88), 0.5), 0.25)
    with pytest.raises(ValueError, match="step_seconds must be > 0"):
        render_piano_roll(_roll(3), 0.0)
