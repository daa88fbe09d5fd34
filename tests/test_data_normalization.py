import io

import pytest
import torch

from pyro_vrnn.data import DataError, Normalizer


def test_global_normalizer_round_trips_and_standardizes():
    torch.manual_seed(0)
    seqs = [torch.randn(7, 4) * 3 + 2 for _ in range(5)]
    norm = Normalizer.fit_global(seqs)
    z = torch.cat([norm.normalize(s) for s in seqs])
    assert abs(z.mean().item()) < 1e-5 and abs(z.std(unbiased=False).item() - 1) < 1e-5
    assert torch.allclose(norm.denormalize(norm.normalize(seqs[0])), seqs[0], atol=1e-5)


def test_offset_scale_keeps_pen_bit_and_zero_offsets():
    seqs = [torch.tensor([[0.0, 0.0, 0.0], [4.0, -2.0, 1.0], [2.0, 6.0, 0.0]])]
    norm = Normalizer.fit_offset_scale(seqs)
    y = norm.normalize(seqs[0])
    assert y[:, 2].tolist() == [0.0, 1.0, 0.0]
    assert y[0, :2].tolist() == [0.0, 0.0]
    assert norm.scale[2] == 1 and norm.scale[0] == norm.scale[1] > 1


def test_state_dict_survives_torch_save_and_load():
    norm = Normalizer.fit_global([torch.arange(12.0).reshape(3, 4)])
    buffer = io.BytesIO()
    torch.save({"normalizer": norm.state_dict()}, buffer)
    buffer.seek(0)
    restored = Normalizer.from_state_dict(torch.load(buffer, weights_only=True)["normalizer"])
    x = torch.randn(2, 5, 4)
    assert torch.allclose(restored.denormalize(x), norm.denormalize(x))
    assert restored.description == norm.description


def test_identity_normalizer_leaves_binary_data_unchanged():
    norm = Normalizer.identity(88)
    x = (torch.rand(3, 10, 88) > 0.5).float()
    assert torch.equal(norm.normalize(x), x) and norm.is_identity


def test_normalizer_rejects_wrong_width_and_bad_state():
    norm = Normalizer.identity(3)
    with pytest.raises(DataError):
        norm.normalize(torch.zeros(2, 4))
    with pytest.raises(DataError):
        Normalizer.from_state_dict({"type": "something"})
    with pytest.raises(DataError):
        Normalizer([0.0], [0.0])
