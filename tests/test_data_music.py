import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro_vrnn.data import DataError, load_music, piano_roll_to_notes

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SONGS = {"train": [[[60, 64, 67], [], [21, 108]], [[62]]], "valid": [[[50, 53]]], "test": [[[70], [71]]]}


def write_pickle(path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_music_pickle_becomes_binary_88_key_piano_rolls(tmp_path):
    data = load_music(write_pickle(tmp_path / "m.pickle", SONGS))
    assert data.kind == "music" and data.x_dim == 88 and data.normalizer.is_identity
    roll = data.train[0]
    assert roll.shape == (3, 88) and roll.dtype == torch.float32
    assert set(roll.unique().tolist()) <= {0.0, 1.0}
    assert piano_roll_to_notes(roll.numpy()) == [[60, 64, 67], [], [21, 108]]
    assert (len(data.train), len(data.valid), len(data.test)) == (2, 1, 1)


def test_numpy_note_numbers_and_arrays_are_accepted(tmp_path):
    songs = {"train": [[np.array([60, 64]), [np.int64(67)]]], "valid": [[[60.0]]], "test": [[(61,)]]}
    data = load_music(write_pickle(tmp_path / "np.pickle", songs))
    assert piano_roll_to_notes(data.train[0].numpy()) == [[60, 64], [67]]


@pytest.mark.parametrize("note", [20, 109, -1])
def test_midi_note_outside_piano_range_raises_data_error_naming_sequence_and_step(tmp_path, note):
    songs = {"train": [[[60]], [[60], [62, note]]], "valid": [[[60]]], "test": [[[60]]]}
    with pytest.raises(DataError, match=r"m.pickle: train sequence 1, step 1: MIDI note"):
        load_music(write_pickle(tmp_path / "m.pickle", songs))


@pytest.mark.parametrize("songs,match", [
    ({"train": [[]], "valid": [[[60]]], "test": [[[60]]]}, "train sequence 0: empty sequence"),
    ({"train": [[[60]]], "test": [[[60]]]}, "missing split"),
    ({"train": [[[60]]], "valid": [], "test": [[[60]]]}, "holds no sequences"),
    ({"train": [[["C4"]]], "valid": [[[60]]], "test": [[[60]]]}, "MIDI number"),
    ({"train": [[[60.5]]], "valid": [[[60]]], "test": [[[60]]]}, "whole MIDI number"),
    ({"train": [[[float("nan")]]], "valid": [[[60]]], "test": [[[60]]]}, "whole MIDI number"),
    ([1, 2, 3], "expected a dict"),
])
def test_malformed_music_content_raises_data_error(tmp_path, songs, match):
    with pytest.raises(DataError, match=match):
        load_music(write_pickle(tmp_path / "bad.pickle", songs))


def test_pickle_that_would_run_code_raises_data_error_without_running_it(tmp_path):
    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))
    with pytest.raises(DataError, match="not allowed"):
        load_music(write_pickle(tmp_path / "evil.pickle", {"train": Evil()}))
    assert not (tmp_path / "pwned").exists()


def test_truncated_missing_and_empty_pickles_raise_data_error(tmp_path):
    path = write_pickle(tmp_path / "t.pickle", SONGS)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="t.pickle"):
        load_music(path)
    with pytest.raises(DataError, match="absent.pickle: no such file"):
        load_music(tmp_path / "absent.pickle")
    (tmp_path / "e.pickle").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_music(tmp_path / "e.pickle")


@FUZZ
@given(data=st.binary(max_size=512))
def test_random_bytes_as_music_pickle_raise_only_data_error(tmp_path, data):
    (tmp_path / "f.pickle").write_bytes(data)
    try:
        load_music(tmp_path / "f.pickle")
    except DataError:
        pass


@FUZZ
@given(st.data())
def test_mutated_music_pickles_raise_only_data_error(tmp_path, data):
    blob = bytearray(pickle.dumps(SONGS, protocol=data.draw(st.integers(0, 5))))
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    (tmp_path / "m.pickle").write_bytes(bytes(blob))
    try:
        load_music(tmp_path / "m.pickle")
    except DataError:
        pass
