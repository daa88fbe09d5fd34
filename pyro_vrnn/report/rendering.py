"""Piano rolls made audible: a small additive synthesizer, so a generated piece can be heard in any
audio player, no MIDI synthesizer needed (the MIDI files beside it keep the exact notes).

A note of MIDI pitch ``n`` sounding from ``t_0`` to ``t_1`` is

    s(t) = a(t) * sum_{k=1..4} (1/k) sin(2 pi k f t),   f = 440 * 2^((n - 69) / 12),

with the envelope ``a(t) = exp(-(t - t_0) / tau)`` (``tau`` = 0.8 s, a struck string fading) times a
5 ms linear attack and a 40 ms linear release after ``t_1`` (no clicks at the edges); harmonics at or
above the Nyquist frequency are left out. The piece is the sum of its notes, scaled so its loudest sample
is ``peak`` (silence stays zero).
"""

from __future__ import annotations

import numpy as np

from ..data.music import piano_roll_note_events

HARMONICS = (1.0, 1 / 2, 1 / 3, 1 / 4)
DECAY_SECONDS = 0.8
ATTACK_SECONDS = 0.005
RELEASE_SECONDS = 0.04


def note_frequency(pitch: int) -> float:
    """Equal temperament, A4 (MIDI 69) = 440 Hz."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def render_piano_roll(roll, step_seconds: float, sample_rate: int = 16000, peak: float = 0.8) -> np.ndarray:
    """A ``(T, 88)`` 0/1 piano roll as a mono waveform ``(N,)`` float32 in ``[-peak, peak]``,
    ``N = ceil((T * step_seconds + release) * sample_rate)`` (the module docstring gives the sound)."""
    if not step_seconds > 0 or not 0 < peak <= 1 or int(sample_rate) != sample_rate or sample_rate < 1:
        raise ValueError(f"step_seconds must be > 0, peak in (0, 1] and sample_rate a whole number >= 1, got "
                         f"{step_seconds!r}, {peak!r} and {sample_rate!r}")
    notes = piano_roll_note_events(roll)
    total = int(np.ceil((len(roll) * step_seconds + RELEASE_SECONDS) * sample_rate))
    out = np.zeros(total, dtype=np.float64)
    for pitch, first, end in notes:
        start = int(round(first * step_seconds * sample_rate))
        held = end * step_seconds * sample_rate - start  # samples from the onset to the release
        length = min(int(np.ceil(held + RELEASE_SECONDS * sample_rate)), total - start)
        t = np.arange(length) / sample_rate
        envelope = np.exp(-t / DECAY_SECONDS) * np.minimum(1.0, t / ATTACK_SECONDS)
        envelope *= np.clip(1.0 - (np.arange(length) - held) / (RELEASE_SECONDS * sample_rate), 0.0, 1.0)
        f = note_frequency(pitch)
        tone = sum(weight * np.sin(2 * np.pi * k * f * t)
                   for k, weight in enumerate(HARMONICS, start=1) if k * f < sample_rate / 2)
        out[start:start + length] += envelope * tone
    loudest = np.abs(out).max(initial=0.0)
    return (out * (peak / loudest) if loudest > 0 else out).astype(np.float32)
