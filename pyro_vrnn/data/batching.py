"""Padding variable-length sequences into batch-first tensors with a mask, and iterating batches.

A batch is ``(x, mask)``: ``x`` of shape ``(B, T_max, D)`` (float32, zeros after each sequence's
end) and ``mask`` of shape ``(B, T_max)`` (bool, ``True`` on real steps). Models use
``dist.mask(mask[:, t])`` so padded steps contribute nothing.
"""

import torch

from .errors import DataError


def pad_batch(seqs):
    """Stack sequences of shape ``(T_i, D)`` into ``x`` ``(B, T_max, D)`` and ``mask`` ``(B, T_max)``."""
    seqs = list(seqs)
    if not seqs:
        raise DataError("pad_batch needs at least one sequence")
    dims = {s.shape[-1] for s in seqs}
    if len(dims) != 1 or any(s.dim() != 2 for s in seqs):
        raise DataError(f"pad_batch needs (T, D) tensors with one D, got shapes "
                        f"{sorted({tuple(s.shape) for s in seqs})[:4]}")
    lengths = torch.tensor([s.shape[0] for s in seqs])
    t_max = int(lengths.max())
    x = seqs[0].new_zeros((len(seqs), t_max, dims.pop()), dtype=torch.float32)
    for i, s in enumerate(seqs):
        x[i, :s.shape[0]] = s
    mask = torch.arange(t_max).unsqueeze(0) < lengths.unsqueeze(1)
    return x, mask


def batch_indices(lengths, batch_size, shuffle=True, generator=None, bucket_by_length=False,
                  drop_last=False):
    """Index lists, one per batch. With ``bucket_by_length`` the (shuffled) indices are sorted by
    length before cutting, so each batch holds similar lengths (little padding); the order of the
    batches is then shuffled. Deterministic given ``generator``."""
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
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


def iterate_batches(seqs, batch_size, shuffle=True, generator=None, bucket_by_length=False,
                    drop_last=False):
    """Yield ``(x, mask)`` batches from a list of ``(T_i, D)`` tensors (see :func:`pad_batch`).

    :param torch.Generator generator: source of the shuffling; without one, torch's global RNG
        (seeded by ``pyro.set_rng_seed``) is used.
    """
    lengths = [s.shape[0] for s in seqs]
    for idx in batch_indices(lengths, batch_size, shuffle, generator, bucket_by_length, drop_last):
        yield pad_batch([seqs[i] for i in idx])
