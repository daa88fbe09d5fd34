"""MIDI in and out of the data layer: piano roll <-> .mid on a grid, and MIDI folders as music datasets."""

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro_vrnn.data import DataError, load_dataset, load_music, piano_roll_to_midi, read_midi_piano_roll
from pyro_vrnn.data.midi import read_midi_notes

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def midi_file(path, tracks, ticks_per_beat=96, type=1):
    """Write ``tracks`` (lists of ``(abs_tick, message)``) as a MIDI file; returns ``path``."""
    midi = mido.MidiFile(type=type, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track, tick = mido.MidiTrack(), 0
        for at, message in sorted(events, key=lambda e: e[0]):
            track.append(message.copy(time=at - tick))
            tick = at
        midi.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return path


def note(pitch, start, end, channel=0, off_as_velocity_zero=False):
    off = (mido.Message("note_on", note=pitch, velocity=0, channel=channel) if off_as_velocity_zero
           else mido.Message("note_off", note=pitch, channel=channel))
    return [(start, mido.Message("note_on", note=pitch, velocity=90, channel=channel)), (end, off)]


def song(path, pitches=(60, 64), steps=8):
    """A small one-track song on a 4-steps-a-beat grid: ``pitches`` alternating, one step each."""
    roll = np.zeros((steps, 88), dtype=np.float32)
    for t in range(steps):
        roll[t, pitches[t % len(pitches)] - 21] = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    piano_roll_to_midi(roll, path, steps_per_beat=4)
    return roll


def random_roll(seed, steps=40):
    rng = np.random.default_rng(seed)
    roll = (rng.random((steps, 88)) < 0.08).astype(np.float32)
    roll[0] = 0  # silence at both ends must survive too
    roll[-2:] = 0
    roll[5, [0, 87]] = 1  # the lowest and highest keys
    return roll


@pytest.mark.parametrize("steps_per_beat", [1, 4, 7])
def test_piano_roll_to_midi_and_back_is_the_identity_on_the_grid(tmp_path, steps_per_beat):
    roll = random_roll(steps_per_beat)
    path = piano_roll_to_midi(roll, tmp_path / "roll.mid", steps_per_beat=steps_per_beat, tempo_bpm=97.0)
    back = read_midi_piano_roll(path, steps_per_beat=steps_per_beat)
    assert back.shape == roll.shape and back.dtype == np.float32
    np.testing.assert_array_equal(back, roll)
    midi = mido.MidiFile(str(path))
    assert midi.type == 0 and len(midi.tracks) == 1


def test_roll_round_trip_on_a_frames_per_second_grid(tmp_path):
    roll = random_roll(3)
    path = piano_roll_to_midi(roll, tmp_path / "roll.mid", steps_per_beat=4, tempo_bpm=150)  # 4 * 150 / 60 = 10 steps/s
    np.testing.assert_array_equal(read_midi_piano_roll(path, frames_per_second=10), roll)
    # twice as many frames a second: every step read twice
    np.testing.assert_array_equal(read_midi_piano_roll(path, frames_per_second=20), np.repeat(roll, 2, axis=0))


@FUZZ
@given(data=st.data())
def test_any_binary_roll_survives_the_midi_round_trip(tmp_path, data):
    steps = data.draw(st.integers(1, 12))
    cells = data.draw(st.lists(st.booleans(), min_size=steps * 88, max_size=steps * 88))
    roll = np.array(cells, dtype=np.float32).reshape(steps, 88)
    roll[data.draw(st.integers(0, steps - 1)), data.draw(st.integers(0, 87))] = 1  # at least one note
    steps_per_beat = data.draw(st.integers(1, 24))
    path = piano_roll_to_midi(roll, tmp_path / "r.mid", steps_per_beat=steps_per_beat,
                              tempo_bpm=data.draw(st.floats(20, 300)), velocity=data.draw(st.integers(1, 127)))
    np.testing.assert_array_equal(read_midi_piano_roll(path, steps_per_beat=steps_per_beat), roll)


def test_a_note_sounds_at_a_step_when_it_sounds_at_the_steps_start(tmp_path):
    # 96 ticks a beat, 4 steps a beat: a step every 24 ticks; the file ends at tick 120 -> 5 steps
    path = midi_file(tmp_path / "grid.mid", [
        [(0, mido.MetaMessage("track_name", name="melody"))] + note(60, 0, 30) + note(62, 10, 24)  # 62: between starts
        + note(64, 48, 72, off_as_velocity_zero=True) + [(120, mido.MetaMessage("end_of_track"))],
        note(48, 24, 49, channel=3),  # a second track, another channel: merged
        note(36, 0, 96, channel=9),   # drums (channel 10): left out
    ])
    roll = read_midi_piano_roll(path, steps_per_beat=4)
    expected = np.zeros((5, 88), dtype=np.float32)
    expected[0:2, 60 - 21] = 1   # [0, 30) holds the starts 0 and 24
    expected[2:3, 64 - 21] = 1   # [48, 72) holds 48 only: velocity 0 ends it
    expected[1:3, 48 - 21] = 1   # [24, 49) holds 24 and 48
    np.testing.assert_array_equal(roll, expected)


def test_frames_per_second_converts_ticks_to_seconds_through_the_tempo_map(tmp_path):
    # 100 ticks a beat; 0.5 s a beat for the first beat, then 1 s a beat: tick 100 = 0.5 s, tick 150 = 1.0 s
    path = midi_file(tmp_path / "tempo.mid", [
        [(0, mido.MetaMessage("set_tempo", tempo=500000)), (100, mido.MetaMessage("set_tempo", tempo=1000000)),
         (200, mido.MetaMessage("end_of_track"))],  # tick 200 = 1.5 s
        note(70, 0, 50) + note(72, 100, 150),       # 0..0.25 s and 0.5..1.0 s
    ], ticks_per_beat=100)
    num_steps, notes = read_midi_notes(path, frames_per_second=4)  # a step every 0.25 s
    assert num_steps == 6 and notes == [(70, 0, 1), (72, 2, 4)]
    # in beats the tempo does not matter: 2 steps a beat, a step every 50 ticks
    assert read_midi_notes(path, steps_per_beat=2) == (4, [(70, 0, 1), (72, 2, 3)])


def test_a_note_still_sounding_at_the_end_lasts_to_the_end_of_the_file(tmp_path):
    path = midi_file(tmp_path / "open.mid", [[(0, mido.Message("note_on", note=60, velocity=80)),
                                              (96, mido.MetaMessage("end_of_track"))]])
    np.testing.assert_array_equal(read_midi_piano_roll(path, steps_per_beat=2)[:, 60 - 21], [1, 1])


@pytest.mark.parametrize("make,match", [
    (lambda p: midi_file(p, [note(36, 0, 96, channel=9)]), r"only drum notes \(channel 10"),
    (lambda p: midi_file(p, [[(0, mido.MetaMessage("track_name", name="silence"))]]), "no notes"),
    (lambda p: p.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x00`MTrk\x00\x00\x00\x20\x00\x90<"), "truncated"),
    (lambda p: p.write_bytes(b"RIFF this is not MIDI at all"), "not a readable MIDI file"),
    (lambda p: p.write_bytes(b""), "not a readable MIDI file"),
    (lambda p: midi_file(p, [note(60, 0, 96)], type=2), "type 2"),
    (lambda p: midi_file(p, [note(60, 3, 20)]), "shorter than a step"),
    (lambda p: midi_file(p, [note(60, 0, 96) + note(110, 0, 96)]), r"MIDI note 110 .* outside the piano range"),
])
def test_an_unusable_midi_file_is_a_data_error_naming_it(tmp_path, make, match):
    path = tmp_path / "bad song.mid"
    make(path)
    with pytest.raises(DataError, match=match) as info:
        read_midi_piano_roll(path, steps_per_beat=4)
    assert str(info.value).startswith(str(path))


def test_notes_outside_the_piano_are_dropped_with_out_of_range_drop(tmp_path):
    path = midi_file(tmp_path / "wide.mid", [note(60, 0, 96) + note(12, 0, 96) + note(120, 0, 48)])
    roll = read_midi_piano_roll(path, steps_per_beat=1, out_of_range="drop")
    np.testing.assert_array_equal(np.flatnonzero(roll.sum(0)), [60 - 21])
    with pytest.raises(DataError, match="every note is outside"):
        read_midi_piano_roll(midi_file(tmp_path / "low.mid", [note(10, 0, 96)]), out_of_range="drop")


def test_a_midi_folder_with_a_broken_file_is_an_error_naming_it_or_skipped_with_a_warning(tmp_path):
    folder = tmp_path / "songs"
    rolls = {f"s{i}.mid": song(folder / f"s{i}.mid", pitches=(60 + i, 67)) for i in range(6)}
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    with pytest.raises(DataError, match=r"broken\.mid: not a readable MIDI file"):
        load_music(folder, steps_per_beat=4)
    with pytest.warns(UserWarning, match=r"skipping: .*broken\.mid"):
        data = load_music(folder, steps_per_beat=4, on_error="skip", valid_fraction=0.15, test_fraction=0.15)
    names = data.info["sequence_names"]
    assert sorted(names["train"] + names["valid"] + names["test"]) == sorted(rolls)
    assert (len(data.train), len(data.valid), len(data.test)) == (4, 1, 1)
    for split in ("train", "valid", "test"):
        for name, seq in zip(names[split], data.split(split)):
            np.testing.assert_array_equal(seq.numpy(), rolls[name])
    assert data.kind == "music" and data.emission == "bernoulli" and data.normalizer.is_identity


def test_a_drum_only_file_in_a_folder_is_refused_or_skipped(tmp_path):
    for i in range(4):
        song(tmp_path / f"s{i}.mid")
    midi_file(tmp_path / "drums.mid", [note(36, 0, 96, channel=9) + note(38, 48, 96, channel=9)])
    with pytest.raises(DataError, match=r"drums\.mid: only drum notes"):
        load_music(tmp_path)
    with pytest.warns(UserWarning, match="drums.mid"):
        data = load_music(tmp_path, on_error="skip", valid_fraction=0.25, test_fraction=0.25)
    assert len(data.train) + len(data.valid) + len(data.test) == 4


def test_train_valid_test_sub_folders_are_the_splits(tmp_path):
    layout = {"train": ["a.mid", "deeper/b.MID", "c.midi"], "valid": ["v.mid"], "test": ["t1.mid", "t2.mid"]}
    for split, files in layout.items():
        for i, name in enumerate(files):
            song(tmp_path / split / name, pitches=(40 + i,), steps=3 + i)
    data = load_music(tmp_path, steps_per_beat=4, valid_fraction=0.5, test_fraction=0.4)  # fractions unused
    names = data.info["sequence_names"]
    assert names == {"train": ["train/a.mid", "train/c.midi", "train/deeper/b.MID"], "valid": ["valid/v.mid"],
                     "test": ["test/t1.mid", "test/t2.mid"]}
    assert [s.shape[0] for s in data.test] == [3, 4]
    assert "split folders" in data.describe()


def test_a_missing_valid_folder_is_held_out_of_train(tmp_path):
    for i in range(5):
        song(tmp_path / "train" / f"a{i}.mid")
    song(tmp_path / "test" / "t.mid")
    data = load_music(tmp_path, valid_fraction=0.2, seed=1)
    assert (len(data.train), len(data.valid), len(data.test)) == (4, 1, 1)
    assert data.info["sequence_names"]["test"] == ["test/t.mid"]
    assert set(data.info["sequence_names"]["valid"]) < {f"train/a{i}.mid" for i in range(5)}


def test_a_flat_folder_is_split_by_a_seeded_shuffle(tmp_path):
    for i in range(10):
        song(tmp_path / f"p{i}.mid", pitches=(50 + i,))
    first = load_music(tmp_path, valid_fraction=0.2, test_fraction=0.3, seed=4).info["sequence_names"]
    again = load_music(tmp_path, valid_fraction=0.2, test_fraction=0.3, seed=4).info["sequence_names"]
    other = load_music(tmp_path, valid_fraction=0.2, test_fraction=0.3, seed=5).info["sequence_names"]
    assert first == again and first != other
    assert [len(first[s]) for s in ("train", "valid", "test")] == [5, 2, 3]
    assert sorted(first["train"] + first["valid"] + first["test"]) == sorted(f"p{i}.mid" for i in range(10))


def test_one_midi_file_is_cut_in_time(tmp_path):
    roll = song(tmp_path / "one.mid", pitches=(60, 62, 64, 65, 67), steps=20)
    data = load_music(tmp_path / "one.mid", valid_fraction=0.1, test_fraction=0.2)
    np.testing.assert_array_equal(data.train[0].numpy(), roll[:14])
    np.testing.assert_array_equal(data.valid[0].numpy(), roll[14:16])
    np.testing.assert_array_equal(data.test[0].numpy(), roll[16:])


def test_load_dataset_reads_a_midi_folder_with_data_options(tmp_path):
    for i in range(4):
        song(tmp_path / "midi" / f"s{i}.mid", pitches=(60, 64 + i))
    data = load_dataset(f"music:{tmp_path / 'midi'}", steps_per_beat=2, valid_fraction=0.25, test_fraction=0.25)
    assert data.name == f"music:{tmp_path / 'midi'}" and data.x_dim == 88
    # the songs change note every sixteenth; on an eighth-note grid every other step is read
    assert all(seq.shape[0] == 4 for split in ("train", "valid", "test") for seq in data.split(split))
    assert "2 steps a beat" in data.describe()


def test_a_pickle_refuses_midi_options_and_an_empty_folder_says_what_music_data_is(tmp_path):
    import pickle

    path = tmp_path / "m.pickle"
    path.write_bytes(pickle.dumps({"train": [[[60]]], "valid": [[[60]]], "test": [[[60]]]}))
    with pytest.raises(DataError, match="steps_per_beat apply to MIDI files"):
        load_music(path, steps_per_beat=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no MIDI files \(.mid, .midi\) in this folder"):
        load_music(tmp_path / "empty")


@pytest.mark.parametrize("option,value", [("steps_per_beat", 0), ("steps_per_beat", 2.5), ("frames_per_second", -1.0),
                                          ("frames_per_second", float("nan")), ("out_of_range", "bogus"),
                                          ("on_error", "bogus"), ("valid_fraction", 1.5), ("seed", -1)])
def test_a_bad_midi_option_is_a_data_error_naming_it_before_any_file_is_read(tmp_path, option, value):
    (tmp_path / "x.mid").write_bytes(b"not read")
    for path in (tmp_path / "x.mid", tmp_path / "absent.mid", tmp_path):
        with pytest.raises(DataError, match=rf"{option} must be .*{value!r}"):
            load_music(path, **{option: value})


def test_both_grids_at_once_are_refused(tmp_path):
    with pytest.raises(DataError, match="steps_per_beat or frames_per_second, not both"):
        read_midi_piano_roll(tmp_path / "x.mid", steps_per_beat=4, frames_per_second=8)


@pytest.mark.parametrize("roll,match", [
    (np.zeros((4, 87)), r"\(T, 88\)"), (np.zeros((0, 88)), r"\(T, 88\)"), (np.full((2, 88), 0.7), "only 0 and 1"),
    (np.zeros(88), r"\(T, 88\)"),
])
def test_piano_roll_to_midi_refuses_what_is_not_a_binary_roll(tmp_path, roll, match):
    with pytest.raises(DataError, match=match):
        piano_roll_to_midi(roll, tmp_path / "r.mid")
    assert not list(tmp_path.iterdir())


def test_piano_roll_to_midi_replaces_a_file_whole_and_leaves_no_temporary_behind(tmp_path):
    first, second = random_roll(1), random_roll(2)
    path = piano_roll_to_midi(first, tmp_path / "out.mid")
    piano_roll_to_midi(second, path)
    np.testing.assert_array_equal(read_midi_piano_roll(path), second)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mid"]
    with pytest.raises(DataError, match="cannot write the MIDI file"):
        piano_roll_to_midi(first, tmp_path / "no-such-folder" / "x.mid")
    with pytest.raises(DataError, match="tempo_bpm must be"):
        piano_roll_to_midi(first, path, tempo_bpm=0)


@FUZZ
@given(data=st.data())
def test_mutated_midi_files_raise_only_data_error(tmp_path, data):
    path = tmp_path / "m.mid"
    piano_roll_to_midi(random_roll(0, steps=6), path)
    blob = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(blob[:data.draw(st.integers(0, len(blob)))]))
    try:
        read_midi_piano_roll(path, steps_per_beat=data.draw(st.integers(1, 8)), max_expanded_bytes=1 << 24)
    except DataError:
        pass


def test_a_relative_midi_folder_is_looked_up_under_the_data_folder(tmp_path, monkeypatch):
    from pyro_vrnn.data import DATA_ENV_VAR

    for i in range(3):
        song(tmp_path / "data" / "music" / "midi" / f"s{i}.mid")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "data"))
    data = load_music("midi", valid_fraction=0.3, test_fraction=0.3)
    assert data.info["source"] == str(tmp_path / "data" / "music" / "midi") and len(data.train) == 1
