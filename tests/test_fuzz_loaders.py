"""Bad input against the data loaders, as an attacker and a careless user would give it.

Grouped by what goes wrong without the guards: a **hang** (a FIFO, a device, an unbounded read), a
**bomb** (a small file that expands to gigabytes), a **raw crash** (an exception other than
:class:`DataError`, or a dead process), **silent nonsense** (a bad option or degenerate data
accepted). A new bad input is one more entry in the lists below. Inputs that would eat the test
runner's memory or crash it, unguarded, run in a child process (``_fuzz.isolated``); hangs run under
a time limit (``_fuzz.deadline``), so that each fails fast instead of blocking the suite.
"""

import io
import math
import os
import pickle
import struct
import tracemalloc
import wave
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _fuzz import FUZZ, deadline, isolated
from pyro_vrnn.data import (DATA_ENV_VAR, DataError, load_dataset, load_handwriting, load_music, load_speech,
                            read_audio, resolve_data_path)

SONGS = {"train": [[[60, 64], [62]], [[65]]], "valid": [[[60]]], "test": [[[61], [62]]]}


# ---------------------------------------------------------------------------------------------- files
def music_pickle(path, songs=SONGS):
    path.write_bytes(pickle.dumps(songs, protocol=2))
    return path


def wav_file(path, n=800, rate=16000, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).integers(-3000, 3000, size=n).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def speech_folder(root, n=6):
    for i in range(n):
        wav_file(root / f"utt{i}.wav", seed=i)
    return root


def object_array(seqs):
    out = np.empty(len(seqs), dtype=object)
    out[:] = seqs
    return out


def stroke3(n, seed=0):
    rng = np.random.default_rng(seed)
    seq = np.zeros((n, 3), dtype=np.int16)
    seq[:, :2] = rng.integers(-30, 30, size=(n, 2))
    seq[-1, 2] = 1
    return seq


def stroke3_npz(path, splits=None):
    splits = splits or {k: [stroke3(5 + i, seed=i) for i in range(4)] for k in ("train", "valid", "test")}
    np.savez(path, **{k: object_array(v) for k, v in splits.items()})
    return path


def iam_xml(points):
    body = "".join(f'<Point x="{x}" y="{y}" time="0"/>' for x, y in points)
    return f"<WhiteboardCaptureSession><StrokeSet><Stroke>{body}</Stroke></StrokeSet></WhiteboardCaptureSession>"


def iam_folder(root, n=6):
    for i in range(n):
        (root / f"a01-{i:03d}u-01.xml").write_text(iam_xml([(10 + i, 20), (15, 27 + i), (19, 30)]))
    return root


def sphere_file(path, fields, samples=400):
    lines = ["NIST_1A", "   1024"] + [f"{k} {v}" for k, v in fields.items()] + ["end_head"]
    header = ("\n".join(lines) + "\n").encode("ascii").ljust(1024, b" ")
    path.write_bytes(header + np.zeros(samples, "<i2").tobytes())
    return path


SPHERE_OK = {"sample_count": "-i 400", "sample_n_bytes": "-i 2", "channel_count": "-i 1",
             "sample_byte_format": "-s2 01", "sample_rate": "-i 16000", "sample_coding": "-s3 pcm"}


# ---------------------------------------------------------------------------------------------- hangs
def fifo(path):
    os.mkfifo(path)
    return path


HANG_CASES = {
    "FIFO named *.pickle": lambda d: load_music(fifo(d / "songs.pickle")),
    "FIFO named *.wav": lambda d: read_audio(fifo(d / "utt.wav")),
    "FIFO among speech files": lambda d: load_speech(fifo(speech_folder(d) / "utt9.wav").parent),
    "FIFO named *.npz": lambda d: load_handwriting(fifo(d / "lines.npz")),
    "FIFO among IAM XML files": lambda d: load_handwriting(fifo(iam_folder(d) / "a01-009u-01.xml").parent),
    "FIFO as music: spec": lambda d: load_dataset(f"music:{fifo(d / 'x.pickle')}"),
    "character device as music": lambda d: load_music("/dev/null"),
    "folder named *.pickle": lambda d: load_music((d / "dir.pickle").mkdir() or d / "dir.pickle"),
}


@pytest.mark.parametrize("case", list(HANG_CASES))
def test_a_file_that_is_not_a_regular_file_is_a_data_error_at_once(tmp_path, case):
    with deadline(5, case):
        with pytest.raises(DataError, match="regular|not a folder") as info:
            HANG_CASES[case](tmp_path)
    assert "\n" not in str(info.value)


def test_skip_mode_skips_a_fifo_among_speech_files_without_blocking(tmp_path):
    fifo(speech_folder(tmp_path) / "utt9.wav")
    with deadline(10, "load_speech"), pytest.warns(UserWarning, match="utt9.wav.*FIFO"):
        data = load_speech(tmp_path, frame_size=20, chunk_frames=4, valid_fraction=0.2, test_fraction=0.2,
                           on_error="skip")
    assert len(data.train) > 0


def test_a_fifo_named_like_an_iam_task_list_does_not_block(tmp_path):
    iam_folder(tmp_path)
    fifo(tmp_path / "trainset.txt")
    with deadline(5, "load_handwriting"), pytest.raises(DataError, match="trainset.txt.*FIFO"):
        load_handwriting(tmp_path)


# ---------------------------------------------------------------------------------------------- bombs
def zero_bomb_member(declared):
    """A deflate stream of ``declared`` zero bytes (after a float64 .npy header), made in milliseconds
    by repeating one fully flushed block, and the header bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": ((declared - 128) // 8,)})
    head = header.getvalue()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats, rest = divmod(declared - len(head), 1 << 20)
    tail = compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FINISH)
    return start + block * repeats + tail


def zip_with(path, members):
    """A zip archive written by hand: ``members`` maps a name to ``(deflated bytes, declared size)``."""
    out, central = io.BytesIO(), []
    for name, (data, size) in members.items():
        offset = out.tell()
        fields = (20, 0, 8, 0, 0, 0, len(data), size, len(name.encode()), 0)
        out.write(b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", *fields) + name.encode() + data)
        central.append(b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 8, 0, 0, 0, len(data), size,
                                                   len(name.encode()), 0, 0, 0, 0, 0, offset) + name.encode())
    directory = out.tell()
    out.write(b"".join(central))
    out.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(central), len(central), out.tell() - directory,
                                          directory, 0))
    path.write_bytes(out.getvalue())
    return path


def memo_bomb_pickle(path, fan_out=100_000):
    """A ~200 kB music pickle whose memo references one sequence ``fan_out`` times, and that
    sequence references one step ``fan_out`` times: ``fan_out**2`` time steps once expanded."""
    step = [60]
    sequence = [step] * fan_out
    path.write_bytes(pickle.dumps({"train": [sequence] * fan_out, "valid": [[step]], "test": [[step]]},
                                  protocol=2))
    return path


def allocating_pickle(path):
    """A pickle that asks ``bytearray(10**10)`` (10 GB of zeros) from a 30-byte opcode stream."""
    path.write_bytes(b"\x80\x02cbuiltins\nbytearray\n\x8a\x05\x00\xe4\x0bT\x02\x85R.")
    return path


def crashing_object_array_npz(path):
    """An object array whose state claims 10**6 items but holds none: NumPy crashes (SIGSEGV) on it."""
    state = (1, (10 ** 6,), np.dtype("O"), False, [])
    payload = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
               + pickle.dumps(state, protocol=2)[2:-1] + b"b.")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (10 ** 6,)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train.npy", header.getvalue() + payload)
        z.writestr("test.npy", header.getvalue() + payload)
    return path


BOMBS = {
    # name: (make the file in a folder, the call, what the DataError says); a case that crashes the
    # process (NumPy on a bad object-array state) comes last, so that it cannot hide the others
    "/dev/zero as music": (None, "load_dataset('music:/dev/zero')", "character device"),
    "memo bomb pickle (10**10 steps from 400 kB)": (memo_bomb_pickle, "load_music('bomb')", "max_expanded_bytes"),
    "stroke-3 zip bomb (2.5 GB from 2.5 MB)": (
        lambda p: zip_with(p, {"train.npy": (zero_bomb_member(2_500_000_000), 2_500_000_000),
                               "test.npy": (zero_bomb_member(1 << 20), 1 << 20)}),
        "load_handwriting('bomb', valid_fraction=0.5)", "max_expanded_bytes"),
    "pickle asking bytearray(10**10)": (allocating_pickle, "load_music('bomb')", "not allowed"),
    "object array claiming 10**6 items it lacks": (crashing_object_array_npz, "load_handwriting('bomb')",
                                                    "object array of shape"),
}


@pytest.fixture(scope="module")
def bomb_outcomes(tmp_path_factory):
    """Every bomb, in turn, in one child process (2 GiB address space, 120 s in all)."""
    folder = tmp_path_factory.mktemp("bombs")
    calls = {}
    for i, (case, (make, call, _)) in enumerate(BOMBS.items()):
        if make is not None:
            make(folder / f"bomb{i}")
        calls[case] = call.replace("'bomb'", f"'bomb{i}'")
    return isolated(calls, cwd=folder, timeout=120)


@pytest.mark.parametrize("case", list(BOMBS))
def test_a_bomb_is_a_data_error_within_seconds_and_without_memory_growth(bomb_outcomes, case):
    result = bomb_outcomes[case]
    assert result["raised"] == "DataError", result
    assert BOMBS[case][2] in result["message"] and "\n" not in result["message"], result
    assert result["seconds"] < 5 and result["memory_growth_mb"] < 100, result


def test_billion_laughs_xml_is_refused_quickly_without_memory_growth(tmp_path):
    entities = "".join(f'<!ENTITY l{i} "' + f"&l{i - 1};" * 10 + '">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY l0 "lol">{entities}]>'
            "<StrokeSet><Stroke><Point x='&l9;' y='1'/></Stroke></StrokeSet>")
    iam_folder(tmp_path)
    (tmp_path / "a01-099u-01.xml").write_text(bomb)
    tracemalloc.start()
    try:
        with deadline(5, "the XML bomb"), pytest.raises(DataError, match="a01-099u-01.xml: XML with entity"):
            load_handwriting(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"peak {peak / 1e6:.1f} MB while refusing a billion-laughs file"


def test_external_entity_xml_is_refused_without_reading_the_file_it_names(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("123")
    iam_folder(tmp_path)
    (tmp_path / "a01-099u-01.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<StrokeSet><Stroke><Point x='&x;' y='1'/></Stroke></StrokeSet>")
    with pytest.raises(DataError, match="entity declarations or external references"):
        load_handwriting(tmp_path)


def test_a_file_over_its_size_limit_names_the_option_that_raises_it(tmp_path):
    path = music_pickle(tmp_path / "m.pickle")
    size = path.stat().st_size
    with pytest.raises(DataError, match=r"over the limit of 20 bytes.*max_bytes=N.*--data-option max_bytes=N"):
        load_music(path, max_bytes=20)
    assert load_music(path, max_bytes=size).x_dim == 88


def test_expanded_size_limit_counts_shared_references_and_can_be_raised(tmp_path):
    step = [60]
    path = music_pickle(tmp_path / "m.pickle", {"train": [[step] * 1000] * 10, "valid": [[step]], "test": [[step]]})
    with pytest.raises(DataError, match="max_expanded_bytes"):
        load_music(path, max_expanded_bytes=1_000_000)  # 10,000 steps: 3.5 MB of piano rolls
    assert len(load_music(path, max_expanded_bytes=10_000_000).train) == 10


def test_npz_member_over_the_expanded_limit_is_refused_before_decompression(tmp_path):
    path = zip_with(tmp_path / "b.npz", {"train.npy": (zero_bomb_member(64 << 20), 64 << 20),
                                         "test.npy": (zero_bomb_member(1 << 20), 1 << 20)})
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="decompress to.*max_expanded_bytes"):
            load_handwriting(path, max_expanded_bytes=8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_npy_header_claiming_more_than_its_bytes_is_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 11,)})
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as z:
        z.writestr("train.npy", header.getvalue() + bytes(16))
        z.writestr("test.npy", header.getvalue() + bytes(16))
    with pytest.raises(DataError, match=r"array 'train'.*header says shape \(100000000000,\)"):
        load_handwriting(tmp_path / "h.npz")


# ---------------------------------------------------------------------------------------------- raw crashes
SPHERE_RATES = ["-r inf", "-r nan", "-r 0.5", "-r -16000", "-r 0", "-i 0", "-r 1e300", "-i -5",
                "-i 99999999999999999999", "-s5 16000"]


@pytest.mark.parametrize("rate", SPHERE_RATES)
def test_sphere_sample_rate_out_of_range_is_a_data_error_naming_the_file(tmp_path, rate):
    path = sphere_file(tmp_path / "bad_rate.wav", {**SPHERE_OK, "sample_rate": rate})
    with pytest.raises(DataError, match=r"bad_rate.wav: .*sample_rate") as info:
        read_audio(path)
    assert "\n" not in str(info.value)


SPHERE_FIELDS = {
    "channel_count": ["-i 0", "-i -1", "-r 1.5", "-r inf", "-i 100000", "-s1 2"],
    "sample_count": ["-i -1", "-r nan", "-r 0.5", "-i 10000000000", "-s3 400"],
    "sample_n_bytes": ["-i 1", "-r nan", "-i 3", "-s1 2"],
    "sample_byte_format": ["-s2 21", "-s4 1032", "-i 1"],
    "sample_coding": ["-s5 ulaw", "-i 1"],
}


@pytest.mark.parametrize("field,value", [(f, v) for f, values in SPHERE_FIELDS.items() for v in values])
def test_every_sphere_header_field_is_checked_before_use(tmp_path, field, value):
    path = sphere_file(tmp_path / "bad.wav", {**SPHERE_OK, field: value})
    with pytest.raises(DataError, match="bad.wav"):
        read_audio(path)


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(sorted(SPHERE_OK)),
                              st.tuples(st.sampled_from(["-i", "-r", "-s3"]),
                                        st.one_of(st.integers(-2 ** 70, 2 ** 70).map(str),
                                                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                                  st.text("0123456789.e-+naif", min_size=1, max_size=12))),
                              max_size=6))
def test_random_sphere_header_values_give_audio_or_a_data_error(tmp_path, fields):
    path = sphere_file(tmp_path / "fuzz.wav", {**SPHERE_OK, **{k: f"{t} {v}" for k, (t, v) in fields.items()}})
    try:
        waveform, rate = read_audio(path)
    except DataError as error:
        assert "fuzz.wav" in str(error)
        return
    assert waveform.ndim == 1 and np.isfinite(waveform).all() and isinstance(rate, int) and rate >= 1


@FUZZ
@given(channels=st.integers(0, 65535), rate=st.integers(0, 2 ** 32 - 1), width=st.integers(0, 8))
def test_random_wav_header_values_give_audio_or_a_data_error(tmp_path, channels, rate, width):
    data = bytes(64)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * width) % 2 ** 32,
                      (channels * width) % 2 ** 16, width * 8)
    blob = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)
    (tmp_path / "h.wav").write_bytes(blob)
    try:
        waveform, got = read_audio(tmp_path / "h.wav")
    except DataError:
        return
    assert (width, got) == (2, rate) and 1 <= channels <= 256 and waveform.size == 32 // channels


music_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                                      st.binary(max_size=4)),
                            lambda inner: st.one_of(st.lists(inner, max_size=5), st.tuples(inner, inner),
                                                    st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                            max_leaves=30)


@FUZZ
@given(train=music_values, valid=music_values, extra=st.booleans())
def test_random_music_pickle_content_gives_piano_rolls_or_a_data_error(tmp_path, train, valid, extra):
    content = {"train": train, "valid": valid, "test": [[[60]]]}
    path = tmp_path / "fuzz.pickle"
    path.write_bytes(pickle.dumps(content if not extra else [content], protocol=2))
    try:
        data = load_music(path)
    except DataError as error:
        assert "fuzz.pickle" in str(error)
        return
    assert all(set(np.unique(s.numpy())) <= {0.0, 1.0} for s in data.train)


@FUZZ
@given(st.data())
def test_mutated_music_pickle_and_stroke3_npz_give_data_or_a_data_error(tmp_path, data):
    which = data.draw(st.sampled_from(["pickle", "npz"]))
    path = music_pickle(tmp_path / "m.pickle") if which == "pickle" else stroke3_npz(tmp_path / "s.npz")
    blob = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    path.write_bytes(bytes(blob))
    try:
        dataset = load_music(path) if which == "pickle" else load_handwriting(path)
    except DataError as error:
        assert path.name in str(error)
        return
    assert all(np.isfinite(s.numpy()).all() for s in dataset.train)


PICKLE_ATTACKS = {
    "os.system": b"cos\nsystem\n(S'true'\ntR.",
    "builtins.eval": b"c__builtin__\neval\n(S'1'\ntR.",
    "bytearray(10**9) via copyreg": (b"\x80\x02ccopy_reg\n_reconstructor\ncbuiltins\nbytearray\nh\x01"
                                     b"J\x00\xca\x9a;\x87R."),
    "numpy.ndarray((10**12,))": b"\x80\x02cnumpy\nndarray\n\x8a\x05\x00\x10\xa5\xd4\xe8\x85\x85R.",
    "_codecs.encode to zlib": b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R.",
    "a list that contains itself": b"\x80\x02]q\x00h\x00a.",
}


@pytest.mark.parametrize("attack", list(PICKLE_ATTACKS))
def test_a_hostile_music_pickle_is_a_data_error(tmp_path, attack):
    (tmp_path / "evil.pickle").write_bytes(PICKLE_ATTACKS[attack])
    with deadline(5, attack), pytest.raises(DataError, match="evil.pickle"):
        load_music(tmp_path / "evil.pickle")


# ---------------------------------------------------------------------------------------------- silent nonsense
BAD_OPTIONS = {
    # loader: [(option, value), ...]: each must be a DataError naming the option and the value
    "speech": [("frame_size", 2.5), ("frame_size", 0), ("frame_size", True), ("frame_size", "200"),
               ("chunk_frames", -1), ("chunk_frames", 1.5), ("test_chunking", "bogus"), ("valid_fraction", 1.5),
               ("valid_fraction", math.nan), ("test_fraction", -0.1), ("seed", -1), ("seed", 0.5),
               ("max_files", -1), ("max_files", 0), ("on_error", "bogus"), ("on_error", None), ("name", 5),
               ("max_bytes", -5), ("max_bytes", 1.5)],
    "stroke3": [("offset_limit", -5), ("offset_limit", 0), ("offset_limit", math.nan), ("offset_limit", math.inf),
                ("offset_limit", "100"), ("valid_fraction", 1.0), ("seed", "0"), ("on_error", "bogus"),
                ("max_expanded_bytes", 0), ("max_bytes", 0)],
    "iam": [("offset_limit", -5), ("valid_fraction", -1), ("test_fraction", math.inf), ("on_error", "bogus"),
            ("seed", -3), ("max_bytes", True)],
    "music": [("max_bytes", 0), ("max_expanded_bytes", -1), ("name", ["x"])],
    "speech-synthetic": [("num_train", 0), ("num_train", -1), ("num_valid", 0), ("num_test", 2.5),
                         ("seconds", (-1, -2)), ("seconds", (2.0, 1.0)), ("seconds", (0, 1)),
                         ("seconds", (1, math.inf)), ("seconds", 5), ("seconds", "1,2"), ("sample_rate", 0),
                         ("sample_rate", 16000.5), ("frame_size", 0), ("chunk_frames", 0), ("num_speakers", 0),
                         ("test_chunking", "bogus"), ("seed", -1), ("num_train", 10 ** 9)],
    "handwriting-synthetic": [("num_train", 0), ("num_writers", 0), ("min_steps", 0), ("max_steps", 10),
                              ("seed", -1), ("num_test", None)],
    "music-synthetic": [("num_train", 0), ("lengths", (0, 5)), ("lengths", (10, 5)), ("lengths", (1.5, 3)),
                        ("lengths", (1, 10 ** 9)), ("seed", math.nan)],
}


def _loader_call(loader, tmp_path):
    """A call for ``loader`` on a small valid input (so only the option can be wrong)."""
    if loader == "speech":
        folder = speech_folder(tmp_path / "speech")
        return lambda **kw: load_speech(folder, **kw)
    if loader == "stroke3":
        path = stroke3_npz(tmp_path / "s.npz")
        return lambda **kw: load_handwriting(path, **kw)
    if loader == "iam":
        folder = iam_folder(tmp_path)
        return lambda **kw: load_handwriting(folder, **kw)
    if loader == "music":
        path = music_pickle(tmp_path / "m.pickle")
        return lambda **kw: load_music(path, **kw)
    return lambda **kw: load_dataset(loader, **kw)


@pytest.mark.parametrize("loader,option,value", [(loader, o, v) for loader, cases in BAD_OPTIONS.items()
                                                 for o, v in cases])
def test_a_bad_loader_option_is_a_data_error_naming_option_value_and_what_is_allowed(tmp_path, loader, option,
                                                                                        value):
    with deadline(10, f"{loader} with {option}={value!r}"), pytest.raises(DataError) as info:
        _loader_call(loader, tmp_path)(**{option: value})
    message = str(info.value)
    shown = [repr(value)] + [repr(item) for item in (value if isinstance(value, tuple) else ())] + \
        [repr(float(item)) for item in (value if isinstance(value, tuple) else (value,))
         if isinstance(item, (int, float)) and not isinstance(item, bool)]
    assert option in message and any(text in message for text in shown), message
    assert " must be " in message and "\n" not in message


option_values = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12),
                          st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                          st.lists(st.integers(), max_size=3))


@FUZZ
@given(option=st.sampled_from(["frame_size", "chunk_frames", "test_chunking", "valid_fraction", "test_fraction",
                               "seed", "max_files", "on_error", "max_bytes"]), value=option_values)
def test_any_load_speech_option_value_is_taken_or_refused_by_name_before_reading_files(tmp_path, option, value):
    try:
        load_speech(tmp_path / "no-such-folder", **{option: value})
    except DataError as error:
        assert option in str(error) or "no such file or folder" in str(error), error


def test_an_all_zero_handwriting_split_is_refused_not_scaled_by_1e8(tmp_path):
    zeros = [np.array([[0, 0, 0], [0, 0, 1]], dtype=np.int16)] * 3
    path = stroke3_npz(tmp_path / "z.npz", {"train": zeros, "valid": zeros, "test": [stroke3(5)]})
    with pytest.raises(DataError, match="all equal.*std 0"):
        load_handwriting(path)


def test_a_silent_speech_training_split_is_refused_not_scaled_by_1e8(tmp_path):
    for i in range(6):
        wav_file(tmp_path / f"utt{i}.wav")
        (tmp_path / f"utt{i}.wav").write_bytes(
            (tmp_path / f"utt{i}.wav").read_bytes()[:44] + bytes(1600))
    with pytest.raises(DataError, match="all equal"):
        load_speech(tmp_path, frame_size=20, chunk_frames=4, valid_fraction=0.2, test_fraction=0.2)


@pytest.mark.parametrize("escape", ["../outside.pickle", "music/../../outside.pickle", "a/../../outside.pickle"])
def test_a_relative_path_under_the_data_root_cannot_leave_it(tmp_path, monkeypatch, escape):
    root = tmp_path / "root"
    (root / "music").mkdir(parents=True)
    music_pickle(tmp_path / "outside.pickle")
    monkeypatch.setenv(DATA_ENV_VAR, str(root))
    monkeypatch.chdir(root / "music")  # so the path does not exist relative to the current folder
    with pytest.raises(DataError, match="must stay inside"):
        resolve_data_path(escape.replace("outside", "elsewhere") if escape.startswith("a/") else escape, "music")


def test_a_path_inside_the_data_root_is_still_found(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "music" / "sub").mkdir(parents=True)
    music_pickle(root / "music" / "songs.pickle")
    monkeypatch.setenv(DATA_ENV_VAR, str(root))
    monkeypatch.chdir(tmp_path)
    assert resolve_data_path("sub/../songs.pickle", "music") == os.path.join(str(root), "music",
                                                                            "sub/../songs.pickle")
    assert load_dataset("music:songs.pickle").x_dim == 88


def test_stroke3_is_read_y_up_like_iam_and_the_synthetic_set(tmp_path):
    """A pen moving down the screen (stroke-3 dy > 0) moves down in the data (dy < 0), as in IAM."""
    down = np.array([[0, 0, 0], [0, 10, 0], [0, 10, 1]], dtype=np.int16)
    path = stroke3_npz(tmp_path / "d.npz", {"train": [down, stroke3(6)], "valid": [down], "test": [down]})
    dy = load_handwriting(path).valid[0][:, 1]
    assert dy[0] == 0 and (dy[1:] < 0).all()
    (tmp_path / "iam").mkdir()
    for i in range(5):  # IAM: whiteboard y grows downwards too
        (tmp_path / "iam" / f"a01-00{i}u-01.xml").write_text(iam_xml([(0, 100), (0, 110), (0, 120 + i)]))
    iam = load_handwriting(tmp_path / "iam", valid_fraction=0.2, test_fraction=0.2)
    assert all((seq[1:, 1] < 0).all() for seq in iam.train)
