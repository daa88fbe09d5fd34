"""A tiny training run for the fault tests: trains a small VRNN with :class:`Trainer`, checkpointing
after every step with :func:`save_checkpoint`; ``--resume`` continues from :func:`load_latest`.

    python tests/_train_script.py RUN_DIR --steps M [--seed S] [--resume] [--sleep SECONDS]

At the end it writes ``RUN_DIR/final.pt``: the model's ``state_dict`` and the step reached.
``--sleep`` pauses after each checkpoint so a test can kill the process at a known step.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pyro  # noqa: E402
import torch  # noqa: E402

from pyro_vrnn import VRNN  # noqa: E402
from pyro_vrnn.train.checkpoint import load_latest, save_checkpoint, set_rng_state  # noqa: E402
from pyro_vrnn.train.trainer import KLAnnealing, Trainer  # noqa: E402


def data(seed: int = 123):
    """Twelve variable-length 2-d sequences (lengths 3..8), the same in every process."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3 + i % 6, 2, generator=g).cumsum(0) * 0.3 for i in range(12)]


def build(seed: int):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    model = VRNN(2, 2, 6, feature_dims=(6,), hidden_dims=(6,))
    trainer = Trainer(model, lr=0.02, annealing=KLAnnealing(num_steps=5, start=0.2))
    return model, trainer


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    model, trainer = build(args.seed)
    config = {"model": "vrnn", "seed": args.seed, "batch_size": args.batch_size}
    generator = torch.Generator().manual_seed(args.seed)
    if args.resume:
        payload, path = load_latest(args.run_dir)
        trainer.load_state_dict(payload["trainer"])
        set_rng_state(payload["rng"])
        generator = trainer.generator
        print(f"resumed from {path.name} at step {trainer.step_count}", flush=True)

    def checkpoint(trainer, record):
        save_checkpoint(args.run_dir, trainer=trainer, config=config)
        if args.sleep:
            time.sleep(args.sleep)

    trainer.fit(data(), args.steps, args.batch_size, progress=False, generator=generator, callback=checkpoint)
    torch.save({"step": trainer.step_count, "model": model.state_dict()}, args.run_dir / "final.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
