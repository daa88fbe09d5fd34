"""Bad input against the Python API of :mod:`pyro_vrnn.data` (``pad_batch``, ``iterate_batches``,
``Normalizer``, ``write_wav``, ``waveform_to_frames``) and against the models' tensor entry points.

Every call either does what it promises or raises :class:`DataError` (``ValueError`` for the
models) saying what was expected; never ``IndexError``/``AttributeError`` from deep inside, never
a silent result. A new bad input is one more entry in the lists below.

:data:`CORE_TENSOR_CASES` holds the tensor checks that belong to the models (always on, whatever
Pyro's validation setting).
"""

import math
import os
import threading
import wave

import numpy as np
import pyro
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from _fuzz import FUZZ
from pyro_vrnn import VRNN, importance_log_likelihood
from pyro_vrnn.data import DataError, Normalizer, iterate_batches, pad_batch, waveform_to_frames, write_wav
from pyro_vrnn.train.trainer import Trainer

# ---------------------------------------------------------------------------------------------- pad_batch
BAD_BATCHES = {
    "0-d tensor": torch.tensor(3.0),
    "1-d tensor": torch.zeros(4),
    "2-d tensor (one sequence, not a list)": torch.zeros(4, 3),
    "4-d array": np.zeros((1, 2, 3, 4)),
    "nested lists": [[[1.0, 2.0]], [[3.0, 4.0]]],
    "list of floats": [1.0, 2.0],
    "a string": "abc",
    "a dict": {"x": torch.zeros(2, 3)},
    "None": None,
    "a generator": (torch.zeros(2, 3) for _ in range(2)),
    "a 1-d sequence": [torch.zeros(2, 3), torch.zeros(3)],
    "a 3-d sequence": [torch.zeros(1, 2, 3)],
    "a 0-step sequence": [torch.zeros(2, 3), torch.zeros(0, 3)],
    "mixed widths": [torch.zeros(2, 3), torch.zeros(2, 4)],
    "complex": [torch.zeros(2, 3, dtype=torch.complex64)],
    "object array": [np.array([[None, 1]], dtype=object)],
    "string array": [np.array([["a", "b"]])],
    "empty list": [],
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_pad_batch_says_what_it_takes(case):
    with pytest.raises(DataError, match="pad_batch") as info:
        pad_batch(BAD_BATCHES[case])
    assert "\n" not in str(info.value)


def test_pad_batch_takes_numpy_arrays_like_tensors():
    seqs = [np.arange(6.0).reshape(2, 3), np.ones((1, 3), dtype=np.int16)]
    x, mask = pad_batch(seqs)
    x_t, mask_t = pad_batch([torch.as_tensor(s) for s in seqs])
    assert torch.equal(x, x_t) and torch.equal(mask, mask_t) and x.dtype == torch.float32
    x3, mask3 = pad_batch(np.zeros((2, 4, 3)))  # a (B, T, D) array: its rows are the sequences
    assert x3.shape == (2, 4, 3) and bool(mask3.all())


arrays = st.builds(
    lambda ndim, t, d, dtype, as_tensor: (torch.zeros if as_tensor else np.zeros)(
        ((t, d, 2)[:ndim] if ndim else ()), dtype=getattr(torch if as_tensor else np, dtype)),
    ndim=st.integers(0, 3), t=st.integers(0, 4), d=st.integers(1, 3),
    dtype=st.sampled_from(["float32", "float64", "int64", "bool", "complex64"]), as_tensor=st.booleans())


@FUZZ
@given(seqs=st.lists(arrays, max_size=4))
def test_pad_batch_of_anything_pads_or_refuses(seqs):
    valid = bool(seqs) and all(s.ndim == 2 and s.shape[0] >= 1 and "complex" not in str(s.dtype) for s in seqs) \
        and len({s.shape[1] for s in seqs}) == 1
    if not valid:
        with pytest.raises(DataError, match="pad_batch"):
            pad_batch(seqs)
        return
    x, mask = pad_batch(seqs)
    lengths = [s.shape[0] for s in seqs]
    assert x.shape == (len(seqs), max(lengths), seqs[0].shape[1]) and mask.sum(1).tolist() == lengths


BAD_ITERATIONS = {
    "batch_size 0": ([torch.zeros(2, 3)], 0),
    "batch_size -1": ([torch.zeros(2, 3)], -1),
    "batch_size 2.5": ([torch.zeros(2, 3)], 2.5),
    "batch_size True": ([torch.zeros(2, 3)], True),
    "batch_size '3'": ([torch.zeros(2, 3)], "3"),
    "no sequences": ([], 2),
    "a tensor, not a list": (torch.zeros(4, 2, 3), 2),
    "a bad sequence": ([torch.zeros(2, 3), torch.zeros(0, 3)], 2),
}


@pytest.mark.parametrize("case", list(BAD_ITERATIONS))
def test_iterate_batches_refuses_bad_arguments_when_called_not_at_the_first_batch(case):
    seqs, batch_size = BAD_ITERATIONS[case]
    with pytest.raises(DataError):
        iterate_batches(seqs, batch_size)  # no next(): the check must not wait for the first batch


# ---------------------------------------------------------------------------------------------- Normalizer
def test_a_constant_training_split_is_refused_by_every_fit():
    for fit in (lambda s: Normalizer.fit_global(s), lambda s: Normalizer.fit_offset_scale(s)):
        for value in (0.0, 5.0, 1e-12):
            with pytest.raises(DataError, match="all equal"):
                fit([torch.full((4, 3), value), torch.full((2, 3), value)])
        with pytest.raises(DataError, match="NaN or Inf"):
            fit([torch.tensor([[1.0, math.nan, 0.0], [2.0, 3.0, 1.0]])])
    tiny_but_varied = [torch.tensor([[1e-6, -1e-6, 0.0], [2e-6, 0.0, 1.0]])]
    assert Normalizer.fit_offset_scale(tiny_but_varied).scale[0] < 1e-5  # small data are fine, only constant ones not


BAD_NORMALIZER_INPUTS = {"a string": "x", "a list": [[1.0, 2.0]], "a 0-d tensor": torch.tensor(1.0),
                         "wrong width": torch.zeros(2, 4), "an object array": np.array([[None, None]], dtype=object)}


@pytest.mark.parametrize("case", list(BAD_NORMALIZER_INPUTS))
def test_normalizer_says_what_it_takes(case):
    norm = Normalizer(torch.zeros(2), torch.ones(2))
    for method in (norm.normalize, norm.denormalize):
        with pytest.raises(DataError, match="normalizer"):
            method(BAD_NORMALIZER_INPUTS[case])


def test_normalizer_takes_numpy_arrays():
    norm = Normalizer(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]))
    assert torch.equal(norm.normalize(np.array([[3.0, 6.0]])), torch.tensor([[1.0, 1.0]], dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- audio
@pytest.mark.parametrize("values", [[0.1, math.nan, 0.2], [math.inf], np.array([[0.0, -math.inf]]),
                                    torch.tensor([[[math.nan]]])])
def test_write_wav_refuses_nan_or_inf_instead_of_writing_silence(tmp_path, values):
    with pytest.raises(DataError, match="NaN or Inf"):
        write_wav(tmp_path / "x.wav", values)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


BAD_WAV_ARGUMENTS = {
    "sample_rate 0": ({"sample_rate": 0}, "sample_rate"),
    "sample_rate -8000": ({"sample_rate": -8000}, "sample_rate"),
    "sample_rate 22050.5": ({"sample_rate": 22050.5}, "sample_rate"),
    "sample_rate nan": ({"sample_rate": math.nan}, "sample_rate"),
    "sample_rate 10**9": ({"sample_rate": 10 ** 9}, "sample_rate"),
    "sample_rate '16000'": ({"sample_rate": "16000"}, "sample_rate"),
    "a batch of two sequences": ({"frames_or_waveform": np.zeros((2, 3, 4))}, "one sequence"),
    "a 0-d value": ({"frames_or_waveform": 0.5}, "one sequence"),
    "strings": ({"frames_or_waveform": ["a", "b"]}, "real numbers"),
    "complex": ({"frames_or_waveform": torch.zeros(4, dtype=torch.complex64)}, "real numbers"),
    "ragged lists": ({"frames_or_waveform": [[1.0], [1.0, 2.0]]}, "cannot write"),
}


@pytest.mark.parametrize("case", list(BAD_WAV_ARGUMENTS))
def test_write_wav_refuses_bad_arguments_naming_them(tmp_path, case):
    kwargs, expected = BAD_WAV_ARGUMENTS[case]
    kwargs = {"frames_or_waveform": np.zeros(8), **kwargs}
    with pytest.raises(DataError, match=expected):
        write_wav(tmp_path / "x.wav", **kwargs)
    assert not list(tmp_path.iterdir())


def test_write_wav_replaces_a_fifo_instead_of_blocking_on_it(tmp_path):
    os.mkfifo(tmp_path / "x.wav")
    writer = threading.Thread(target=write_wav, args=(tmp_path / "x.wav", np.zeros(8)), kwargs={"sample_rate": 8000},
                              daemon=True)
    writer.start()
    writer.join(10)
    if writer.is_alive():  # blocked opening the FIFO: open its other end to release the thread, then fail
        os.close(os.open(tmp_path / "x.wav", os.O_RDONLY | os.O_NONBLOCK))
        writer.join(10)
        pytest.fail("write_wav blocked on a FIFO at its path (a hang)")
    with wave.open(str(tmp_path / "x.wav")) as w:
        assert (w.getframerate(), w.getnframes()) == (8000, 8)


@pytest.mark.parametrize("frame_size", [2.5, 0, -1, True, "200", None, math.inf])
def test_waveform_to_frames_refuses_a_frame_size_that_is_not_a_positive_whole_number(frame_size):
    with pytest.raises(DataError, match="frame_size must be a whole number >= 1"):
        waveform_to_frames(np.zeros(100), frame_size)


@FUZZ
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=40),
       rate=st.one_of(st.integers(-10, 2 * 10 ** 6), st.floats(allow_nan=True)))
def test_write_wav_of_any_values_and_rate_writes_them_or_refuses(tmp_path_factory, values, rate):
    path = tmp_path_factory.mktemp("wav") / "x.wav"
    finite = all(math.isfinite(v) for v in values)
    good_rate = isinstance(rate, int) and 1 <= rate <= 1_000_000
    if not (finite and good_rate):
        with pytest.raises(DataError):
            write_wav(path, values, sample_rate=rate)
        return
    write_wav(path, values, sample_rate=rate)
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    expected = np.clip(np.round(np.asarray(values, dtype=np.float64) * 32768), -32768, 32767)
    assert np.array_equal(pcm, expected.astype(np.int16))


# ---------------------------------------------------------------------------------------------- the core's tensors
def _tensors(case):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 2, generator=g)
    mask = torch.arange(5).expand(3, 5) < torch.tensor([5, 3, 1])[:, None]
    if case == "mask with a hole":
        mask = torch.tensor([[True, False, True, True, True]] * 3)
    elif case == "an all-False mask row":
        mask = mask.clone()
        mask[1] = False
    elif case == "NaN in x on a real step":
        x[0, 1, 0] = math.nan
    elif case == "Inf in x on a real step":
        x[2, 0, 1] = math.inf
    return x, mask


def _entry(name, model):
    return {"model": lambda x, m: model.model(x, m), "guide": lambda x, m: model.guide(x, m),
            "importance": lambda x, m: importance_log_likelihood(model.model, model.guide, x, m, num_particles=2),
            "trainer.step": lambda x, m: Trainer(model).step(x, m)}[name]


CORE_TENSOR_CASES = [
    pytest.param(entry, case, id=f"{entry}-{case}")
    for case, entries in {
        "mask with a hole": ("model", "guide", "importance", "trainer.step"),
        "an all-False mask row": ("model", "guide", "importance", "trainer.step"),
        "NaN in x on a real step": ("model", "guide", "importance"),  # Trainer.step skips such a batch
        "Inf in x on a real step": ("model", "guide", "importance"),
    }.items() for entry in entries]


@pytest.mark.parametrize("entry,case", CORE_TENSOR_CASES)
def test_bad_tensors_are_a_value_error_with_pyro_validation_off(entry, case):
    model = VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,))
    with pyro.validation_enabled(False), pytest.raises(ValueError):
        _entry(entry, model)(*_tensors(case))
