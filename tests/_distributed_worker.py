"""One process of a two-process data-parallel test (``tests/test_distributed.py`` starts both, with
the environment torchrun would set)::

    RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=p python tests/_distributed_worker.py OUT

It trains, each process on its share of every batch, and writes ``OUT.rank{r}.pt``:

- ``vrnn``: a small VRNN (float32) after ``VRNN_STEPS`` steps: its parameters and whether all
  processes hold bit-identical ones (:meth:`DataParallel.parameters_agree`);
- ``evaluation``, ``smc``: that VRNN's importance-sampled and SMC evaluation of 5 sequences, batches
  dealt to the two processes and the per-sequence results gathered;
- ``rnn``: an RNN in float64 after ``RNN_STEPS`` steps on 9 sequences in batches of 4 (each epoch's
  last batch has one sequence, so one process has none): its parameters and per-step losses;
- ``run``: ``train_run`` with validation, early-stopping bookkeeping and a plateau LR schedule, each
  process given its own run folder ``OUT.run{r}``: only rank 0's may exist afterwards.
"""

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pyro  # noqa: E402
import torch  # noqa: E402

from pyro_vrnn import RNN, VRNN  # noqa: E402
from pyro_vrnn.train.trainer import KLAnnealing, Trainer  # noqa: E402

VRNN_STEPS = 5
RNN_STEPS = 7
RNN_BATCH = 4


def sequences(count: int, dim: int, dtype=torch.float32, seed: int = 7):
    """``count`` variable-length random walks (lengths 3..8), the same in every process."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(3 + i % 6, dim, generator=g, dtype=torch.float64).cumsum(0) * 0.3).to(dtype)
            for i in range(count)]


def rnn_trainer(parallel=None):
    """The float64 RNN and its trainer, built alike in every process."""
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    model = RNN(2, 6, feature_dims=(5,), hidden_dims=(5,)).double()
    return model, Trainer(model, lr=0.05, parallel=parallel)


def train_rnn(parallel=None):
    """``(parameters, per-step losses)`` after :data:`RNN_STEPS` steps."""
    model, trainer = rnn_trainer(parallel)
    trainer.fit(sequences(9, 2, torch.float64), RNN_STEPS, RNN_BATCH, progress=False,
                generator=torch.Generator().manual_seed(3))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, [r["loss"] for r in trainer.history]


def vrnn():
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    return VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,))


def evaluate(model, parallel):
    from pyro_vrnn.report.evaluation import evaluate_sequences

    return evaluate_sequences(model, sequences(5, 2, seed=11), num_particles=6, batch_size=2, seed=0,
                              parallel=parallel, estimators=("is", "smc"))


def train_vrnn(parallel):
    model = vrnn()
    parallel.broadcast_parameters(model)
    trainer = Trainer(model, lr=0.02, annealing=KLAnnealing(num_steps=3, start=0.2), parallel=parallel)
    trainer.fit(sequences(10, 2), VRNN_STEPS, 5, progress=False, generator=torch.Generator().manual_seed(1))
    return model, parallel.parameters_agree(model)


def train_a_run(folder: str, parallel) -> None:
    from pyro_vrnn.train.runs import make_config, train_run
    from pyro_vrnn.models.zoo import model_spec

    spec = model_spec("vrnn-normal", 88, kind="music", h_dim=6, z_dim=2, feature_dims=(6,), hidden_dims=(6,))
    options = {"num_train": 7, "num_valid": 3, "num_test": 2, "lengths": (4, 9)}
    config = make_config(spec, "music-synthetic", data_options=options, seed=0, steps=4, batch_size=3,
                         valid_every=2, checkpoint_every=2, patience=5, lr_schedule="plateau")
    train_run(config, folder, device="cpu", progress=False, parallel=parallel)


def main(out: str) -> int:
    from pyro_vrnn.train import distributed

    torch.set_num_threads(1)
    parallel, _ = distributed.start("cpu", timeout_minutes=1.0)
    try:
        model, agree = train_vrnn(parallel.with_seed(0))
        evaluation = evaluate(model, parallel)
        rnn, losses = train_rnn(parallel.with_seed(0))
        train_a_run(f"{out}.run{parallel.rank}", parallel)
        torch.save({"vrnn": {k: v.detach().clone() for k, v in model.state_dict().items()}, "agree": agree,
                    "evaluation": evaluation["per_sequence"], "smc": evaluation["smc_per_sequence"], "rnn": rnn,
                    "rnn_losses": losses}, f"{out}.rank{parallel.rank}.pt")
    finally:
        distributed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
