import pickle

import pytest

from pyro_vrnn.data import DataError, load_dataset


def write_songs(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({s: [[[60], [62]]] for s in ("train", "valid", "test")}))


def test_kind_path_spec_loads_with_the_right_loader(tmp_path):
    write_songs(tmp_path / "songs.pickle")
    data = load_dataset(f"music:{tmp_path / 'songs.pickle'}")
    assert data.kind == "music" and data.name == f"music:{tmp_path / 'songs.pickle'}"


def test_relative_path_is_looked_up_under_data_env_var(tmp_path, monkeypatch):
    write_songs(tmp_path / "music" / "songs.pickle")
    monkeypatch.setenv("PYRO_VRNN_DATA", str(tmp_path))
    monkeypatch.chdir("/")
    assert load_dataset("music:songs.pickle").kind == "music"
    assert load_dataset("music:music/songs.pickle").kind == "music"


@pytest.mark.parametrize("spec", ["nonsense", "audio:/tmp/x", "music:", "", "speech-synth"])
def test_unknown_spec_raises_data_error_listing_choices(spec):
    with pytest.raises(DataError, match="handwriting-synthetic|non-empty"):
        load_dataset(spec)


def test_missing_relative_path_without_env_var_says_how_to_fix(monkeypatch):
    monkeypatch.delenv("PYRO_VRNN_DATA", raising=False)
    with pytest.raises(DataError, match="PYRO_VRNN_DATA"):
        load_dataset("music:no/such.pickle")


def test_unknown_option_for_an_offline_set_raises_data_error():
    with pytest.raises(DataError, match="bad options"):
        load_dataset("music-synthetic", frame_size=3)
