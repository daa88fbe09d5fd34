"""Seeded SYNTHETIC datasets that need no files and no network, for smoke runs and tutorials.

These are generated, not recorded; ``dataset.synthetic`` is ``True`` and ``describe()`` says so.
Generation takes well under a few seconds; nothing is cached.

- :func:`synthetic_handwriting` — text lines rendered from the Hershey stroke fonts
  (``hershey-fonts``), each by one of ``num_writers`` writers with their own font, slant, scale,
  letter spacing, writing speed (points per unit of ink) and jitter: writer-to-writer variability
  for the latent variables to capture. Rows ``(dx, dy, pen_lifted)``, y up.
- :func:`synthetic_speech` — 16 kHz waveforms that switch between regimes (voiced harmonic tones
  with a speaker-specific pitch, noise bursts, near-silence) every 50-400 ms; framed and chunked
  exactly like real speech.
- :func:`synthetic_music` — 88-key piano rolls of a chord progression (bass + triad) under a
  stepwise melody, in a random key and tempo per piece.
"""

import math

import numpy as np

from . import options
from .audio import MAX_SAMPLE_RATE
from .base import SequenceDataset, to_tensors
from .errors import DataError
from .handwriting import build_handwriting_dataset, strokes_to_offsets
from .music import LOWEST_NOTE, NUM_NOTES
from .normalization import Normalizer
from .speech import frames_dataset_from_waveforms

WORDS = (
    "the of and to in is it you that he was for on are as with his they at be this have from or one "
    "had by word but not what all were we when your can said there use an each which she do how their "
    "if will up other about out many then them these so some her would make like him into time has "
    "look two more write go see number no way could people my than first water been call who oil its "
    "now find long down day did get come made may part over new sound take only little work know place "
    "year live me back give most very after thing our just name good sentence man think say great where "
    "help through much before line right too mean old any same tell boy follow came want show also "
    "around form three small set put end does another well large must big even such because turn here"
).split()
WRITER_FONTS = ("futural", "scripts", "cursive", "rowmans", "timesr")
#: bounds on what one option can ask the generators for (so a typo is an error, not hours of generation)
MAX_SYNTHETIC_SEQUENCES = 100_000
MAX_SYNTHETIC_STEPS = 100_000
MAX_SYNTHETIC_SECONDS = 600.0


def _split_counts(num_train, num_valid, num_test):
    """How many sequences each split gets: whole numbers from 1 (an empty split trains or tests
    nothing) to :data:`MAX_SYNTHETIC_SEQUENCES`."""
    return tuple(options.whole_number(option, value, minimum=1, maximum=MAX_SYNTHETIC_SEQUENCES)
                 for option, value in (("num_train", num_train), ("num_valid", num_valid), ("num_test", num_test)))


# ------------------------------------------------------------------------------------ handwriting
class _GlyphCache:
    """Strokes of single characters per font, shifted to start at x = 0; cap height about 10."""

    def __init__(self):
        self._fonts = {}
        self._glyphs = {}

    def _font(self, name):
        if name not in self._fonts:
            try:
                from HersheyFonts import HersheyFonts
            except ImportError:  # pragma: no cover - it is a declared dependency
                raise DataError("synthetic handwriting needs the 'hershey-fonts' package") from None
            font = HersheyFonts()
            font.load_default_font(name)
            font.normalize_rendering(10.0)
            self._fonts[name] = font
        return self._fonts[name]

    def glyph(self, font_name, char):
        """``(strokes, width)``: list of ``(N, 2)`` arrays and the ink width."""
        key = (font_name, char)
        if key not in self._glyphs:
            strokes = [np.asarray(s, dtype=np.float64) for s in self._font(font_name).strokes_for_text(char)
                       if len(s) > 0]
            if strokes:
                x_min = min(s[:, 0].min() for s in strokes)
                x_max = max(s[:, 0].max() for s in strokes)
                strokes = [s - np.array([x_min, 0.0]) for s in strokes]
                width = x_max - x_min
            else:
                width = 0.0
            self._glyphs[key] = (strokes, width)
        return self._glyphs[key]


_GLYPHS = _GlyphCache()


def _resample_stroke(stroke, step):
    """Points every ``step`` units of arc length along a polyline ``(N, 2)`` (ends kept)."""
    if len(stroke) < 2:
        return stroke
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return stroke[:1]
    n = max(2, int(math.ceil(arc[-1] / step)) + 1)
    where = np.linspace(0.0, arc[-1], n)
    return np.stack([np.interp(where, arc, stroke[:, 0]), np.interp(where, arc, stroke[:, 1])], axis=1)


def sample_writers(num_writers, rng):
    """Per-writer style: font, slant (shear), scale, letter gap, word gap, ink step, jitter."""
    return [{
        "font": WRITER_FONTS[rng.integers(len(WRITER_FONTS))],
        "slant": float(rng.uniform(-0.15, 0.45)),
        "scale": float(rng.uniform(0.7, 1.4)),
        "aspect": float(rng.uniform(0.85, 1.15)),
        "letter_gap": float(rng.uniform(0.3, 2.5)),
        "word_gap": float(rng.uniform(4.0, 9.0)),
        "ink_step": float(rng.uniform(1.4, 2.6)),
        "jitter": float(rng.uniform(0.02, 0.25)),
    } for _ in range(num_writers)]


def render_line(words, writer, rng):
    """Render ``words`` in ``writer``'s style -> list of ``(N_k, 2)`` strokes (absolute, y up)."""
    strokes, cursor = [], 0.0
    for word in words:
        for char in word:
            glyph_strokes, width = _GLYPHS.glyph(writer["font"], char)
            for s in glyph_strokes:
                strokes.append(_resample_stroke(s + np.array([cursor, 0.0]), writer["ink_step"] / writer["scale"]))
            cursor += width + writer["letter_gap"]
        cursor += writer["word_gap"]
    line_scale = writer["scale"] * rng.uniform(0.95, 1.05)
    shear = np.array([[1.0, 0.0], [writer["slant"], writer["aspect"]]])  # x' = x + slant*y
    out = []
    for s in strokes:
        p = (s @ shear) * line_scale
        out.append(p + rng.normal(0.0, writer["jitter"], size=p.shape))
    return out


def synthetic_handwriting(num_train=300, num_valid=50, num_test=50, num_writers=16, min_steps=50,
                          max_steps=150, seed=0):
    """SYNTHETIC handwriting: Hershey-font text lines by ``num_writers`` simulated writers.

    Each sequence is one line of a few words, at most ``max_steps`` (mostly at least ``min_steps``) rows ``(dx, dy, pen)``
    (pen = 1 on each stroke's last point). Writers are shared across splits; ``info["writer_ids"]``
    gives each sequence's writer. Normalized like real handwriting (offsets / training std).
    :returns: :class:`SequenceDataset`, kind ``"handwriting"``, ``x_dim = 3``.
    """
    num_train, num_valid, num_test = _split_counts(num_train, num_valid, num_test)
    num_writers = options.whole_number("num_writers", num_writers, minimum=1, maximum=MAX_SYNTHETIC_SEQUENCES)
    min_steps = options.whole_number("min_steps", min_steps, minimum=1, maximum=MAX_SYNTHETIC_STEPS)
    max_steps = options.whole_number("max_steps", max_steps, minimum=min_steps, maximum=MAX_SYNTHETIC_STEPS)
    rng = np.random.default_rng(options.seed(seed))
    writers = sample_writers(num_writers, rng)
    raw, writer_ids, texts = {}, {}, {}
    for split, count in (("train", num_train), ("valid", num_valid), ("test", num_test)):
        raw[split], writer_ids[split], texts[split] = [], [], []
        for _ in range(count):
            w = int(rng.integers(num_writers))
            target = rng.integers(min_steps, max_steps + 1)
            words, strokes = [], []
            for _attempt in range(20):
                candidate = words + [WORDS[rng.integers(len(WORDS))]]
                candidate_strokes = render_line(candidate, writers[w], rng)
                steps = sum(len(s) for s in candidate_strokes)
                if steps > max_steps:
                    if words:
                        break
                    continue  # one word too long for this writer: try another word
                words, strokes = candidate, candidate_strokes
                if steps >= target:
                    break
            if not strokes:
                raise DataError(f"writer {w} cannot render any word in {max_steps} steps; raise max_steps")
            raw[split].append(strokes_to_offsets(strokes))
            writer_ids[split].append(w)
            texts[split].append(" ".join(words))
    info = {"generator": f"Hershey-font text lines, {num_writers} writers (font, slant, scale, spacing, "
                         f"ink step, jitter per writer), seed {seed}",
            "writer_ids": writer_ids, "texts": texts, "writers": writers}
    return build_handwriting_dataset(raw, "handwriting-synthetic", offset_limit=None, synthetic=True, info=info)


# ----------------------------------------------------------------------------------------- speech
def _synthetic_utterance(rng, speaker, sample_rate, seconds):
    n = int(seconds * sample_rate)
    wave = np.zeros(n)
    start = 0
    phase = rng.uniform(0, 2 * math.pi)
    while start < n:
        length = min(n - start, int(rng.uniform(0.05, 0.4) * sample_rate))
        t = np.arange(length) / sample_rate
        regime = rng.choice(3, p=[0.6, 0.25, 0.15])
        ramp = np.minimum(1.0, np.minimum(np.arange(length), np.arange(length)[::-1]) / (0.01 * sample_rate) + 0.05)
        if regime == 0:  # voiced: harmonics of a drifting pitch
            f0 = speaker["f0"] * rng.uniform(0.85, 1.2) * (1 + 0.03 * np.sin(2 * math.pi * rng.uniform(3, 7) * t))
            inst_phase = phase + 2 * math.pi * np.cumsum(f0) / sample_rate
            phase = inst_phase[-1]
            weights = speaker["harmonics"] * rng.uniform(0.6, 1.4, size=len(speaker["harmonics"]))
            seg = sum(wt * np.sin((k + 1) * inst_phase) for k, wt in enumerate(weights))
            seg *= rng.uniform(0.15, 0.35) * speaker["loudness"] / max(weights.sum(), 1e-6)
        elif regime == 1:  # unvoiced: smoothed noise burst
            noise = rng.normal(size=length)
            a = rng.uniform(-0.9, 0.5)
            seg = noise + a * np.concatenate([[0.0], noise[:-1]])
            seg *= rng.uniform(0.02, 0.08) * speaker["loudness"]
        else:  # near silence
            seg = rng.normal(scale=0.002, size=length)
        wave[start:start + length] = seg * ramp
        start += length
    return np.clip(wave, -0.99, 0.99).astype(np.float32)


def synthetic_speech(num_train=64, num_valid=12, num_test=12, num_speakers=8, seconds=(1.5, 3.0),
                     sample_rate=16000, frame_size=200, chunk_frames=40, test_chunking="utterance", seed=0):
    """SYNTHETIC speech-like audio with regime switches (voiced / noise / silence).

    ``num_train`` utterances of ``seconds`` length are cut into ``chunk_frames`` x ``frame_size``
    chunks (about 290 chunks of 40 x 200 by default); valid/test are whole utterances.
    :returns: :class:`SequenceDataset`, kind ``"speech"``, ``x_dim = frame_size``.
    """
    num_train, num_valid, num_test = _split_counts(num_train, num_valid, num_test)
    num_speakers = options.whole_number("num_speakers", num_speakers, minimum=1, maximum=MAX_SYNTHETIC_SEQUENCES)
    sample_rate = options.whole_number("sample_rate", sample_rate, minimum=1000, maximum=MAX_SAMPLE_RATE)
    seconds = options.pair("seconds", seconds, lambda option, value: options.real_number(
        option, value, above=0.0, at_most=MAX_SYNTHETIC_SECONDS))
    frame_size = options.whole_number("frame_size", frame_size, minimum=1)
    chunk_frames = options.whole_number("chunk_frames", chunk_frames, minimum=1, allow_none=True)
    test_chunking = options.one_of("test_chunking", test_chunking, ("utterance", "chunks"))
    rng = np.random.default_rng(options.seed(seed))
    speakers = [{"f0": float(rng.uniform(90, 260)), "loudness": float(rng.uniform(0.6, 1.4)),
                 "harmonics": rng.uniform(0.1, 1.0, size=int(rng.integers(2, 6)))}
                for _ in range(num_speakers)]
    waveforms = {}
    for split, count in (("train", num_train), ("valid", num_valid), ("test", num_test)):
        waveforms[split] = [_synthetic_utterance(rng, speakers[int(rng.integers(num_speakers))], sample_rate,
                                                 rng.uniform(*seconds)) for _ in range(count)]
    info = {"generator": f"regime-switching harmonic/noise/silence waveforms, {num_speakers} speakers, seed {seed}"}
    return frames_dataset_from_waveforms(waveforms, "speech-synthetic", frame_size, chunk_frames, test_chunking,
                                         sample_rate, synthetic=True, info=info)


# ------------------------------------------------------------------------------------------ music
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSION = {0: (3, 4, 5, 1), 1: (4, 6), 2: (5, 3), 3: (4, 0, 1), 4: (0, 5), 5: (3, 1, 4), 6: (0,)}


def _synthetic_piece(rng, length):
    tonic = int(rng.integers(48, 60))
    scale = _MAJOR if rng.random() < 0.6 else _MINOR
    chord_steps = int(rng.integers(2, 5))
    roll = np.zeros((length, NUM_NOTES), dtype=np.float32)
    degree, melody = 0, int(rng.integers(0, 7))
    for t in range(length):
        if t % chord_steps == 0 and t > 0:
            options = _PROGRESSION[degree]
            degree = options[int(rng.integers(len(options)))]
        triad = [tonic + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        notes = set(triad) | {triad[0] - 12}
        if rng.random() < 0.7:
            melody = int(np.clip(melody + rng.choice([-2, -1, 0, 1, 2]), 0, 13))
        notes.add(tonic + 12 + scale[melody % 7] + 12 * (melody // 7))
        for note in notes:
            roll[t, note - LOWEST_NOTE] = 1.0
    return roll


def synthetic_music(num_train=200, num_valid=40, num_test=40, lengths=(32, 96), seed=0):
    """SYNTHETIC polyphonic music: 88-key binary piano rolls of chord progressions under a melody.

    :returns: :class:`SequenceDataset`, kind ``"music"``, ``x_dim = 88``, identity normalizer,
        ``emission="bernoulli"``.
    """
    num_train, num_valid, num_test = _split_counts(num_train, num_valid, num_test)
    lengths = options.pair("lengths", lengths, lambda option, value: options.whole_number(
        option, value, minimum=1, maximum=MAX_SYNTHETIC_STEPS))
    rng = np.random.default_rng(options.seed(seed))
    splits = {split: to_tensors([_synthetic_piece(rng, int(rng.integers(lengths[0], lengths[1] + 1)))
                                 for _ in range(count)])
              for split, count in (("train", num_train), ("valid", num_valid), ("test", num_test))}
    return SequenceDataset(name="music-synthetic", kind="music", train=splits["train"], valid=splits["valid"],
                           test=splits["test"], normalizer=Normalizer.identity(NUM_NOTES), synthetic=True,
                           info={"generator": f"bass + triad progressions under a stepwise melody, seed {seed}",
                                 "encoding": "88-key binary piano roll, MIDI 21..108"},
                           emission="bernoulli")
