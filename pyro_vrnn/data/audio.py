"""Reading and writing raw audio, and cutting waveforms into frames.

Waveforms are 1-D float arrays in ``[-1, 1)`` (16-bit sample / 32768). Three containers are read:

- RIFF/WAVE 16-bit PCM, with the standard library's ``wave``;
- FLAC, with ``soundfile``;
- NIST SPHERE (TIMIT's raw ``.WAV``): an ASCII header (``NIST_1A``, its size, usually 1024 bytes,
  ``name -type value`` lines, ``end_head``) followed by 16-bit PCM.

The container is chosen from the file's first bytes, not its extension (TIMIT's SPHERE files are
named ``.WAV``). Several channels are averaged to one. Every failure is a :class:`DataError`
naming the file.

Frames: a waveform of ``N`` samples becomes ``(N // F, F)`` non-overlapping frames of ``F`` samples
(the trailing partial frame is dropped); :func:`frames_to_waveform` is the exact inverse on the kept
samples.
"""

import os
import wave

import numpy as np
import torch

from .errors import DataError

AUDIO_EXTENSIONS = (".wav", ".flac", ".sph", ".nist")
_INT16_SCALE = 32768.0


def sniff_audio_format(path):
    """``"wav"``, ``"flac"`` or ``"sphere"`` from the file's magic bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as exc:
        raise DataError(f"cannot open audio file ({exc.strerror or exc})", path) from None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:7] == b"NIST_1A":
        return "sphere"
    if not head:
        raise DataError("empty file", path)
    raise DataError("unknown audio format (expected RIFF/WAVE, FLAC or NIST SPHERE)", path)


def read_audio(path):
    """Read one audio file. Returns ``(waveform, sample_rate)``, waveform float32 ``(N,)`` in [-1, 1)."""
    fmt = sniff_audio_format(path)
    reader = {"wav": read_wav, "flac": read_flac, "sphere": read_sphere}[fmt]
    waveform, sample_rate = reader(path)
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


def read_wav(path):
    """16-bit PCM RIFF/WAVE -> ``(waveform (N,), sample_rate)``."""
    try:
        with wave.open(os.fspath(path), "rb") as w:
            channels, width, rate, n_frames = (w.getnchannels(), w.getsampwidth(), w.getframerate(),
                                               w.getnframes())
            if width != 2:
                raise DataError(f"sample width is {width * 8} bits; only 16-bit PCM WAV is supported", path)
            if channels < 1 or rate <= 0:
                raise DataError(f"invalid WAV header ({channels} channels, {rate} Hz)", path)
            raw = w.readframes(n_frames)
    except DataError:
        raise
    except (wave.Error, EOFError, OSError, ValueError, OverflowError, MemoryError) as exc:
        raise DataError(f"corrupt or unsupported WAV file ({type(exc).__name__}: {exc})", path) from None
    except Exception as exc:  # struct.error and friends from a mangled header
        raise DataError(f"corrupt WAV file ({type(exc).__name__}: {exc})", path) from None
    expected = n_frames * channels * 2
    if len(raw) < expected:
        raise DataError(f"truncated WAV data: header says {n_frames} frames, file holds "
                        f"{len(raw) // (2 * channels)}", path)
    return _pcm16_to_mono(raw[:expected], channels, path), rate


def read_flac(path):
    """FLAC (any PCM depth) via ``soundfile`` -> ``(waveform (N,), sample_rate)``."""
    import soundfile

    try:
        info = soundfile.info(os.fspath(path))
        data, rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError on bad files
        raise DataError(f"corrupt or unsupported FLAC file ({type(exc).__name__}: {exc})", path) from None
    if info.frames > 0 and data.shape[0] < info.frames:
        raise DataError(f"truncated FLAC: header says {info.frames} frames, decoded {data.shape[0]}", path)
    if rate <= 0 or data.shape[1] < 1:
        raise DataError("invalid FLAC stream header", path)
    return data.mean(axis=1).astype(np.float32), int(rate)


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


def read_sphere(path):
    """NIST SPHERE 16-bit PCM (TIMIT) -> ``(waveform (N,), sample_rate)``."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as exc:
        raise DataError(f"cannot open SPHERE file ({exc.strerror or exc})", path) from None
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
    channels = fields.get("channel_count", 1)
    rate = fields.get("sample_rate")
    if not isinstance(channels, int) or channels < 1:
        raise DataError(f"invalid SPHERE channel_count {channels!r}", path)
    if not isinstance(rate, (int, float)) or rate <= 0:
        raise DataError("SPHERE header has no valid sample_rate", path)
    byte_format = str(fields.get("sample_byte_format", "01"))
    if byte_format not in ("01", "10"):
        raise DataError(f"unsupported SPHERE sample_byte_format {byte_format!r}", path)
    data = blob[header_size:]
    available = len(data) // (2 * channels)
    count = fields.get("sample_count", available)
    if not isinstance(count, int) or count < 0:
        raise DataError(f"invalid SPHERE sample_count {count!r}", path)
    if count > available:
        raise DataError(f"truncated SPHERE data: header says {count} samples, file holds {available}", path)
    raw = data[:count * 2 * channels]
    return _pcm16_to_mono(raw, channels, path, "<" if byte_format == "01" else ">"), int(rate)


def waveform_to_frames(waveform, frame_size=200):
    """``(N,)`` -> ``(N // frame_size, frame_size)`` non-overlapping frames (partial tail dropped).
    Works on numpy arrays and tensors alike."""
    if frame_size < 1:
        raise DataError(f"frame_size must be >= 1, got {frame_size}")
    n_frames = waveform.shape[-1] // frame_size
    return waveform[..., :n_frames * frame_size].reshape(*waveform.shape[:-1], n_frames, frame_size)


def frames_to_waveform(frames):
    """``(..., T, F)`` -> ``(..., T * F)``: the inverse of :func:`waveform_to_frames`."""
    return frames.reshape(*frames.shape[:-2], frames.shape[-2] * frames.shape[-1])


def write_wav(path, frames_or_waveform, sample_rate=16000, normalizer=None):
    """Write a 16-bit mono WAV file.

    :param frames_or_waveform: ``(T, F)`` frames (e.g. a generated sequence), ``(1, T, F)``, or a
        ``(N,)`` waveform; tensor or numpy array, in ``[-1, 1)`` units after un-normalizing.
    :param Normalizer normalizer: if given, ``normalizer.denormalize`` is applied first (frames of
        width ``normalizer.x_dim``; a waveform is cut into such frames).

    Values are clipped to the int16 range. Returns ``path``.
    """
    x = torch.as_tensor(np.asarray(frames_or_waveform) if not torch.is_tensor(frames_or_waveform)
                        else frames_or_waveform).detach().to("cpu", torch.float64)
    if normalizer is not None:
        if x.dim() == 1:
            if x.numel() % normalizer.x_dim:
                raise DataError(f"waveform of {x.numel()} samples is not a whole number of "
                                f"{normalizer.x_dim}-sample frames", path)
            x = x.reshape(-1, normalizer.x_dim)
        x = normalizer.denormalize(x)
    waveform = x.reshape(-1) if x.dim() <= 1 else frames_to_waveform(x).reshape(-1)
    pcm = torch.clamp(torch.round(waveform * _INT16_SCALE), -32768, 32767).to(torch.int16).numpy()
    try:
        with wave.open(os.fspath(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.astype("<i2").tobytes())
    except OSError as exc:
        raise DataError(f"cannot write WAV file ({exc.strerror or exc})", path) from None
    return path
