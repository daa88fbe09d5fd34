"""Memory that sampling work will need, known before it starts, checked against the machine.

Importance sampling and SMC hold, for ``K`` particles of ``B`` sequences, each particle's recurrent
state and the activations of one step of the networks; importance sampling also keeps the
emission parameters of every step of a particle chunk (the trace) and ``K x B`` float64 weights.
These functions estimate those bytes from the model's sizes (an estimate of what the work holds at
once, not a measurement) and refuse work that cannot fit, before any of it runs, as the data
loaders refuse files larger than memory::

    check_memory(smc_bytes(model, batch_size=8, num_steps=100, num_particles=10**9),
                 "SMC", "num_particles=1000000000 (--particles)")
    -> ValueError: SMC needs about 1.3 TB (num_particles=1000000000 (--particles)), more than the 21.7 GB ...

The limit is the memory available now (``/proc/meminfo``'s ``MemAvailable``, else
``os.sysconf``; a CUDA device's free memory), or ``max_memory`` (``--max-memory``) when given,
which a user who knows better can raise.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..data.files import format_bytes

#: bytes of one ``torch.Generator`` per particle (importance sampling seeds each particle's noise)
GENERATOR_BYTES = 5056


def available_memory(device=None) -> int:
    """Bytes available now: a CUDA device's free memory, else the machine's ``MemAvailable``
    (``/proc/meminfo``), else ``os.sysconf`` (available pages, then all pages) times the page size."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    for name in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return int(os.sysconf(name)) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            continue
    return 1 << 62  # unknown: nothing is refused


def check_max_memory(max_memory) -> int | None:
    """``max_memory`` (bytes, ``--max-memory``) as a positive int, or ``None``; else ``ValueError``."""
    if max_memory is None:
        return None
    try:
        value = float(max_memory)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(max_memory, bool) or not (value > 0 and value < float("inf")):
        raise ValueError(f"max_memory (--max-memory) must be a positive number of bytes, got {max_memory!r}")
    return int(value)


def check_memory(needed: float, what: str, culprit: str, *, max_memory=None, device=None,
                 knobs: str = "") -> None:
    """Refuse (``ValueError``) work that needs more than ``max_memory`` bytes (default: the memory
    available now, :func:`available_memory`). ``culprit`` names the argument/flag and its value,
    ``knobs`` what else lowers the need."""
    limit = check_max_memory(max_memory)
    where = "allowed by max_memory (--max-memory)" if limit is not None else "available on this machine"
    limit = limit if limit is not None else available_memory(device)
    if needed > limit:
        raise ValueError(f"{what} with {culprit} needs about {format_bytes(needed)}, more than the "
                         f"{format_bytes(limit)} {where}; lower {culprit.split('=')[0]}{knobs}, or raise "
                         f"max_memory (--max-memory BYTES) if you know it fits")


def _element_bytes(model) -> int:
    ref = next(iter(model.parameters()), None)
    return ref.element_size() if ref is not None else 4


def particle_elements(model) -> int:
    """Floats one particle of one sequence holds during one step: its recurrent state, one output of
    every linear layer of the networks (their activations), the latent and the emission's parameters."""
    ref = next(iter(model.parameters()), torch.zeros(()))
    state = model.initial_state((1,), ref.new_zeros(1, 1))
    leaves = state if isinstance(state, (tuple, list)) else (state,)
    state_elements = sum(t.numel() for t in leaves if torch.is_tensor(t))
    activations = sum(m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    return int(state_elements + activations + 3 * getattr(model, "z_dim", 0) + emission_elements(model))


def emission_elements(model) -> int:
    """Floats of one step's emission parameters: ``3 x_dim`` per mixture component (what a trace keeps)."""
    return 3 * int(model.x_dim) * int(getattr(model.emission, "num_components", 1) or 1)


def importance_bytes(model, batch_size: int, num_steps: int, num_particles: int, chunk_size: int) -> int:
    """Bytes importance sampling holds at once: ``K x B`` float64 weights (twice: the chunks and
    their concatenation), and for a chunk of ``C`` particles a generator each, every step's emission
    parameters (``C x B x T``) and one step's activations (``C x B``)."""
    if not getattr(model, "has_latents", True):
        num_particles = chunk_size = 1
    chunk = min(chunk_size, num_particles)
    size = _element_bytes(model)
    return int(2 * 8 * num_particles * batch_size + GENERATOR_BYTES * chunk
               + size * chunk * batch_size * (num_steps * emission_elements(model) + particle_elements(model)))


def smc_bytes(model, batch_size: int, num_steps: int, num_particles: int, num_replicates: int = 1) -> int:
    """Bytes SMC holds at once: for ``R x K x B`` particles their state and one step's activations
    (twice: resampling gathers a copy) and float64 log-weights (three: old, new, the increment), and
    per replicate, sequence and step four float64 figures kept over time."""
    if not getattr(model, "has_latents", True):
        num_particles = num_replicates = 1
    particles = num_replicates * num_particles * batch_size
    return int(particles * (2 * _element_bytes(model) * particle_elements(model) + 3 * 8)
               + 4 * 8 * num_replicates * batch_size * num_steps)
