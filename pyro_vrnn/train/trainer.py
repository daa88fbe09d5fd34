"""Training by stochastic variational inference.

:class:`Trainer` runs Pyro's :class:`~pyro.infer.SVI` machinery (an ELBO's ``loss_and_grads``,
then a :class:`~pyro.optim.ClippedAdam` step with per-parameter gradient clipping) over
minibatches of variable-length sequences, with KL annealing, a progress bar and a loss history.
On a validation split it also stops early (:class:`~pyro_vrnn.convergence.EarlyStopping`), lowers
the learning rate on plateaus (:class:`~pyro_vrnn.convergence.PlateauSchedule`) and reports each new
best validation loss to a callback (which keeps the best-on-validation checkpoint).
A step whose loss or gradient is not finite is skipped before any parameter changes; after
``max_bad_steps`` such steps in a row the trainer stops with :class:`DivergenceError`.

Minimal use::

    model = VRNN(x_dim=3, z_dim=16, h_dim=64)
    trainer = Trainer(model, lr=1e-3, patience=10, lr_schedule=PlateauSchedule())
    trainer.fit(train_sequences, num_steps=1000, batch_size=32, valid=valid_sequences, valid_every=50)

``num_steps`` is the step count to *reach* (a total, not a number of further steps): a trainer
at step 400 asked for ``fit(train, 1000)`` takes 600 more, which is what makes resuming exact.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import ELBO, RenyiELBO, TraceMeanField_ELBO
from pyro.infer.util import zero_grads
from pyro.optim import ClippedAdam

from ..data.batching import batch_indices, pad_batch
from ..data.prepared import load_batches, sequence_lengths
from ..infer import FIVO, SequenceELBO
from ..infer.engine import OutOfScope, _tree_map, filtering_state, supported_model
from .progress import progress_bar
from .resources import TRAINING_KNOBS, out_of_memory_advice
from .schedules import EarlyStopping, PlateauSchedule


class DivergenceError(RuntimeError):
    """Training produced non-finite losses or gradients too many times in a row."""


@dataclass
class KLAnnealing:
    """Linear KL annealing: ``beta(step) = min(1, start + (1 - start) * step / num_steps)``.

    ``beta`` scales ``log p(z_t | .)`` and ``log q(z_t | .)`` (not the emission), as in the DMM.
    ``num_steps = 0`` disables annealing (``beta = 1`` throughout).
    """

    num_steps: int = 0
    start: float = 0.1

    def __post_init__(self):
        if not int(self.num_steps) >= 0:
            raise ValueError(f"KL annealing steps must be >= 0, got {self.num_steps}")
        if self.num_steps and not 0.0 < float(self.start) <= 1.0:  # poutine.scale needs a positive weight
            raise ValueError(f"start, the initial KL weight (--kl-anneal-start), must be in (0, 1], got {self.start}")

    def __call__(self, step: int) -> float:
        if self.num_steps <= 0 or step >= self.num_steps:
            return 1.0
        return self.start + (1.0 - self.start) * step / self.num_steps


ELBOS = {
    "trace": lambda **kw: SequenceELBO(**kw),
    "meanfield": lambda **kw: TraceMeanField_ELBO(**kw),
    # the K-sample importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k | x) (Burda et al. 2016);
    # the K particles run as one vectorized batch
    "iwae": lambda **kw: RenyiELBO(alpha=0.0, **{**kw, "vectorize_particles": True}),
    "fivo": lambda **kw: FIVO(**kw),  # the SMC bound of Maddison et al. 2017, K = num_particles
}


def make_elbo(elbo="trace", num_particles: int = 1, vectorize_particles: bool = False, train_window: int = 0) -> ELBO:
    """The one place that maps objective names to ELBO objects; an ELBO instance is returned as is.

    - ``"trace"``: :class:`~pyro_vrnn.infer.SequenceELBO`, ``Trace_ELBO``'s loss and gradients (Monte-Carlo
      KL, the mean over ``num_particles`` samples) computed in one pass for a model's own model/guide
      (``Trace_ELBO`` itself for any other guide);
    - ``"meanfield"``: ``TraceMeanField_ELBO`` (analytic KL where both sides are Gaussian);
    - ``"iwae"``: ``RenyiELBO(alpha=0, num_particles=K, vectorize_particles=True)``, the K-sample
      importance-weighted bound (with ``K = 1`` it is the ELBO); with ``train_window > 0`` the same bound
      as the particle filter that never resamples inside a window, ``FIVO(ess_threshold=0)``, whose
      particles are carried to the next window (resampled at the window's end);
    - ``"fivo"``: :class:`~pyro_vrnn.infer.FIVO`, the SMC bound with ``K`` particles.
    """
    if isinstance(elbo, ELBO):
        return elbo
    if elbo not in ELBOS:
        raise ValueError(f"unknown elbo {elbo!r}; expected one of {sorted(ELBOS)} or a pyro.infer.ELBO")
    if not (isinstance(num_particles, int) and num_particles >= 1):
        raise ValueError(f"num_particles (--train-particles) must be a positive integer, got {num_particles!r}")
    if elbo == "iwae" and train_window:
        return FIVO(num_particles=num_particles, max_plate_nesting=1, ess_threshold=0.0)
    return ELBOS[elbo](num_particles=num_particles, vectorize_particles=vectorize_particles, max_plate_nesting=1)


class _ScaleLatents(poutine.messenger.Messenger):
    """Scales every latent (non-observed) sample site by ``scale``: KL annealing for any program."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def _pyro_sample(self, msg):
        if not msg["is_observed"]:
            msg["scale"] = self.scale * msg["scale"]


def _accepts_annealing(fn) -> bool:
    try:
        return "annealing_factor" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _annealed_program(fn, accepts_kwarg: bool, beta: float):
    if beta == 1.0:
        return fn
    if accepts_kwarg:
        return lambda *args, **kwargs: fn(*args, annealing_factor=beta, **kwargs)
    return _ScaleLatents(beta)(fn)


def _is_invalid_distribution_argument(error: BaseException) -> bool:
    """A distribution's argument validation rejected NaN/inf parameters (torch's wording)."""
    return isinstance(error, ValueError) and "but found invalid values" in str(error)


class Trainer:
    """SVI over minibatches of sequences for a :class:`~pyro_vrnn.models.SequenceModel`.

    Args:
        model: the model; ``model.model`` is the Pyro model.
        guide: a Pyro guide ``guide(x, mask)``; defaults to ``model.guide``.
        lr, betas, lrd, clip_norm, weight_decay: :class:`~pyro.optim.ClippedAdam` settings
            (``clip_norm`` C clamps each gradient element to ``[-C, C]`` before the step, as Pyro's
            ClippedAdam does whatever its name says; ``weight_decay`` is an
            L2 penalty, a regularizer against overfitting small corpora).
        elbo: ``"trace"`` (default), ``"meanfield"``, ``"iwae"`` or a :class:`pyro.infer.ELBO`
            (see :func:`make_elbo`).
        num_particles, vectorize_particles: passed to the ELBO built by name (``num_particles`` is
            the ``K`` of ``"iwae"``).
        annealing: a :class:`KLAnnealing` (or any ``step -> beta`` callable).
        patience: early stopping: stop after this many validations in a row without a new best
            validation loss (0 = never stop early; the best is tracked either way).
        lr_schedule: a :class:`~pyro_vrnn.convergence.PlateauSchedule`, or ``None`` for a constant rate.
        max_bad_steps: consecutive non-finite steps tolerated before :class:`DivergenceError`.
        parallel: a :class:`pyro_vrnn.distributed.DataParallel` to train one model on several
            processes (each takes its share of every batch; gradients are summed); ``None``: this
            process alone.
        train_window: ``N > 0``: truncated backpropagation through time, one update per window of
            ``N`` steps of each batch (:meth:`window_steps`); 0: one update per batch of whole sequences.
    """

    def __init__(self, model, guide=None, *, lr: float = 1e-3, betas=(0.9, 0.999), lrd: float = 1.0,
                 clip_norm: float = 10.0, weight_decay: float = 0.0, elbo="trace", num_particles: int = 1,
                 vectorize_particles: bool = False, annealing=None, patience: int = 0,
                 lr_schedule: PlateauSchedule | None = None, max_bad_steps: int = 10,
                 parallel=None, train_window: int = 0):
        if lr <= 0 or clip_norm <= 0 or num_particles < 1 or weight_decay < 0:
            raise ValueError(f"lr and clip_norm must be positive, weight_decay >= 0 and num_particles >= 1, got "
                             f"lr={lr}, clip_norm={clip_norm}, weight_decay={weight_decay}, "
                             f"num_particles={num_particles}")
        self.model = model
        self.guide = guide if guide is not None else model.guide
        self.optim_args = {"lr": lr, "betas": tuple(betas), "lrd": lrd, "clip_norm": clip_norm,
                           "weight_decay": weight_decay}
        self.lr_schedule = lr_schedule
        self.optim = (lr_schedule.optimizer(self.optim_args) if lr_schedule is not None
                      else ClippedAdam(dict(self.optim_args)))
        self.elbo = make_elbo(elbo, num_particles, vectorize_particles, train_window)
        self.annealing = annealing if annealing is not None else KLAnnealing()
        if isinstance(self.elbo, RenyiELBO) and float(self.annealing(0)) != 1.0:
            warnings.warn("KL annealing with the iwae objective scales log p(z) and log q(z) inside the "
                          "log-mean-exp of the importance weights: that is not KL annealing (nor a bound); "
                          "use no annealing (KLAnnealing(0); --kl-anneal-steps 0) with iwae", UserWarning)
        self.train_window = _check_window(train_window, self.elbo, parallel)
        self.early_stopping = EarlyStopping(patience)
        self.max_bad_steps = max_bad_steps
        self.parallel = parallel
        self.step_count = 0
        self.bad_steps = 0
        self.history: list[dict] = []
        self.valid_history: list[dict] = []
        self._model_takes_beta = _accepts_annealing(model.model)
        self._guide_takes_beta = _accepts_annealing(self.guide)
        self._epoch = None  # (generator state at epoch start, batches consumed) for exact resume
        self._window = None  # (next window's first step, carried state) inside the current batch

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping has ended training (the validation loss stopped improving)."""
        return self.early_stopping.should_stop

    def current_lr(self) -> float:
        """The learning rate of the next step (the schedule moves every parameter's rate together)."""
        for optim in self.optim.optim_objs.values():
            optim = getattr(optim, "optimizer", optim)  # a scheduler wraps the torch optimizer
            return float(optim.param_groups[0]["lr"])
        return float(self.optim_args["lr"])

    @property
    def device(self) -> torch.device:
        return self.model._reference_tensor().device

    @property
    def dtype(self) -> torch.dtype:
        return self.model._reference_tensor().dtype

    # ------------------------------------------------------------------ one SVI step
    def step(self, x: torch.Tensor | None, mask: torch.Tensor | None = None, initial_state=None) -> float | None:
        """One SVI step on a batch; returns the loss (negative annealed ELBO, summed over the batch),
        or ``None`` if the step was skipped because the batch, the loss, a distribution's parameters
        or a gradient was not finite. Non-finite values only in padded (masked) steps are set to zero.
        ``initial_state``: the model's state to start from (a window of longer sequences; the
        programs' ``initial_state``), ``None`` for ``h_0``.

        With ``parallel``, ``x`` is this process's share of the global batch (``None`` when it has
        none); losses and gradients are summed over processes before the checks, so every process
        skips or steps alike."""
        if self.parallel is not None:
            self.parallel.seed_step(self.step_count, self.bad_steps)
        loss, params, problem = self._loss_and_grads(x, mask, initial_state) if x is not None else (0.0, set(), None)
        if self.parallel is not None:
            loss, params, problem = self.parallel.reduce(self.model, params, loss, problem)
        if problem is not None:
            zero_grads(params)
            return self._skip(problem)
        self.bad_steps = 0
        self.optim(params)
        zero_grads(params)
        self.step_count += 1
        return loss

    def _loss_and_grads(self, x: torch.Tensor, mask: torch.Tensor | None, initial_state=None):
        """``(loss, params, problem)``: the ELBO's loss and gradients on ``(x, mask)`` in this process,
        the parameters it touched, and what was not finite (``None`` if all was)."""
        check = getattr(self.model, "check_inputs", None)
        if check is not None:
            x, mask = check(x, mask, check_finite=False)  # non-finite batches are skipped below, not refused
        if not bool(x.sum().isfinite()):  # finite sum iff all finite (or an overflow: then checked below)
            real = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask
            if bool(torch.isfinite(x[real]).all()):  # padding only: it must not matter
                x = x.masked_fill(~real[..., None], 0.0)
            else:
                return None, set(), "values in the batch"
        beta = float(self.annealing(self.step_count))
        model, guide = self.model.model, self.guide
        kwargs = {} if initial_state is None else {"initial_state": initial_state}
        if beta != 1.0 and self._model_takes_beta and self._guide_takes_beta:
            kwargs["annealing_factor"] = beta  # as arguments, so that SequenceELBO sees the programs themselves
        elif beta != 1.0:
            model = _annealed_program(model, self._model_takes_beta, beta)
            guide = _annealed_program(guide, self._guide_takes_beta, beta)
        with poutine.trace(param_only=True) as capture:
            try:
                with out_of_memory_advice("a training step", TRAINING_KNOBS):
                    loss = self.elbo.loss_and_grads(model, guide, x, mask, **kwargs)
            except BaseException as error:  # no half-accumulated gradients may leak into the next step
                zero_grads({site["value"].unconstrained() for site in capture.trace.nodes.values()})
                if not _is_invalid_distribution_argument(error):
                    raise
                loss = None
        params = {site["value"].unconstrained() for site in capture.trace.nodes.values()}
        if loss is None:
            return None, params, "distribution parameters (NaN or inf reached a distribution)"
        grads = [p.grad for p in params if p.grad is not None]
        finite = math.isfinite(loss) and (not grads or bool(torch.stack([g.isfinite().all() for g in grads]).all()))
        if not finite:
            return loss, params, "loss" if not math.isfinite(loss) else "gradient"
        return loss, params, None

    def window_steps(self, x: torch.Tensor | None, mask: torch.Tensor | None = None, resume=None):
        """The updates of one batch: yields ``(loss, real_steps, last)`` per SVI step.

        Without a window (``train_window = 0``) or a batch no longer than it: one :meth:`step` on the
        whole batch (``real_steps`` is ``None``: the caller counts them). Otherwise truncated
        backpropagation through time: the batch ``(B, T)`` is cut into consecutive windows
        ``[s, s + N)``; window ``k`` takes the rows with a real step at ``s`` (a prefix mask: rows only
        drop out), runs one :meth:`step` on ``x[rows, s:s + N]`` from the state the previous window
        ended in, then carries that state on, detached: the model's filtering state ``h_{s+N}`` given
        the guide's latents, drawn afresh after the update
        (:meth:`~pyro_vrnn.models.SequenceModel.filtering_state`, run by the engine without Pyro's
        sites where it applies; for a guide of the user's,
        :meth:`~pyro_vrnn.models.SequenceModel.final_state` on its trace). An update so costs ``N``
        steps (and the carried state one more, gradient-free, pass over the window) whatever the
        pieces' lengths. With FIVO (and ``iwae``, run as FIVO without resampling inside a window) the
        state is the filter's ``K`` particles, resampled by their weights at the window's end
        (:meth:`~pyro_vrnn.infer.FIVO.window_end_state`). A skipped (non-finite) window ends the batch:
        no state is carried out of it.

        Before each yield but the batch's last, the place to go on from, ``(s + N, state)``, is kept
        in :meth:`state_dict` (``"window"``), so a run checkpointed between two windows of a batch and
        resumed continues at the next window (``resume``: that pair; ``fit`` passes it), exactly as an
        uninterrupted run would.
        """
        window = self.train_window
        if x is None or not window or x.shape[1] <= window:
            self._window = None
            yield self.step(x, mask), None, True
            return
        num_steps = x.shape[1]
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # padding must not reach the carried states
        first, state = resume if resume is not None else (0, None)
        rows = mask[:, first].nonzero().squeeze(1)  # the rows with a real step in the window, into the batch
        for start in range(first, num_steps, window):
            x_w, mask_w = x[rows, start:start + window], mask[rows, start:start + window]
            loss = self.step(x_w, mask_w, initial_state=state)
            if start + window >= num_steps or loss is None:
                self._window = None
                yield loss, int(mask_w.sum()), True
                return
            state = self._window_end_state(x_w, mask_w, state)
            alive = mask[rows, start + window]
            if not bool(alive.all()):
                rows = rows[alive]
                state = _tree_map(lambda leaf: leaf[..., alive, :], state)
            self._window = (start + window, state)
            yield loss, int(mask_w.sum()), False

    @torch.no_grad()
    def _window_end_state(self, x_w, mask_w, state):
        """The state a window hands to the next, detached: the objective's own where it has one (FIVO:
        its particles, resampled), else the model's filtering state given a fresh guide trace."""
        carry = getattr(getattr(self.elbo, "elbo", self.elbo), "window_end_state", None)
        if carry is not None:
            return carry(self.model.model, self.guide, x_w, mask_w, initial_state=state)
        if supported_model(self.model.model, self.guide, (x_w, mask_w), {"initial_state": state}) is not None:
            try:
                return filtering_state(self.model, x_w, mask_w, initial_state=state)  # the same, without Pyro's sites
            except OutOfScope:
                pass
        if self.guide == self.model.guide:
            return self.model.filtering_state(x_w, mask_w, initial_state=state)
        guide_trace = poutine.trace(self.guide).get_trace(x_w, mask_w, initial_state=state)
        return self.model.final_state(x_w, mask_w, initial_state=state, guide_trace=guide_trace)

    def _skip(self, what: str) -> None:
        """Count a bad step: warn and return ``None``, or raise :class:`DivergenceError` past the limit."""
        self.bad_steps += 1
        if self.bad_steps > self.max_bad_steps:
            raise DivergenceError(
                f"non-finite {what} at step {self.step_count}: {self.bad_steps} bad steps in a row "
                f"(limit {self.max_bad_steps}); lower the learning rate or clip_norm, or check the data")
        warnings.warn(f"skipping step {self.step_count}: non-finite {what} "
                      f"({self.bad_steps}/{self.max_bad_steps} in a row); parameters unchanged", RuntimeWarning)
        return None

    @torch.no_grad()
    def loss_per_step(self, sequences, batch_size: int = 64) -> float:
        """Negative ELBO (no annealing) per real time step over ``sequences``, in batches cut from the
        length-sorted order (padding costs as much as real steps: on MuseData's validation pieces in
        file order batches of 16 hold 4.0x the real steps, sorted 1.27x)."""
        if self.parallel is not None:  # each process takes its share; the totals are summed
            sequences = [sequences[i] for i in self.parallel.shard(range(len(sequences)))]
        total, steps = 0.0, 0
        for idx in batch_indices([len(s) for s in sequences], batch_size, shuffle=False, bucket_by_length=True):
            x, mask = self._batch([sequences[i] for i in idx])
            with out_of_memory_advice("validation", TRAINING_KNOBS):
                total += self.elbo.loss(self.model.model, self.guide, x, mask)
            steps += int(mask.sum())
        if self.parallel is not None:
            total, steps = self.parallel.sum(total, steps)
        return total / max(steps, 1)

    def _batch(self, seqs):
        x, mask = pad_batch(seqs)
        return x.to(self.device, self.dtype), mask.to(self.device)

    def _batches(self, train, index_lists):
        """``(x, mask)`` on the model's device for each global batch's indices: this process's share
        (all of it in one process; ``(None, None)`` for an empty share), from memory or, for a
        prepared split, read ahead by DataLoader workers."""
        if self.parallel is not None:
            index_lists = (self.parallel.shard(idx) for idx in index_lists)
        for batch in load_batches(train, index_lists):
            yield (None, None) if batch is None else (batch[0].to(self.device, self.dtype), batch[1].to(self.device))

    # ------------------------------------------------------------------ the loop
    def fit(self, train, num_steps: int, batch_size: int = 32, *, valid=None, valid_every: int = 0,
            progress: bool = True, generator: torch.Generator | None = None, bucket_by_length: bool = False,
            callback=None):
        """Train until ``self.step_count`` reaches the total ``num_steps``, or early stopping ends it.

        ``num_steps`` is a total, not a number of further steps: a trainer restored at step 400 and
        asked for ``num_steps=1000`` takes 600 steps (so a resumed run continues where it stopped).

        Args:
            train: a list of ``(T_i, D)`` tensors (variable lengths are padded and masked), or a
                prepared split (:class:`~pyro_vrnn.data.prepared.PreparedSplit`).
            valid: optional list of sequences; every ``valid_every`` steps its loss per step (negative
                ELBO per time step) is recorded in ``valid_history``, feeds early stopping and the
                learning-rate schedule, and marks the record ``best`` when it is a new best.
            generator: source of the batch order (its state is part of :meth:`state_dict`).
            callback: ``callback(trainer, record)`` after every step (e.g. to checkpoint; a record
                with ``record["best"]`` is the moment to keep a best-on-validation checkpoint).
        Returns:
            ``self.history``: one dict per step with ``step``, ``loss`` (per time step),
            ``annealing`` and ``seconds`` (and ``valid_loss``, ``best``, ``lr`` on validation steps).
        """
        if num_steps < 0 or batch_size < 1:
            raise ValueError(f"num_steps must be >= 0 and batch_size >= 1, got {num_steps}, {batch_size}")
        if not train:
            raise ValueError("no training sequences")
        if (self.early_stopping.patience or self.lr_schedule is not None) and not (valid and valid_every):
            raise ValueError("early stopping (patience) and a learning-rate schedule need a validation split and "
                             f"valid_every > 0, got {len(valid or [])} validation sequences and "
                             f"valid_every={valid_every}")
        self.generator = generator if generator is not None else (getattr(self, "generator", None)
                                                                  or torch.Generator().manual_seed(0))
        lengths = sequence_lengths(train)
        bar = progress_bar(num_steps, desc="train", enabled=progress, initial=self.step_count)
        try:
            while self.step_count < num_steps and not self.stopped_early:
                if self._epoch is None:
                    self._epoch = (self.generator.get_state(), 0)
                start_state, consumed = self._epoch
                self.generator.set_state(start_state)
                batches = batch_indices(lengths, batch_size, True, self.generator, bucket_by_length)
                for idx, (x, mask) in zip(batches[consumed:], self._batches(train, batches[consumed:])):
                    if self.step_count >= num_steps or self.stopped_early:
                        break
                    t0, done = time.perf_counter(), False
                    for loss, real_steps, done in self.window_steps(x, mask, resume=self._window):
                        if done:  # the batch is done: a checkpoint from now on resumes at the next one
                            self._epoch = (start_state, self._epoch[1] + 1)
                        if loss is not None:
                            self._record(loss, real_steps if real_steps is not None else sum(lengths[i] for i in idx),
                                         time.perf_counter() - t0, valid, valid_every, batch_size, bar, callback)
                        if self.step_count >= num_steps or self.stopped_early:
                            break
                        t0 = time.perf_counter()
                    if not done:  # left between two of its windows: a resumed run goes on at the next
                        break
                else:
                    self._epoch = None  # epoch exhausted: the generator's state now starts the next one
                    continue
                break
        finally:
            bar.close()
        return self.history

    def _record(self, loss, real_steps, seconds, valid, valid_every, batch_size, bar, callback):
        """After an update: its history record (loss per real step), validation when due, the bar, the callback."""
        record = {"step": self.step_count, "loss": loss / float(real_steps),
                  "annealing": float(self.annealing(self.step_count - 1)), "seconds": seconds}
        self.history.append(record)
        if valid is not None and valid_every and self.step_count % valid_every == 0:
            record.update(self._validate(valid, batch_size))
        bar.set_postfix_str(f"loss {record['loss']:.4g}" + (f" valid {record['valid_loss']:.4g}"
                            if "valid_loss" in record else ""), refresh=False)
        bar.update(1)
        if callback is not None:
            callback(self, record)

    def _validate(self, valid, batch_size: int) -> dict:
        """Validation loss per step; feeds early stopping, then the schedule (which sets the next lr)."""
        loss = self.loss_per_step(valid, batch_size)
        best = self.early_stopping.update(self.step_count, loss)
        if self.lr_schedule is not None:
            self.optim.step(loss)
        entry = {"step": self.step_count, "loss": loss, "best": best, "lr": self.current_lr()}
        self.valid_history.append(entry)
        return {"valid_loss": loss, "best": best, "lr": entry["lr"]}

    # ------------------------------------------------------------------ state
    def optimizer_state(self) -> dict:
        """ClippedAdam's per-parameter state keyed by the model's own parameter names."""
        return {name: getattr(self.optim.optim_objs[p], "optimizer", self.optim.optim_objs[p]).state_dict()
                for name, p in self.model.named_parameters() if p in self.optim.optim_objs}

    def scheduler_state(self) -> dict:
        """The learning-rate schedule's per-parameter state (empty without a schedule)."""
        if self.lr_schedule is None:
            return {}
        return {name: self.optim.optim_objs[p].state_dict()
                for name, p in self.model.named_parameters() if p in self.optim.optim_objs}

    def load_optimizer_state(self, state: dict, scheduler_state: dict | None = None) -> None:
        scheduler_state = scheduler_state or {}
        for name, p in self.model.named_parameters():
            if name in state:
                self.optim.optim_objs[p] = self.optim._get_optim(p)
                self.optim.grad_clip[p] = self.optim._get_grad_clip(p)
                optim = self.optim.optim_objs[p]
                getattr(optim, "optimizer", optim).load_state_dict(state[name])
                if self.lr_schedule is not None and name in scheduler_state:
                    optim.load_state_dict(scheduler_state[name])

    def state_dict(self) -> dict:
        """Everything needed to continue training exactly: model, optimizer, learning-rate schedule,
        early stopping, step, histories, and the batch order's position."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer_state(),
            "lr_scheduler": self.scheduler_state(),
            "early_stopping": self.early_stopping.state_dict(),
            "optim_args": dict(self.optim_args),
            "step": self.step_count,
            "bad_steps": self.bad_steps,
            "history": list(self.history),
            "valid_history": list(self.valid_history),
            "batch_generator": getattr(self, "generator", None) and self.generator.get_state(),
            "epoch": self._epoch,
            "window": self._window,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.load_optimizer_state(state["optimizer"], state.get("lr_scheduler"))
        if state.get("early_stopping") is not None:
            self.early_stopping.load_state_dict(state["early_stopping"])
        self.step_count = int(state["step"])
        self.bad_steps = int(state.get("bad_steps", 0))
        self.history = list(state.get("history", []))
        self.valid_history = list(state.get("valid_history", []))
        if state.get("batch_generator") is not None:
            self.generator = torch.Generator()
            self.generator.set_state(state["batch_generator"])
        self._epoch = state.get("epoch")
        self._window = state.get("window")


def _check_window(train_window, elbo, parallel) -> int:
    """``train_window`` as an int ``>= 0``; a ``ValueError`` for what windows cannot run with."""
    if isinstance(train_window, bool) or int(train_window) != train_window or int(train_window) < 0:
        raise ValueError(f"train_window (--train-window) must be an integer >= 0 (0: whole sequences), "
                         f"got {train_window!r}")
    if train_window and parallel is not None:
        raise ValueError("train_window (--train-window) is not supported with several processes (torchrun): "
                         "the processes' shares would cut into different numbers of windows")
    if train_window and isinstance(getattr(elbo, "elbo", elbo), RenyiELBO):
        raise ValueError("train_window (--train-window) carries the particles of iwae through the filter: pass "
                         "elbo='iwae' by name (FIVO without resampling inside a window), not a RenyiELBO")
    return int(train_window)


def redraw_parameters(model, seed: int) -> None:
    """Re-draw ``model``'s parameters under ``seed``: seed Pyro (torch, NumPy, Python), then call
    ``reset_parameters()`` of every submodule that has one (``nn.Linear``, ``nn.LSTMCell``, ``nn.LSTM``,
    ...) in module order. Two models of one architecture, however they were made, then hold the same
    parameters. Parameters no module re-draws keep their values (in this library only constant
    initializations, such as the zeros of a global ``raw_scale``)."""
    pyro.set_rng_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()


def fit(model, train, *, num_steps: int = 1000, batch_size: int = 32, guide=None, seed: int | None = None,
        progress: bool = True, valid=None, valid_every: int = 0, annealing_steps: int = 0,
        annealing_start: float = 0.1, **trainer_kwargs) -> Trainer:
    """Train ``model`` on a list of ``(T, D)`` sequences with SVI for ``num_steps`` steps; returns the
    :class:`Trainer` (its ``history`` holds the losses).

    ``seed`` makes the whole run reproducible: the model's parameters are re-drawn under it
    (:func:`redraw_parameters`), then the latent noise and the batch order follow from it, so two
    calls with the same seed, data and architecture end with bitwise-equal parameters even for two
    separately constructed models. Without a seed the model keeps its current parameters and the
    global RNG is used as it stands. ``trainer_kwargs`` go to :class:`Trainer` (``lr``,
    ``clip_norm``, ``elbo``, ``num_particles``, ``patience``, ``lr_schedule``, ...).
    """
    if seed is not None:
        redraw_parameters(model, seed)
    trainer = Trainer(model, guide, annealing=KLAnnealing(annealing_steps, annealing_start), **trainer_kwargs)
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    trainer.fit(train, num_steps, batch_size, valid=valid, valid_every=valid_every, progress=progress,
                generator=generator)
    return trainer
