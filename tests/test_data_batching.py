import pytest
import torch

from pyro_vrnn.data import DataError, iterate_batches, pad_batch


def _seqs(lengths, dim=3):
    return [torch.full((t, dim), float(i + 1)) for i, t in enumerate(lengths)]


def test_pad_batch_shapes_mask_and_zero_padding():
    x, mask = pad_batch(_seqs([2, 5, 3]))
    assert x.shape == (3, 5, 3) and x.dtype == torch.float32
    assert mask.dtype == torch.bool and mask.shape == (3, 5)
    assert mask.sum(1).tolist() == [2, 5, 3]
    assert (x[0, 2:] == 0).all() and (x[0, :2] == 1).all()


def test_pad_batch_rejects_mixed_dims_and_empty_input():
    with pytest.raises(DataError):
        pad_batch([torch.zeros(2, 3), torch.zeros(2, 4)])
    with pytest.raises(DataError):
        pad_batch([])


def test_iterate_batches_visits_every_sequence_once():
    seqs = _seqs(list(range(1, 24)))
    seen = []
    for x, mask in iterate_batches(seqs, 5, generator=torch.Generator().manual_seed(0)):
        assert x.shape[0] <= 5
        seen.extend(x[:, 0, 0].long().tolist())
    assert sorted(seen) == list(range(1, 24))


def test_iterate_batches_is_deterministic_given_generator():
    seqs = _seqs([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    def run(seed):
        return [x[:, 0, 0].tolist() for x, _ in iterate_batches(seqs, 3, generator=torch.Generator().manual_seed(seed),
                                                              bucket_by_length=True)]
    assert run(1) == run(1)
    assert run(1) != run(2)


def test_bucketing_by_length_reduces_padding():
    lengths = [1, 50, 2, 49, 3, 48, 4, 47] * 4
    seqs = _seqs(lengths)
    def padding(bucket):
        gen = torch.Generator().manual_seed(0)
        return sum((~m).sum().item() for _, m in iterate_batches(seqs, 4, generator=gen, bucket_by_length=bucket))
    assert padding(True) < padding(False) / 4


def test_drop_last_and_no_shuffle_keep_order():
    seqs = _seqs([1] * 7)
    batches = list(iterate_batches(seqs, 3, shuffle=False, drop_last=True))
    assert len(batches) == 2
    assert batches[0][0][:, 0, 0].tolist() == [1, 2, 3]
