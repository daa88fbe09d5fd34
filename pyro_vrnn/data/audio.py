"""Reading and writing raw audio, and cutting waveforms into frames.

Waveforms are 1-D float arrays in ``[-1, 1)`` (16-bit sample / 32768). Three containers are read:

- RIFF/WAVE 16-bit PCM, with the standard library's ``wave``;
- FLAC, with ``soundfile``;
- NIST SPHERE (TIMIT's raw ``.WAV``): an ASCII header (``NIST_1A``, its size, usually 1024 bytes,
  ``name -type value`` lines, ``end_head``) followed by 16-bit PCM.

The container is chosen from the file's first bytes, not its extension (TIMIT's SPHERE files are
named ``.WAV``). Several channels are averaged to one. Header fields are checked before use (a
sample rate is a whole number of Hz from 1 to :data:`MAX_SAMPLE_RATE`; ``inf``, ``nan`` or ``0.5``
are refused). Every failure is a :class:`DataError` naming the file.

Frames: a waveform of ``N`` samples becomes ``(N // F, F)`` non-overlapping frames of ``F`` samples
(the trailing partial frame is dropped); :func:`frames_to_waveform` is the exact inverse on the kept
samples.
"""

import io
import math
import numbers
import wave

import numpy as np
import torch

from . import options
from .errors import DataError
from .files import read_input, written_atomically

AUDIO_EXTENSIONS = (".wav", ".flac", ".sph", ".nist")
#: the sample rates a header may declare (Hz); above 1 MHz is not audio
MAX_SAMPLE_RATE = 1_000_000
#: the channels a header may declare (WAV's own limit is 65535; a data file with more is corrupt)
MAX_CHANNELS = 256
_INT16_SCALE = 32768.0


def sniff_audio_format(head, path=None):
    """``"wav"``, ``"flac"`` or ``"sphere"`` from a file's first bytes ``head``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:7] == b"NIST_1A":
        return "sphere"
    if not head:
        raise DataError("empty file", path)
    raise DataError("unknown audio format (expected RIFF/WAVE, FLAC or NIST SPHERE)", path)


def read_audio(path, max_bytes=None):
    """Read one audio file. Returns ``(waveform, sample_rate)``, waveform float32 ``(N,)`` in [-1, 1),
    ``sample_rate`` a whole number of Hz >= 1.

    The file is read once, through :func:`~pyro_vrnn.data.files.read_input` (a regular file of at
    most ``max_bytes``, default ``MAX_FILE_BYTES["audio"]``), and decoded from memory.
    """
    blob = read_input(path, "audio", max_bytes)
    decode = {"wav": decode_wav, "flac": decode_flac, "sphere": decode_sphere}[sniff_audio_format(blob[:12], path)]
    waveform, sample_rate = decode(blob, path)
    if waveform.size == 0:
        raise DataError("audio file holds no samples", path)
    if not np.isfinite(waveform).all():
        raise DataError("audio holds NaN or Inf samples", path)
    return waveform, sample_rate


def _pcm16_to_mono(raw, channels, path, byteorder="<"):
    samples = np.frombuffer(raw, dtype=np.dtype(byteorder + "i2")).astype(np.float32) / _INT16_SCALE
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples


def _check_rate(rate, path, container):
    """A sample rate read from a header: a whole number of Hz in ``[1, MAX_SAMPLE_RATE]``."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) \
            or rate != int(rate) or not 1 <= rate <= MAX_SAMPLE_RATE:
        raise DataError(f"{container} header has an invalid sample_rate {rate!r} (expected a whole number of Hz "
                        f"from 1 to {MAX_SAMPLE_RATE})", path)
    return int(rate)


def decode_wav(blob, path=None):
    """16-bit PCM RIFF/WAVE bytes -> ``(waveform (N,), sample_rate)``."""
    try:
        with wave.open(io.BytesIO(blob), "rb") as w:
            channels, width, rate, n_frames = (w.getnchannels(), w.getsampwidth(), w.getframerate(),
                                               w.getnframes())
            if width != 2:
                raise DataError(f"sample width is {width * 8} bits; only 16-bit PCM WAV is supported", path)
            if not 1 <= channels <= MAX_CHANNELS:
                raise DataError(f"invalid WAV header ({channels} channels; expected 1 to {MAX_CHANNELS})", path)
            rate = _check_rate(rate, path, "WAV")
            raw = w.readframes(n_frames)
    except DataError:
        raise
    except Exception as exc:  # wave.Error, EOFError, struct.error and friends from a mangled header
        raise DataError(f"corrupt or unsupported WAV file ({type(exc).__name__}: {exc})", path) from None
    expected = n_frames * channels * 2
    if len(raw) < expected:
        raise DataError(f"truncated WAV data: header says {n_frames} frames, file holds "
                        f"{len(raw) // (2 * channels)}", path)
    return _pcm16_to_mono(raw[:expected], channels, path), rate


def decode_flac(blob, path=None):
    """FLAC bytes (any PCM depth) via ``soundfile`` -> ``(waveform (N,), sample_rate)``."""
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(blob))
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise DataError(f"invalid FLAC header ({info.channels} channels; expected 1 to {MAX_CHANNELS})", path)
        rate = _check_rate(info.samplerate, path, "FLAC")
        data, _ = soundfile.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    except DataError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError on bad files
        raise DataError(f"corrupt or unsupported FLAC file ({type(exc).__name__}: {exc})", path) from None
    if info.frames > 0 and data.shape[0] < info.frames:
        raise DataError(f"truncated FLAC: header says {info.frames} frames, decoded {data.shape[0]}", path)
    if data.shape[1] < 1:
        raise DataError("invalid FLAC stream header", path)
    return data.mean(axis=1).astype(np.float32), rate


_SPHERE_NUMBER_TYPES = {"-i": (int, "an integer"), "-r": (float, "a number")}


def parse_sphere_header(header_bytes, path):
    """Parse a NIST SPHERE header (bytes up to the declared header size) into a dict."""
    try:
        text = header_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise DataError("SPHERE header is not ASCII", path) from None
    lines = text.split("\n")
    fields = {}
    for number, line in enumerate(lines[2:], start=3):
        line = line.strip()
        if line == "end_head":
            return fields
        if not line or line.startswith(";"):
            continue
        parts = line.split(None, 2)
        if len(parts) != 3 or not parts[1].startswith("-"):
            raise DataError(f"malformed SPHERE header line {line!r}", path, f"header line {number}")
        name, kind, value = parts
        if kind in _SPHERE_NUMBER_TYPES:
            cast, expected = _SPHERE_NUMBER_TYPES[kind]
            try:
                fields[name] = cast(value)
            except ValueError:
                raise DataError(f"SPHERE field {name} is not {expected}: {value!r}", path,
                                f"header line {number}") from None
        else:
            fields[name] = value
    raise DataError("SPHERE header has no end_head marker", path)


def _sphere_whole_number(fields, name, default, low, high, path):
    value = fields.get(name, default)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)  # "-r 2.0" where "-i 2" was meant
    if not isinstance(value, int) or not low <= value <= high:
        raise DataError(f"invalid SPHERE {name} {value!r} (expected a whole number from {low} to {high})", path)
    return value


def decode_sphere(blob, path=None):
    """NIST SPHERE 16-bit PCM bytes (TIMIT) -> ``(waveform (N,), sample_rate)``."""
    if blob[:8] != b"NIST_1A\n":
        raise DataError("not a NIST SPHERE file (no 'NIST_1A' line)", path)
    size_line = blob[8:16]
    try:
        header_size = int(size_line.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise DataError(f"SPHERE header size line is not a number: {size_line!r}", path) from None
    if header_size < 16 or header_size > len(blob):
        raise DataError(f"SPHERE header size {header_size} does not fit the file ({len(blob)} bytes)", path)
    fields = parse_sphere_header(blob[:header_size], path)
    coding = str(fields.get("sample_coding", "pcm"))
    if coding != "pcm":
        raise DataError(f"unsupported SPHERE sample_coding {coding!r} (only uncompressed pcm)", path)
    width = fields.get("sample_n_bytes", 2)
    if width != 2:
        raise DataError(f"sample width is {width} bytes; only 16-bit SPHERE is supported", path)
    channels = _sphere_whole_number(fields, "channel_count", 1, 1, MAX_CHANNELS, path)
    if "sample_rate" not in fields:
        raise DataError("SPHERE header has no sample_rate", path)
    rate = _check_rate(fields["sample_rate"], path, "SPHERE")
    byte_format = str(fields.get("sample_byte_format", "01"))
    if byte_format not in ("01", "10"):
        raise DataError(f"unsupported SPHERE sample_byte_format {byte_format!r}", path)
    data = blob[header_size:]
    available = len(data) // (2 * channels)
    count = _sphere_whole_number(fields, "sample_count", available, 0, len(blob), path)
    if count > available:
        raise DataError(f"truncated SPHERE data: header says {count} samples, file holds {available}", path)
    raw = data[:count * 2 * channels]
    return _pcm16_to_mono(raw, channels, path, "<" if byte_format == "01" else ">"), rate


def waveform_to_frames(waveform, frame_size=200):
    """``(N,)`` -> ``(N // frame_size, frame_size)`` non-overlapping frames (partial tail dropped).
    Works on numpy arrays and tensors alike."""
    frame_size = options.whole_number("frame_size", frame_size, minimum=1)
    n_frames = waveform.shape[-1] // frame_size
    return waveform[..., :n_frames * frame_size].reshape(*waveform.shape[:-1], n_frames, frame_size)


def frames_to_waveform(frames):
    """``(..., T, F)`` -> ``(..., T * F)``: the inverse of :func:`waveform_to_frames`."""
    return frames.reshape(*frames.shape[:-2], frames.shape[-2] * frames.shape[-1])


def _as_float64_tensor(values, path):
    if torch.is_tensor(values):
        x = values.detach()
    else:
        try:
            array = np.asarray(values)
        except Exception as exc:  # ragged nested lists and the like
            raise DataError(f"cannot write {type(values).__name__} as audio ({exc})", path) from None
        if array.dtype.kind not in "biuf":
            raise DataError(f"audio must be real numbers, got an array of dtype {array.dtype}", path)
        x = torch.as_tensor(array)
    if x.is_complex():
        raise DataError(f"audio must be real numbers, got dtype {x.dtype}", path)
    return x.to("cpu", torch.float64)


def write_wav(path, frames_or_waveform, sample_rate=16000, normalizer=None):
    """Write a 16-bit mono WAV file.

    :param frames_or_waveform: ``(T, F)`` frames (e.g. a generated sequence), ``(1, T, F)``, or a
        ``(N,)`` waveform; tensor or numpy array, in ``[-1, 1)`` units after un-normalizing.
    :param int sample_rate: Hz, a whole number from 1 to :data:`MAX_SAMPLE_RATE`.
    :param Normalizer normalizer: if given, ``normalizer.denormalize`` is applied first (frames of
        width ``normalizer.x_dim``; a waveform is cut into such frames).

    Values are clipped to the int16 range; NaN or Inf is a :class:`DataError` (it would be written
    as silence). The file is written under a temporary name, then renamed, so an interrupted write
    never leaves half a file at ``path``. Returns ``path``.
    """
    sample_rate = options.whole_number("sample_rate", sample_rate, minimum=1, maximum=MAX_SAMPLE_RATE)
    x = _as_float64_tensor(frames_or_waveform, path)
    if x.dim() == 0 or x.dim() > 3 or (x.dim() == 3 and x.shape[0] != 1):
        raise DataError(f"write_wav takes one sequence: (N,) samples, (T, F) frames or (1, T, F); got shape "
                        f"{tuple(x.shape)}", path)
    if normalizer is not None:
        if x.dim() == 1:
            if x.numel() % normalizer.x_dim:
                raise DataError(f"waveform of {x.numel()} samples is not a whole number of "
                                f"{normalizer.x_dim}-sample frames", path)
            x = x.reshape(-1, normalizer.x_dim)
        x = normalizer.denormalize(x)
    waveform = x.reshape(-1) if x.dim() <= 1 else frames_to_waveform(x).reshape(-1)
    bad = ~torch.isfinite(waveform)
    if bad.any():
        raise DataError(f"cannot write NaN or Inf as audio ({int(bad.sum())} of {waveform.numel()} samples, the "
                        f"first at sample {int(bad.nonzero()[0, 0])})", path)
    pcm = torch.clamp(torch.round(waveform * _INT16_SCALE), -32768, 32767).to(torch.int16).numpy()
    with written_atomically(path, "WAV file") as tmp, wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path
