"""Data-parallel training and evaluation on ``torch.distributed``: one model, ``N`` processes.

Launch the command line under ``torchrun`` (or ``srun torchrun`` in a SLURM job)::

    torchrun --standalone --nproc_per_node=N -m pyro_vrnn.cli train --model vrnn-gmm --data ... --out RUN
    torchrun --standalone --nproc_per_node=N -m pyro_vrnn.cli evaluate RUN --particles 1000

gloo on CPUs, NCCL on GPUs (process ``r`` on ``cuda:LOCAL_RANK``). One optimizer step, for a global
batch of ``B`` sequences drawn in the same seeded order as in one process:

- process ``r`` takes the contiguous part ``[r B / N, (r + 1) B / N)`` of the batch (parts differ by
  at most one sequence; a part is empty only when ``B < N``, which only an epoch's last batch can be);
- it computes its loss ``L_r`` (the negative ELBO summed over its sequences) and ``grad L_r``;
- :meth:`DataParallel.reduce` sums them with ``all_reduce``: ``L = sum_r L_r`` and
  ``grad L = sum_r grad L_r``, exactly the loss and gradient of one process holding the whole batch;
- every process then runs the same finite checks and the same ``ClippedAdam`` step on the same
  numbers, so the parameters stay bit-identical on every process without being sent again.

Why a plain ``all_reduce`` of the gradients rather than ``DistributedDataParallel`` over an ELBO
module (Pyro's ``examples/svi_torch.py``): the trainer skips a step whose loss, gradient or data
is not finite, and every process must make that choice together; DDP would sum inside
``backward`` with no say over skipping, a process with an empty part or a failed step could not
take part, and the trainer's ELBOs (``RenyiELBO``, the fast engine) are not modules. Here the sum
comes after each process's own checks, and ``reduce`` tells every process whether any of them
found a problem. Details and measurements: ``docs/distributed.md``.

Noise: process ``r`` draws the latent noise of step ``s`` from a generator seeded by
``(seed, r, s, retries)`` (:meth:`DataParallel.seed_step`), so a resumed run on the same number of
processes continues exactly, with no random-number state to collect from the other processes.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import sys

import numpy as np
import pyro
import torch
import torch.distributed as dist

from .devices import resolve_device

#: the environment a launcher (torchrun) sets for every process
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: seconds to wait for every process to join (:func:`start`); set it to wait longer or shorter
RENDEZVOUS_TIMEOUT_ENV_VAR = "PYRO_VRNN_RENDEZVOUS_TIMEOUT"
DEFAULT_RENDEZVOUS_TIMEOUT = 300.0


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher that sets
    ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``)."""
    return all(name in os.environ for name in LAUNCH_VARIABLES)


def _integer_variable(name: str, environ) -> int | None:
    text = environ.get(name)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{name}={text} is not a whole number (a launcher sets RANK, WORLD_SIZE and LOCAL_RANK "
                         f"to process numbers)") from None


def check_launch_environment(environ=None) -> int:
    """The number of processes the launcher variables describe (1 when none is set), checked before
    any rendezvous, so that variables that cannot be right fail at once instead of waiting:
    ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` whole numbers, ``WORLD_SIZE >= 1``,
    ``0 <= RANK < WORLD_SIZE``, ``LOCAL_RANK >= 0``, ``RANK`` and ``WORLD_SIZE`` given together, and
    ``MASTER_ADDR`` and ``MASTER_PORT`` (a port number) present when ``WORLD_SIZE > 1`` (without
    them a process would train alone, silently). Raises ``ValueError`` naming the variable and its value."""
    environ = os.environ if environ is None else environ
    rank, world_size = _integer_variable("RANK", environ), _integer_variable("WORLD_SIZE", environ)
    local_rank = _integer_variable("LOCAL_RANK", environ)
    if rank is None and world_size is None:
        return 1
    if rank is None or world_size is None:
        given, missing = ("RANK", "WORLD_SIZE") if world_size is None else ("WORLD_SIZE", "RANK")
        raise ValueError(f"{given}={environ[given]} is set but {missing} is not; launch with torchrun, which sets "
                         f"RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, or unset {given}")
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE={world_size}: the number of processes must be >= 1")
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside [0, WORLD_SIZE={world_size}): ranks number the processes 0 .. "
                         f"{world_size - 1}")
    if local_rank is not None and local_rank < 0:
        raise ValueError(f"LOCAL_RANK={local_rank} must be >= 0")
    if world_size > 1:
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not environ.get(name, "").strip()]
        if missing:
            raise ValueError(f"WORLD_SIZE={world_size} but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                             f"not set: the processes could not find each other (this one would train alone); "
                             f"launch with torchrun, or set MASTER_ADDR and MASTER_PORT")
        port = _integer_variable("MASTER_PORT", environ)
        if not 0 < port < 65536:
            raise ValueError(f"MASTER_PORT={port} is not a port number (1 to 65535)")
    return world_size


def rendezvous_timeout(environ=None) -> float:
    """Seconds :func:`start` waits for every process to join: ``$PYRO_VRNN_RENDEZVOUS_TIMEOUT``, else
    :data:`DEFAULT_RENDEZVOUS_TIMEOUT` (5 minutes)."""
    environ = os.environ if environ is None else environ
    text = environ.get(RENDEZVOUS_TIMEOUT_ENV_VAR)
    if text is None or not text.strip():
        return DEFAULT_RENDEZVOUS_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{RENDEZVOUS_TIMEOUT_ENV_VAR}={text} must be a positive number of seconds")
    return value


def launched_processes() -> int:
    """``WORLD_SIZE`` when launched (see :func:`launched`), else 1; the variables are checked first
    (:func:`check_launch_environment`)."""
    world_size = check_launch_environment()
    return world_size if launched() else 1


def _derived_seed(*numbers: int) -> int:
    """A 32-bit seed from a tuple of non-negative integers (NumPy's ``SeedSequence`` hash)."""
    return int(np.random.SeedSequence([int(n) for n in numbers]).generate_state(1, np.uint32)[0])


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """This process's place among ``world_size`` data-parallel processes (see the module docstring).

    Args:
        rank: this process's number, ``0 <= rank < world_size``; rank 0 alone writes files.
        world_size: the number of processes.
        seed: the run's seed, from which each process's per-step noise seed is derived.
        group: the process group (``None``: the default one).
    """

    rank: int
    world_size: int
    seed: int = 0
    group: object = None

    def __post_init__(self):
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {self.rank}")

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and results (rank 0)."""
        return self.rank == 0

    def with_seed(self, seed: int) -> "DataParallel":
        return dataclasses.replace(self, seed=int(seed))

    # ------------------------------------------------------------------ data
    def shard(self, items):
        """This process's contiguous part of ``items`` (a list or range): ``items[r n / N : (r + 1) n / N]``."""
        n = len(items)
        return items[self.rank * n // self.world_size:(self.rank + 1) * n // self.world_size]

    def seed_step(self, step: int, retries: int) -> None:
        """Seed every RNG for this process's noise in step ``step`` (``retries``: skipped attempts at it)."""
        pyro.set_rng_seed(_derived_seed(self.seed, self.rank, step, retries))

    # ------------------------------------------------------------------ collectives
    def _all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over processes, in place (one process: nothing to do, no group needed)."""
        if self.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        return tensor

    def _device(self) -> torch.device:
        """Where collectives run: the current CUDA device under NCCL, else the CPU."""
        if self.world_size > 1 and dist.get_backend(self.group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def sum(self, *values: float) -> tuple:
        """Each of ``values`` summed over processes (float64)."""
        return tuple(self._all_reduce(torch.tensor(values, dtype=torch.float64, device=self._device())).tolist())

    def reduce(self, model, params: set, loss, problem):
        """Sum this step's loss and gradients over processes; returns ``(loss, params, problem)``, the
        same on every process.

        Args:
            model: the module whose parameters are trained (a fixed order on every process).
            params: the parameters this process's ELBO touched (empty for an empty part).
            loss: this process's loss (a float; ``None`` if it failed).
            problem: what this process found not finite, or ``None``.
        Returns:
            the summed loss; the parameters that now hold the summed gradient (those with a
            gradient on any process); and ``None``, or the first process's problem (then nothing
            was summed and every process skips the step).
        """
        everything = list(model.parameters())
        foreign = params - set(everything)
        if foreign:
            raise ValueError(f"data-parallel training sums the gradients of the model's own parameters, but the "
                             f"guide trains {len(foreign)} parameter(s) outside the model; use the model's guide")
        ref = everything[0]
        # one float64 vector: [loss, problem flag, has-a-gradient flag per parameter]
        meta = torch.tensor([0.0 if problem is not None else float(loss), float(problem is not None)]
                            + [float(p.grad is not None) for p in everything], dtype=torch.float64,
                            device=ref.device)
        self._all_reduce(meta)
        if meta[1] > 0:  # rare: learn who failed and why, then every process skips
            problems = [problem] * self.world_size
            if self.world_size > 1:
                dist.all_gather_object(problems, problem, group=self.group)
            rank = next(r for r, p in enumerate(problems) if p is not None)
            return None, params, f"{problems[rank]} (in process {rank} of {self.world_size})"
        with_grad = [p for p, flag in zip(everything, meta[2:].tolist()) if flag > 0]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in with_grad])
        self._all_reduce(flat)
        offset = 0
        for p in with_grad:
            summed = flat[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
            if p.grad is None:
                p.grad = summed.clone()
            else:
                p.grad.copy_(summed)
        total = float(meta[0])
        if not (torch.isfinite(flat).all() and np.isfinite(total)):  # the sum can overflow where no part did
            return total, set(with_grad), "gradient (summed over processes)" if np.isfinite(total) else "loss"
        return total, set(with_grad), None

    def broadcast_parameters(self, model) -> None:
        """Give every process rank 0's parameters and buffers (a fresh model is seeded alike on every
        process; this makes it certain)."""
        if self.world_size == 1:
            return
        for tensor in list(model.parameters()) + list(model.buffers()):
            with torch.no_grad():
                dist.broadcast(tensor.data, src=0, group=self.group)

    def parameters_agree(self, model) -> bool:
        """Whether every process holds bit-identical parameters (each compares its own with rank 0's)."""
        mine = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        rank0 = mine.clone()
        if self.world_size > 1:
            dist.broadcast(rank0, src=0, group=self.group)
        differ = torch.tensor([float(not torch.equal(mine, rank0))], dtype=torch.float64, device=mine.device)
        return self._all_reduce(differ).item() == 0

    # ------------------------------------------------------------------ evaluation
    def owns_batch(self, number: int) -> bool:
        """Whether this process evaluates batch ``number`` (batches are dealt round-robin)."""
        return number % self.world_size == self.rank

    def batch_seed(self, seed: int, number: int) -> int:
        """The seed of evaluation batch ``number``: the same whatever the number of processes."""
        return _derived_seed(seed, number)

    def combine(self, per_sequence: dict) -> dict:
        """Merge per-sequence result lists that each process filled for its own batches (zeros
        elsewhere) by summing them: ``x + 0 = x`` exactly, so the merge is exact."""
        keys = list(per_sequence)
        stacked = self._all_reduce(torch.tensor([per_sequence[k] for k in keys], dtype=torch.float64,
                                                device=self._device()))
        return {k: row for k, row in zip(keys, stacked.tolist())}


def start(device="auto", timeout_minutes: float = 30.0, rendezvous_seconds: float | None = None,
          log=None) -> tuple[DataParallel, torch.device]:
    """Join the process group a launcher described in the environment; returns this process's
    :class:`DataParallel` and its device: ``cuda:LOCAL_RANK`` with NCCL when CUDA is used, the CPU
    with gloo otherwise.

    The launcher variables are checked first (:func:`check_launch_environment`). Joining waits at
    most ``rendezvous_seconds`` (default :func:`rendezvous_timeout`: ``$PYRO_VRNN_RENDEZVOUS_TIMEOUT``
    or 5 minutes) for all ``WORLD_SIZE`` processes, saying what it waits for (``log``, default
    stderr), and a process that never comes is a ``ValueError`` naming the variables; afterwards
    ``timeout_minutes`` bounds a wait for a process that has stopped."""
    if not launched():
        raise RuntimeError("not launched by torchrun: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are unset")
    world_size = check_launch_environment()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    seconds = rendezvous_timeout() if rendezvous_seconds is None else float(rendezvous_seconds)
    device = resolve_device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    group = None
    if not dist.is_initialized():
        where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        waiting = (f"process RANK={rank} waits up to {seconds:g} s ({RENDEZVOUS_TIMEOUT_ENV_VAR}) for the "
                   f"WORLD_SIZE={world_size} processes to meet at MASTER_ADDR:MASTER_PORT={where}")
        if world_size > 1:
            (log or (lambda message: print(message, file=sys.stderr, flush=True)))(waiting)
        try:
            dist.init_process_group(backend, rank=rank, world_size=world_size,
                                    timeout=datetime.timedelta(seconds=seconds))
        except (RuntimeError, ValueError) as error:  # torch's DistStoreError / DistNetworkError are RuntimeErrors
            if dist.is_initialized():
                raise
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"{waiting}, but they did not all come ({first}); start all {world_size} processes "
                             f"(torchrun --nproc_per_node), check RANK and WORLD_SIZE, or raise "
                             f"{RENDEZVOUS_TIMEOUT_ENV_VAR}") from None
        if world_size > 1:  # collectives get the longer timeout (a slow process is not a missing one)
            group = dist.new_group(timeout=datetime.timedelta(minutes=timeout_minutes))
    return DataParallel(rank, world_size, group=group), device


def stop(synchronize: bool = False) -> None:
    """Leave the default process group, if there is one (the command line calls it when a command
    it ran under a launcher ends).

    ``synchronize``: wait at a barrier first, so that every process leaves together (after a command
    that ended normally on every process). Without it a process that finished early (rank 1, while
    rank 0 still writes the checkpoint) tore down its gloo connections under a peer still using
    them, and could abort ("terminate called without an active exception"). After an error the
    barrier is skipped: the other processes may never reach it (the launcher stops them).
    """
    if dist.is_available() and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()
