import io
import pickle
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro_vrnn.data import DataError, load_handwriting
from pyro_vrnn.data.handwriting import read_iam_strokes, strokes_to_offsets

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def iam_xml(strokes):
    body = "".join("<Stroke colour=\"black\" start_time=\"0\" end_time=\"1\">" +
                   "".join(f'<Point x="{x}" y="{y}" time="0"/>' for x, y in s) + "</Stroke>" for s in strokes)
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession><WhiteboardDescription/>'
            f"<StrokeSet>{body}</StrokeSet></WhiteboardCaptureSession>")


def write_iam_folder(root, n=12, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        form = root / "lineStrokes" / "a01" / f"a01-{i:03d}"
        form.mkdir(parents=True)
        strokes = [np.cumsum(rng.integers(-30, 30, size=(rng.integers(3, 9), 2)), axis=0) + 1000 for _ in range(3)]
        (form / f"a01-{i:03d}u-01.xml").write_text(iam_xml(strokes))
    return root


def stroke3(rng, n):
    seq = np.zeros((n, 3), dtype=np.int16)
    seq[:, :2] = rng.integers(-40, 40, size=(n, 2))
    seq[rng.random(n) < 0.2, 2] = 1
    seq[-1, 2] = 1
    return seq


def object_array(seqs):
    out = np.empty(len(seqs), dtype=object)
    out[:] = seqs
    return out


def write_npz(path, **splits):
    np.savez(path, **{k: object_array(v) for k, v in splits.items()})
    return path


def small_npz(path, seed=0):
    rng = np.random.default_rng(seed)
    return write_npz(path, **{k: [stroke3(rng, int(rng.integers(2, 20))) for _ in range(n)]
                              for k, n in (("train", 30), ("valid", 5), ("test", 5))})


def test_iam_strokes_become_offsets_with_pen_lifted_on_last_point_and_y_up(tmp_path):
    path = tmp_path / "l.xml"
    path.write_text(iam_xml([[(10, 100), (13, 96), (15, 90)], [(30, 100), (31, 101)]]))
    rows = strokes_to_offsets(read_iam_strokes(path), flip_y=True)
    np.testing.assert_array_equal(rows, [[0, 0, 0], [3, 4, 0], [2, 6, 1], [15, -10, 0], [1, -1, 1]])


def test_iam_folder_loads_normalized_with_pen_bit_kept(tmp_path):
    data = load_handwriting(write_iam_folder(tmp_path), valid_fraction=0.2, test_fraction=0.2)
    assert data.kind == "handwriting" and data.x_dim == 3
    assert len(data.train) + len(data.valid) + len(data.test) == 12
    rows = torch.cat(data.train)
    assert set(rows[:, 2].tolist()) == {0.0, 1.0}
    assert abs(rows[:, :2].std(unbiased=False).item() - 1) < 0.05


def test_iam_task_lists_decide_the_splits(tmp_path):
    write_iam_folder(tmp_path)
    (tmp_path / "trainset.txt").write_text("\n".join(f"a01-{i:03d}u" for i in range(8)))
    (tmp_path / "testset_v.txt").write_text("a01-008u\na01-009u\n")
    (tmp_path / "testset_f.txt").write_text("a01-010u\na01-011u\n")
    data = load_handwriting(tmp_path)
    assert (len(data.train), len(data.valid), len(data.test)) == (8, 2, 2)
    assert "task lists" in data.describe()


def test_xml_file_without_strokes_raises_data_error_naming_file(tmp_path):
    (tmp_path / "empty-01.xml").write_text("<WhiteboardCaptureSession><StrokeSet/></WhiteboardCaptureSession>")
    with pytest.raises(DataError, match="empty-01.xml.*no <Stroke>"):
        read_iam_strokes(tmp_path / "empty-01.xml")


@pytest.mark.parametrize("text,match", [
    ("<StrokeSet><Stroke><Point x='1' y='2'/>", "malformed XML"),
    ("<StrokeSet><Stroke><Point x='a' y='2'/></Stroke></StrokeSet>", "stroke 0, point 0"),
    ("<StrokeSet><Stroke><Point x='1'/></Stroke></StrokeSet>", "without attribute 'y'"),
    ("<StrokeSet><Stroke><Point x='nan' y='2'/></Stroke></StrokeSet>", "NaN"),
    ("<StrokeSet><Stroke></Stroke></StrokeSet>", "Stroke without points"),
])
def test_bad_iam_xml_raises_data_error_with_location(tmp_path, text, match):
    (tmp_path / "bad.xml").write_text(text)
    with pytest.raises(DataError, match=match):
        read_iam_strokes(tmp_path / "bad.xml")


def test_bad_xml_in_folder_is_skipped_only_when_asked(tmp_path):
    write_iam_folder(tmp_path)
    (tmp_path / "lineStrokes" / "broken-01.xml").write_text("<oops")
    with pytest.raises(DataError, match="broken-01.xml"):
        load_handwriting(tmp_path, valid_fraction=0.2, test_fraction=0.2)
    with pytest.warns(UserWarning, match="broken-01.xml"):
        load_handwriting(tmp_path, valid_fraction=0.2, test_fraction=0.2, on_error="skip")


def test_stroke3_npz_loads_y_up_and_keeps_zero_offsets_zero(tmp_path):
    data = load_handwriting(small_npz(tmp_path / "s.npz"))
    assert (len(data.train), len(data.valid), len(data.test)) == (30, 5, 5)
    raw = np.load(tmp_path / "s.npz", allow_pickle=True)["train"][0]
    back = data.normalizer.denormalize(data.train[0])
    np.testing.assert_allclose(back.numpy(), raw * np.array([1, -1, 1]), atol=1e-4)  # screen dy down -> up
    assert not torch.signbit(back[raw[:, 1] == 0, 1]).any()  # a zero offset stays +0, not -0


def test_stroke3_outlier_offsets_are_clipped(tmp_path):
    rng = np.random.default_rng(0)
    train = [stroke3(rng, 10) for _ in range(10)]
    train[0][3, 0] = 5000
    data = load_handwriting(write_npz(tmp_path / "o.npz", train=train, valid=train[1:3], test=train[1:3]),
                            offset_limit=100)
    assert data.normalizer.denormalize(data.train[0])[3, 0].item() == pytest.approx(100, abs=1e-3)
    assert "1 values clipped" in data.describe()


@pytest.mark.parametrize("mutate,match", [
    (lambda s: s.__setitem__("train", s["train"][:1] + [np.zeros((0, 3))]), "train sequence 1: empty sequence"),
    (lambda s: s["test"][2].__setitem__((1, 0), np.nan), "test sequence 2: NaN"),
    (lambda s: s["valid"].__setitem__(0, np.zeros((4, 2))), "valid sequence 0: expected 3 values"),
    (lambda s: s["train"][0].__setitem__((0, 2), 2), "pen bit"),
    (lambda s: s.pop("test"), "missing key"),
])
def test_bad_stroke3_content_raises_data_error_naming_sequence(tmp_path, mutate, match):
    rng = np.random.default_rng(0)
    splits = {k: [stroke3(rng, 5).astype(np.float64) for _ in range(4)] for k in ("train", "valid", "test")}
    mutate(splits)
    with pytest.raises(DataError, match=match):
        load_handwriting(write_npz(tmp_path / "bad.npz", **splits))


def test_npz_with_a_code_running_pickle_raises_data_error_without_running_it(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    blob = io.BytesIO()
    np.lib.format.write_array(blob, object_array([Evil()]), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as z:
        z.writestr("train.npy", blob.getvalue())
        z.writestr("test.npy", blob.getvalue())
    with pytest.raises(DataError, match="not allowed"):
        load_handwriting(tmp_path / "evil.npz")


def test_missing_path_and_single_xml_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_handwriting(tmp_path / "nothing.npz")
    (tmp_path / "one.xml").write_text(iam_xml([[(0, 0)]]))
    with pytest.raises(DataError, match="folder"):
        load_handwriting(tmp_path / "one.xml")


@FUZZ
@given(data=st.binary(max_size=1024))
def test_random_bytes_as_npz_or_xml_raise_only_data_error(tmp_path, data):
    for name in ("f.npz", "f.xml"):
        (tmp_path / name).write_bytes(data)
    for call in (lambda: load_handwriting(tmp_path / "f.npz"), lambda: read_iam_strokes(tmp_path / "f.xml")):
        try:
            call()
        except DataError:
            pass


@FUZZ
@given(st.data())
def test_mutated_valid_npz_and_xml_raise_only_data_error(tmp_path, data):
    small_npz(tmp_path / "v.npz")
    originals = [(tmp_path / "v.npz").read_bytes(), iam_xml([[(1, 2), (3, 4)], [(5, 6)]]).encode()]
    which = data.draw(st.integers(0, 1))
    blob = bytearray(originals[which])
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    path = tmp_path / ("m.npz" if which == 0 else "m.xml")
    path.write_bytes(bytes(blob))
    try:
        load_handwriting(path) if which == 0 else read_iam_strokes(path)
    except DataError:
        pass
