"""Padding variable-length sequences into batch-first tensors with a mask, and iterating batches.

A batch is ``(x, mask)``: ``x`` of shape ``(B, T_max, D)`` (float32, zeros after each sequence's
end) and ``mask`` of shape ``(B, T_max)`` (bool, ``True`` on real steps). Models use
``dist.mask(mask[:, t])`` so padded steps contribute nothing.
"""

import numpy as np
import torch

from . import options
from .errors import DataError


def _as_sequence(seq, i):
    """Item ``i`` of a batch as a real ``(T, D)`` tensor with ``T >= 1``; a NumPy array is converted."""
    at = f"pad_batch: sequence {i} of seqs"
    if isinstance(seq, np.ndarray):
        if seq.dtype.kind not in "biuf":
            raise DataError(f"{at} is a NumPy array of dtype {seq.dtype}; expected real numbers")
        seq = torch.as_tensor(seq)
    elif not torch.is_tensor(seq):
        raise DataError(f"{at} is a {type(seq).__name__}; expected a (T, D) tensor or NumPy array (nested lists "
                        "are not taken: convert them with torch.tensor first)")
    if seq.is_meta:
        raise DataError(f"{at} is a meta tensor (a shape without values); expected a tensor holding data")
    if seq.is_nested or seq.layout != torch.strided:
        raise DataError(f"{at} is a {'nested' if seq.is_nested else seq.layout} tensor; expected a dense (T, D) "
                        "tensor (convert it with .to_dense())")
    if seq.is_quantized:
        raise DataError(f"{at} is quantized ({seq.dtype}); expected real numbers (convert it with .dequantize())")
    if seq.dim() != 2:
        raise DataError(f"{at} has shape {tuple(seq.shape)}; expected (T, D)")
    if seq.shape[0] == 0:
        raise DataError(f"{at} has 0 steps; every sequence needs at least one")
    if seq.is_complex():
        raise DataError(f"{at} is complex ({seq.dtype}); expected real numbers")
    return seq


def pad_batch(seqs):
    """Stack sequences of shape ``(T_i, D)`` into ``x`` ``(B, T_max, D)`` and ``mask`` ``(B, T_max)``.

    ``seqs``: a list (or tuple) of ``(T_i, D)`` tensors or NumPy arrays with ``T_i >= 1`` and one
    ``D``, dense, holding real numbers, all on one device; or a ``(B, T, D)`` tensor / array (its rows
    taken as sequences). Anything else (a meta, sparse, nested or quantized tensor, sequences on two
    devices) is a :class:`DataError` naming ``seqs`` and the index of the sequence at fault.
    """
    if torch.is_tensor(seqs) or isinstance(seqs, np.ndarray):
        if seqs.ndim != 3:
            raise DataError(f"pad_batch takes a list of (T, D) sequences or a (B, T, D) array, got a "
                            f"{type(seqs).__name__} of shape {tuple(seqs.shape)}")
        seqs = list(seqs)
    elif isinstance(seqs, (str, bytes, dict)) or not isinstance(seqs, (list, tuple)):
        raise DataError(f"pad_batch takes a list of (T, D) sequences, got {type(seqs).__name__}")
    seqs = [_as_sequence(s, i) for i, s in enumerate(seqs)]
    if not seqs:
        raise DataError("pad_batch needs at least one sequence")
    dims = {s.shape[-1] for s in seqs}
    if len(dims) != 1:
        raise DataError(f"pad_batch needs (T, D) sequences with one D, got shapes "
                        f"{sorted({tuple(s.shape) for s in seqs})[:4]}")
    for i, s in enumerate(seqs):
        if s.device != seqs[0].device:
            raise DataError(f"pad_batch: sequence {i} of seqs is on {s.device}, sequence 0 on {seqs[0].device}; "
                            "a batch is stacked on one device (move the sequences there first, e.g. .to(device))")
    lengths = torch.tensor([s.shape[0] for s in seqs])
    t_max = int(lengths.max())
    x = seqs[0].new_zeros((len(seqs), t_max, dims.pop()), dtype=torch.float32)
    for i, s in enumerate(seqs):
        try:
            x[i, :s.shape[0]] = s
        except (RuntimeError, TypeError, NotImplementedError) as error:
            raise DataError(f"pad_batch: sequence {i} of seqs ({s.dtype} on {s.device}) cannot be copied into a "
                            f"float32 batch: {(str(error).splitlines() or [''])[0][:200]}") from None
    mask = torch.arange(t_max).unsqueeze(0) < lengths.unsqueeze(1)
    return x, mask


def batch_indices(lengths, batch_size, shuffle=True, generator=None, bucket_by_length=False,
                  drop_last=False):
    """Index lists, one per batch. With ``bucket_by_length`` the (shuffled) indices are sorted by
    length before cutting, so each batch holds similar lengths (little padding); the order of the
    batches is then shuffled. Deterministic given ``generator``."""
    batch_size = options.whole_number("batch_size", batch_size, minimum=1)
    n = len(lengths)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if bucket_by_length:
        order_lengths = torch.as_tensor(lengths)[order]
        order = order[torch.sort(order_lengths, stable=True).indices]
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches = batches[:-1]
    if bucket_by_length and shuffle:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return [b.tolist() for b in batches]


def updates_per_epoch(lengths, batch_size, train_window=0, bucket_by_length=False) -> int:
    """Training updates in one pass over sequences of ``lengths`` (what ``--epochs`` counts).

    Whole sequences: one update a batch, ``ceil(n / B)``. With windows of ``N`` steps
    (``train_window``, truncated backpropagation) a batch takes ``ceil(T_b / N)`` updates, ``T_b`` its
    longest sequence: ``sum_b ceil(T_b / N)``. That sum is fixed only when batches are cut from the
    length-sorted order (``bucket_by_length``, as :func:`batch_indices` cuts them), so windows without
    it are a ``ValueError``."""
    batch_size = options.whole_number("batch_size", batch_size, minimum=1)
    lengths = np.sort(np.asarray(lengths, dtype=np.int64))
    if not train_window:
        return -(-len(lengths) // batch_size)
    if not bucket_by_length:
        raise ValueError("with training windows the updates in an epoch depend on which pieces share a batch; "
                         "pass --bucket-by-length (bucket_by_length=True) or give the updates (--steps)")
    window = options.whole_number("train_window", train_window, minimum=1)
    n = len(lengths)  # batch b holds sorted lengths [b B, (b + 1) B): its longest is the last of them
    return sum(-(-int(lengths[min(start + batch_size, n) - 1]) // window) for start in range(0, n, batch_size))


def iterate_batches(seqs, batch_size, shuffle=True, generator=None, bucket_by_length=False,
                    drop_last=False):
    """Yield ``(x, mask)`` batches from a list of ``(T_i, D)`` tensors (see :func:`pad_batch`).

    :param torch.Generator generator: source of the shuffling; without one, torch's global RNG
        (seeded by ``pyro.set_rng_seed``) is used.

    The arguments are checked when it is called, not at the first batch; the shuffling happens at
    the first batch, as before.
    """
    if isinstance(seqs, (str, bytes, dict)) or not isinstance(seqs, (list, tuple)) or not seqs:
        raise DataError(f"iterate_batches takes a non-empty list of (T, D) sequences, got "
                        f"{type(seqs).__name__}{' (empty)' if isinstance(seqs, (list, tuple)) else ''}")
    batch_size = options.whole_number("batch_size", batch_size, minimum=1)
    lengths = [_as_sequence(s, i).shape[0] for i, s in enumerate(seqs)]
    return _batches(seqs, lengths, batch_size, shuffle, generator, bucket_by_length, drop_last)


def _batches(seqs, lengths, batch_size, shuffle, generator, bucket_by_length, drop_last):
    for idx in batch_indices(lengths, batch_size, shuffle, generator, bucket_by_length, drop_last):
        yield pad_batch([seqs[i] for i in idx])
