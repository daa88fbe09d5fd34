"""Running out of memory, turned into advice.

A CUDA (or CPU allocator) out-of-memory error deep inside a Pyro trace says how many bytes the
allocator wanted, not what the user can change. :func:`out_of_memory_advice` wraps a block of
work and re-raises any out-of-memory error as :class:`OutOfMemoryError`, one line naming the
knobs that bound memory for that work::

    with out_of_memory_advice("a training step", TRAINING_KNOBS):
        loss = elbo.loss_and_grads(model, guide, x, mask)

Importance sampling is bounded by its ``chunk_size`` argument (particles per chunk); training by
the batch size, the number of ELBO particles and the model's sizes.
"""

from __future__ import annotations

import contextlib

import torch

TRAINING_KNOBS = ("lower the batch size (--batch-size), the ELBO particles (--num-particles / num_particles), "
                  "the longest sequence length, or the model sizes (--h-dim, --z-dim)")
EVALUATION_KNOBS = ("lower the particles evaluated at once (--chunk-size / chunk_size; --particles sets the "
                    "total) or the batch size (--batch-size)")
SAMPLING_KNOBS = "generate fewer or shorter sequences (--num, --length)"
#: what bounds memory in each ``pyro-vrnn`` subcommand
COMMAND_KNOBS = {"train": TRAINING_KNOBS, "evaluate": EVALUATION_KNOBS, "sample": SAMPLING_KNOBS,
                 "compare": f"{TRAINING_KNOBS}; for evaluation {EVALUATION_KNOBS}",
                 "score": "lower the batch size (--batch-size) or the particles (--particles)",
                 "forecast": "lower the batch size (--batch-size) or the draws (--num-samples)"}

_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


class OutOfMemoryError(RuntimeError):
    """The device ran out of memory; the message names the arguments that bound memory use."""


def is_out_of_memory(error: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError``, a ``MemoryError``, or a ``RuntimeError`` whose
    message is the allocator's out-of-memory report (CUDA, MPS or CPU)."""
    cuda_oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if cuda_oom is not None and isinstance(error, cuda_oom):
        return True
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, RuntimeError) and not isinstance(error, OutOfMemoryError):
        text = str(error).lower()
        return any(m in text for m in _MESSAGES)
    return False


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@contextlib.contextmanager
def out_of_memory_advice(task: str, knobs: str):
    """Re-raise an out-of-memory error inside the block as :class:`OutOfMemoryError`
    ``"out of memory during {task} ({allocator's first line}); {knobs}"``."""
    try:
        yield
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        raise OutOfMemoryError(out_of_memory_message(error, task, knobs)) from error


def out_of_memory_message(error: BaseException, task: str, knobs: str) -> str:
    """``"out of memory during {task} ({allocator's first line}); {knobs}"``; frees CUDA's cache."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return f"out of memory during {task} ({_first_line(error)}); {knobs}"
