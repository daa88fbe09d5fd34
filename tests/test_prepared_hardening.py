"""Bad input to the data layer, round two (issue 22): a prepared corpus does not trust its
``index.json``, every loader looks a relative path up as ``load_dataset`` does, ``pad_batch`` refuses
tensors it cannot stack, and the data modules import one another one way only.

Each case asserts the error type (:class:`DataError`), that the message names the culprit (the
field of ``index.json`` and the file, the loader's path, the index of the sequence) and, where a
file is involved, that no file changed. Hangs run under ``_fuzz.deadline``.
"""

import ast
import hashlib
import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

import pyro_vrnn.data
from _fuzz import deadline
from pyro_vrnn.data import (DATA_ENV_VAR, DataError, load_dataset, load_handwriting, load_music, load_speech,
                            load_stroke3, pad_batch, resolved_spec)
from pyro_vrnn.data.preparation import prepare
from pyro_vrnn.data.prepared import open_prepared

SMALL_MUSIC = {"num_train": 7, "num_valid": 2, "num_test": 3, "lengths": (4, 9)}
SONGS = {"train": [[[60, 64], [62]], [[65]]], "valid": [[[60]]], "test": [[[61], [62]]]}
DATA_PACKAGE = Path(pyro_vrnn.data.__file__).parent


# ------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One small prepared corpus, written once; each test works on copies."""
    folder = tmp_path_factory.mktemp("template") / "corpus"
    prepare("music-synthetic", folder, **SMALL_MUSIC)
    return folder


def copy_corpus(template, where):
    shutil.copytree(template, where)
    return where


def snapshot(*folders):
    """Every entry under ``folders``: its type, size, modification time and (regular files) content hash.
    Read without following links or opening anything but regular files."""
    seen = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                path = os.path.join(root, name)
                info = os.lstat(path)
                digest = None
                if stat.S_ISREG(info.st_mode):
                    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                seen[path] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns, digest)
    return seen


def edit_index(folder, change):
    index = json.loads((folder / "index.json").read_text())
    change(index)
    (folder / "index.json").write_text(json.dumps(index))


def refused(call, folders, *culprits, forbidden=(), seconds=5):
    """``call()`` raises a one-line DataError naming every culprit, quoting none of ``forbidden``,
    within ``seconds``, and leaves every file under ``folders`` as it was."""
    before = snapshot(*folders)
    with deadline(seconds, "the call"), pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    for culprit in culprits:
        assert str(culprit) in message, (culprit, message)
    for text in forbidden:
        assert text not in message, (text, message)
    assert "\n" not in message
    assert snapshot(*folders) == before
    return message


# --------------------------------------------------------------------------- 1. imports point one way
def _data_imports(module_path):
    """``(imported data module, inside a function?)`` for every relative import of a data module."""
    tree = ast.parse(module_path.read_text())
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
            found += [(name, id(node) in in_function) for name in names if (DATA_PACKAGE / f"{name}.py").exists()]
    return found




def test_the_data_modules_import_one_another_one_way_only():
    graph = {path.stem: _data_imports(path) for path in DATA_PACKAGE.glob("*.py") if path.stem != "__init__"}
    hidden = sorted((module, target) for module, imports in graph.items() for target, inside in imports
                    if inside)
    assert hidden == [], f"data modules imported inside functions (a hidden cycle?): {hidden}"
    edges = {module: {target for target, inside in imports if not inside} for module, imports in graph.items()}
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for target in edges.get(module, ()):
            assert state.get(target) != "open", f"import cycle: {' -> '.join(trail + [module, target])}"
            if target not in state:
                visit(target, trail + [module])
        state[module] = "done"

    for module in edges:
        if module not in state:
            visit(module, [])
    assert "registry" in edges["preparation"] and "registry" not in edges["prepared"]


# --------------------------------------------------------------- 2. files named by index.json stay inside
def _sibling(template, tmp_path):
    return copy_corpus(template, tmp_path / "sibling")


PATH_ESCAPES = {
    "'..' into a sibling corpus": lambda c, s: "../sibling/train.values.npy",
    "absolute path to a sibling's values": lambda c, s: str(s / "train.values.npy"),
    "absolute path to a private file": lambda c, s: str(c.parent / "private.txt"),
    "a symbolic link out of the folder": lambda c, s: (c / "link.npy").symlink_to(s / "train.values.npy") or "link.npy",
    "a linked folder out of the folder": lambda c, s: (c / "sub").symlink_to(s) or "sub/train.values.npy",
    "'..' after a subfolder": lambda c, s: "./x/../../sibling/train.values.npy",
}


@pytest.mark.parametrize("case", list(PATH_ESCAPES))
def test_a_file_named_by_the_index_must_lie_inside_the_corpus_folder(template, tmp_path, case):
    corpus, sibling = copy_corpus(template, tmp_path / "corpus"), _sibling(template, tmp_path)
    (tmp_path / "private.txt").write_text("SECRET-BYTES " * 20)
    name = PATH_ESCAPES[case](corpus, sibling)
    edit_index(corpus, lambda index: index["splits"]["train"].update(values=name))
    refused(lambda: open_prepared(corpus), [tmp_path], corpus / "index.json", "splits.train.values",
            name if len(name) < 60 else "", "outside the corpus folder", forbidden=["SECRET", "NUMPY"])


def test_the_offsets_and_another_split_are_held_to_the_folder_too(template, tmp_path):
    corpus, sibling = copy_corpus(template, tmp_path / "corpus"), _sibling(template, tmp_path)
    edit_index(corpus, lambda index: index["splits"]["test"].update(offsets=str(sibling / "test.offsets.npy")))
    refused(lambda: load_dataset(f"prepared:{corpus}"), [tmp_path], "splits.test.offsets", "outside")


def test_two_splits_cannot_share_a_file(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    edit_index(corpus, lambda index: index["splits"]["test"].update(index["splits"]["train"]))
    refused(lambda: open_prepared(corpus), [corpus], corpus / "index.json", "splits.test.values", "same file")


# ------------------------------------------------------------------- 3. guarded opener: no hang, sizes
@pytest.mark.parametrize("victim, field", [("test.values.npy", "splits.test.values"),
                                           ("valid.offsets.npy", "splits.valid.offsets"),
                                           ("index.json", "index.json")])
def test_a_fifo_in_a_corpus_is_refused_at_once(template, tmp_path, victim, field):
    corpus = copy_corpus(template, tmp_path / "corpus")
    (corpus / victim).unlink()
    os.mkfifo(corpus / victim)
    refused(lambda: open_prepared(corpus), [corpus], corpus / victim, field, "FIFO", seconds=5)


def test_a_corpus_file_over_max_bytes_names_the_option(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    refused(lambda: load_dataset(f"prepared:{corpus}", max_bytes=100), [corpus], "train.values.npy", "max_bytes")


# ------------------------------------------------------------------------- 4. every index field checked
INDEX_CASES = {
    "x_dim a word": (lambda i: i.update(x_dim="eighty-eight"), "x_dim", "'eighty-eight'"),
    "x_dim fractional": (lambda i: i.update(x_dim=88.0), "x_dim", "88.0"),
    "x_dim zero": (lambda i: i.update(x_dim=0), "x_dim", ">= 1"),
    "x_dim true": (lambda i: i.update(x_dim=True), "x_dim", "True"),
    "x_dim missing": (lambda i: i.pop("x_dim"), "x_dim", "missing"),
    "x_dim disagrees with the values": (lambda i: i.update(x_dim=87) or i["normalizer"].update(
        shift=[0] * 87, scale=[1] * 87), "splits.train.values", "x_dim = 87"),
    "normalizer of the wrong size": (lambda i: i["normalizer"].update(shift=[0.0] * 3), "normalizer.shift", "x_dim"),
    "normalizer scale zero": (lambda i: i["normalizer"]["scale"].__setitem__(5, 0), "normalizer.scale", "entry 5"),
    "normalizer scale a string": (lambda i: i["normalizer"]["scale"].__setitem__(0, "1"), "normalizer.scale", "'1'"),
    "normalizer beyond float64": (lambda i: i["normalizer"]["shift"].__setitem__(2, 10**400), "normalizer.shift",
                                  "entry 2"),
    "normalizer a list": (lambda i: i.update(normalizer=[1, 2]), "normalizer", "JSON object"),
    "kind unknown": (lambda i: i.update(kind="poetry"), "kind", "'poetry'"),
    "synthetic a string": (lambda i: i.update(synthetic="yes"), "synthetic", "'yes'"),
    "dtype float64": (lambda i: i.update(dtype="<f8"), "dtype", "'<f8'"),
    "source a list": (lambda i: i.update(source=["music"]), "source", "JSON object"),
    "info a string": (lambda i: i.update(info="notes"), "info", "JSON object"),
    "splits a list": (lambda i: i.update(splits=[]), "splits", "JSON object"),
    "a split missing": (lambda i: i["splits"].pop("valid"), "splits.valid", "missing"),
    "num_sequences a string": (lambda i: i["splits"]["train"].update(num_sequences="7"), "splits.train.num_sequences",
                               "'7'"),
    "num_sequences fractional": (lambda i: i["splits"]["train"].update(num_sequences=6.5),
                                 "splits.train.num_sequences", "6.5"),
    "num_sequences disagrees with the offsets": (lambda i: i["splits"]["train"].update(num_sequences=6),
                                                 "splits.train.offsets", "expected 7 offsets"),
    "num_steps disagrees with the values": (lambda i: i["splits"]["test"].update(num_steps=1000),
                                            "splits.test.values", "num_steps"),
    "values not a string": (lambda i: i["splits"]["train"].update(values=3), "splits.train.values", "got 3"),
}


@pytest.mark.parametrize("case", list(INDEX_CASES))
def test_every_index_field_is_checked_for_type_range_and_agreement(template, tmp_path, case):
    change, field, shown = INDEX_CASES[case]
    corpus = copy_corpus(template, tmp_path / "corpus")
    edit_index(corpus, change)
    message = refused(lambda: open_prepared(corpus), [corpus], field, shown)
    assert str(corpus) in message


def test_a_deeply_nested_index_is_a_data_error_not_a_recursion_error(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    text = (corpus / "index.json").read_text()
    (corpus / "index.json").write_text(text.replace('"info": {', '"deep": ' + "[" * 100_000 + "]" * 100_000
                                                    + ', "info": {', 1))
    refused(lambda: open_prepared(corpus), [corpus], corpus / "index.json", "nested deeper")


def test_nan_in_the_index_is_refused_naming_the_index(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    edit_index(corpus, lambda i: i["normalizer"]["shift"].__setitem__(0, float("nan")))
    refused(lambda: open_prepared(corpus), [corpus], corpus / "index.json", "NaN")


# ---------------------------------------------------------------------- 5. offsets and values checked
def _resave_offsets(corpus, split, change):
    offsets = np.load(corpus / f"{split}.offsets.npy")
    np.save(corpus / f"{split}.offsets.npy", change(offsets))


OFFSET_CASES = {
    "fractional offsets": (lambda o: o.astype(np.float64) + np.r_[0, 0.5, np.zeros(len(o) - 2)], "whole numbers"),
    "whole offsets stored as floats": (lambda o: o.astype(np.float64), "whole numbers"),
    "offsets as text": (lambda o: o.astype(str), "whole numbers"),
    "offsets not starting at 0": (lambda o: o + np.r_[1, np.zeros(len(o) - 1, dtype=np.int64)], "from 0"),
    "offsets past the values": (lambda o: o + np.r_[np.zeros(len(o) - 1, dtype=np.int64), 5], "within 0.."),
    "offsets falling": (lambda o: o[[0, 2, 1, *range(3, len(o))]], "rise"),
    "offsets beyond int64": (lambda o: o.astype(np.uint64) + np.r_[np.zeros(len(o) - 1, dtype=np.uint64),
                                                                   np.uint64(2**63)], "within 0.."),
}


@pytest.mark.parametrize("case", list(OFFSET_CASES))
def test_offsets_are_whole_increasing_from_zero_and_within_the_values(template, tmp_path, case):
    change, shown = OFFSET_CASES[case]
    corpus = copy_corpus(template, tmp_path / "corpus")
    _resave_offsets(corpus, "train", change)
    refused(lambda: open_prepared(corpus), [corpus], corpus / "train.offsets.npy", "splits.train.offsets", shown)


def test_a_values_file_longer_than_its_header_is_refused(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    with open(corpus / "valid.values.npy", "ab") as f:
        f.write(bytes(88 * 4))
    refused(lambda: open_prepared(corpus), [corpus], corpus / "valid.values.npy", "splits.valid.values", "too long")


def test_a_non_npy_values_file_is_refused_without_quoting_its_bytes(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    (corpus / "test.values.npy").write_bytes(b"SECRET-BYTES" * 10)
    refused(lambda: open_prepared(corpus), [corpus], corpus / "test.values.npy", "splits.test.values",
            "not a .npy file", forbidden=["SECRET"])


def test_a_nan_in_the_values_is_a_data_error_naming_the_sequence_when_read(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    offsets = np.load(corpus / "train.offsets.npy")
    values = np.load(corpus / "train.values.npy")
    values[offsets[2] + 1, 5] = np.nan
    np.save(corpus / "train.values.npy", values)
    train = open_prepared(corpus, workers=0).train
    assert torch.equal(train[1], torch.from_numpy(values[offsets[1]:offsets[2]]))
    refused(lambda: train[2], [corpus], corpus / "train.values.npy", "train sequence 2, step 1")


def test_a_sound_corpus_still_opens_and_reads_what_was_written(template, tmp_path):
    corpus = copy_corpus(template, tmp_path / "corpus")
    original = load_dataset("music-synthetic", **SMALL_MUSIC)
    prepared = open_prepared(corpus, workers=0, max_bytes=100_000)
    for split in ("train", "valid", "test"):
        assert [torch.equal(a, b) for a, b in zip(prepared.split(split), original.split(split))] == \
            [True] * len(original.split(split))
    assert prepared.info["prepared_from"] == "music-synthetic" and prepared.x_dim == 88


# ------------------------------------------------------------ 6. every loader looks paths up the same way
def _stroke3(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    strokes = [np.c_[rng.integers(-5, 5, (n, 2)), (np.arange(n) % 4 == 3)].astype(np.int16) for n in (6, 8, 7, 9)]
    arrays = {}
    for key, seqs in (("train", strokes[:2]), ("valid", strokes[2:3]), ("test", strokes[3:])):
        arrays[key] = np.empty(len(seqs), dtype=object)
        arrays[key][:] = seqs
    with open(path, "wb") as f:  # np.savez(path) would add ".npz" to the name
        np.savez(f, **arrays)


def _speech(folder):
    import wave

    for i, n in enumerate((1600, 1800, 1700, 2000, 1500, 1900)):
        folder.mkdir(parents=True, exist_ok=True)
        samples = np.random.default_rng(i).integers(-3000, 3000, size=n).astype("<i2")
        with wave.open(str(folder / f"utt{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(samples.tobytes())


SPEECH = {"frame_size": 20, "chunk_frames": 4, "valid_fraction": 0.2, "test_fraction": 0.2}
LOADERS = {  # name -> (kind, what to write under $PYRO_VRNN_DATA/KIND/, how to load it)
    "load_music": ("music", lambda p: p.write_bytes(pickle.dumps(SONGS)), lambda p: load_music(p)),
    "load_handwriting": ("handwriting", _stroke3, lambda p: load_handwriting(p)),
    "load_stroke3": ("handwriting", _stroke3, lambda p: load_stroke3(p)),
    "load_speech": ("speech", _speech, lambda p: load_speech(p, **SPEECH)),
    "open_prepared": ("prepared", lambda p: prepare("music-synthetic", p, **SMALL_MUSIC),
                      lambda p: open_prepared(p, workers=0)),
}


@pytest.mark.parametrize("loader", list(LOADERS))
def test_every_loader_looks_a_relative_path_up_under_the_data_folder(tmp_path, monkeypatch, loader):
    kind, write, load = LOADERS[loader]
    root = tmp_path / "data"
    (root / kind).mkdir(parents=True)
    write(root / kind / "item")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    refused(lambda: load("item"), [root], "item", DATA_ENV_VAR)
    monkeypatch.setenv(DATA_ENV_VAR, str(root))
    before = snapshot(root)
    found, direct = load("item"), load(root / kind / "item")
    assert [len(found.split(s)) for s in ("train", "valid", "test")] == \
        [len(direct.split(s)) for s in ("train", "valid", "test")]
    assert all(torch.equal(a, b) for a, b in zip(found.train, direct.train)) and found.x_dim == direct.x_dim
    assert snapshot(root) == before


@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_loader_given_a_relative_path_cannot_leave_the_data_folder(tmp_path, monkeypatch, loader):
    kind, write, load = LOADERS[loader]
    (tmp_path / "data" / kind / "deep").mkdir(parents=True)
    write(tmp_path / "outside")
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path / "data" / kind / "deep")
    refused(lambda: load("../../../../outside"), [tmp_path], "../../../../outside", "must stay inside")


def test_resolved_spec_gives_the_absolute_location_a_run_can_record(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "music").mkdir(parents=True)
    (root / "music" / "songs.pickle").write_bytes(pickle.dumps(SONGS))
    (tmp_path / "here.pickle").write_bytes(pickle.dumps(SONGS))
    monkeypatch.setenv(DATA_ENV_VAR, str(root))
    monkeypatch.chdir(tmp_path)
    recorded = resolved_spec("music:songs.pickle")
    assert recorded == f"music:{root / 'music' / 'songs.pickle'}"
    assert resolved_spec("music:here.pickle") == f"music:{tmp_path / 'here.pickle'}"
    assert resolved_spec("music-synthetic") == "music-synthetic"
    monkeypatch.delenv(DATA_ENV_VAR)
    monkeypatch.chdir("/")  # another shell: the recorded location still loads, the spec as typed does not
    assert load_dataset(recorded).x_dim == 88
    refused(lambda: load_dataset("music:songs.pickle"), [tmp_path], "songs.pickle", DATA_ENV_VAR)
    for spec, culprit in (("music:missing.pickle", "missing.pickle"), ("poetry:x", "'poetry:x'"), ("", "''")):
        refused(lambda: resolved_spec(spec), [tmp_path], culprit)


# ---------------------------------------------------------------------------- 7. pad_batch: unstackable
UNSTACKABLE = {
    "a CPU tensor, then a meta tensor": ([torch.zeros(3, 2), torch.zeros(2, 2, device="meta")], 1, "meta"),
    "a meta tensor, then a CPU tensor": ([torch.zeros(3, 2, device="meta"), torch.zeros(2, 2)], 0, "meta"),
    "a sparse tensor": ([torch.zeros(3, 2), torch.eye(2).to_sparse()], 1, "sparse"),
}


@pytest.mark.parametrize("case", list(UNSTACKABLE))
def test_pad_batch_names_the_sequence_it_cannot_stack(case):
    seqs, culprit, problem = UNSTACKABLE[case]
    with pytest.raises(DataError) as info:
        pad_batch(seqs)
    assert f"sequence {culprit} of seqs" in str(info.value) and problem in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_pad_batch_refuses_sequences_on_two_devices():
    with pytest.raises(DataError, match=r"sequence 1 of seqs is on cuda:0, sequence 0 on cpu"):
        pad_batch([torch.zeros(3, 2), torch.zeros(2, 2, device="cuda")])
