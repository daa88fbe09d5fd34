"""VRNNs trained with the ELBO, IWAE and FIVO on the same data, budget and seed, each evaluated by the
same estimators: ELBO, importance sampling and SMC with K particles from its own guide.

Each objective trains a fresh ``VRNN(x_dim, 16, 64, emission="bernoulli")`` (the seed sizes) with the
library's :class:`~pyro_vrnn.train.trainer.Trainer` (``elbo="trace"``, ``"iwae"``, ``"fivo"``; the last two
with ``--train-particles`` K), the same batches (bucketed by length, seed 0), learning rate and steps.
The CLI equivalent of one row is ``pyro-vrnn train --model vrnn-normal --elbo fivo --train-particles 4
...`` (``--train-particles`` comes with the training-loop work). Results go to a JSON file.

    python benchmarks/fivo_vs_elbo.py --data music:../shared/data/music/jsb_chorales.pickle --steps 500 \\
        --train-particles 4 --eval-particles 100 --json benchmarks/results/fivo_vs_elbo_jsb.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_records  # noqa: E402

from pyro_vrnn import VRNN  # noqa: E402
from pyro_vrnn.data import load_dataset  # noqa: E402
from pyro_vrnn.report.evaluation import evaluate_sequences  # noqa: E402
from pyro_vrnn.train.trainer import Trainer  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a dataset spec, e.g. music:PATH")
    parser.add_argument("--objectives", nargs="+", default=["trace", "iwae", "fivo"])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--train-particles", type=int, default=4, help="K of iwae and fivo")
    parser.add_argument("--eval-particles", type=int, default=100)
    parser.add_argument("--max-test-sequences", type=int, default=None,
                        help="evaluate N test sequences, evenly spaced through the split [default: all]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pyro.enable_validation(False)
    data = load_dataset(args.data)
    emission = "bernoulli" if data.kind == "music" else "normal"
    test = data.test
    if args.max_test_sequences is not None and args.max_test_sequences < len(test):
        test = [test[int(i * len(test) / args.max_test_sequences)] for i in range(args.max_test_sequences)]
    records = []
    for objective in args.objectives:
        pyro.set_rng_seed(args.seed)
        model = VRNN(data.x_dim, 16, 64, emission=emission)
        k = 1 if objective == "trace" else args.train_particles
        trainer = Trainer(model, lr=args.lr, elbo=objective, num_particles=k)
        start = time.perf_counter()
        trainer.fit(data.train, args.steps, args.batch_size, progress=False, bucket_by_length=True,
                    generator=torch.Generator().manual_seed(args.seed))
        train_seconds = time.perf_counter() - start
        model.eval()
        result = evaluate_sequences(model, test, num_particles=args.eval_particles, seed=args.seed,
                                    estimators=("is", "smc"))
        record = {"objective": objective, "train_particles": k, "train_steps": trainer.step_count,
                  "train_seconds": train_seconds,
                  "final_train_loss": sum(r["loss"] for r in trainer.history[-50:]) / len(trainer.history[-50:]),
                  "eval_particles": args.eval_particles, "num_sequences": result["num_sequences"],
                  "num_steps": result["num_steps"],
                  "nll_per_step": {"elbo": -result["elbo_per_step"], "is": -result["log_likelihood_per_step"],
                                   "smc": -result["smc_log_likelihood_per_step"]},
                  "nll_per_step_se": {"elbo": result["elbo_per_step_se"], "is": result["log_likelihood_per_step_se"],
                                      "smc": result["smc_log_likelihood_per_step_se"]},
                  "is_ess_mean": result["ess_mean"], "smc_ess_mean": result["smc_ess_mean"],
                  "smc_resampling_rate": result["smc_resampling_rate"],
                  "eval_seconds": {"is": result["seconds"], "smc": result["smc_seconds"]},
                  "data": args.data, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                  "seed": args.seed, "threads": args.threads}
        records.append(record)
        nll = record["nll_per_step"]
        print(f"{objective} (K={k}): train {train_seconds:.0f} s; test NLL per step: -ELBO {nll['elbo']:.4f}, "
              f"IS {nll['is']:.4f}, SMC {nll['smc']:.4f} (K={args.eval_particles})", flush=True)
    write_records(args.json, records, "fivo_vs_elbo.py", argv, torch.device("cpu"))
    return records


if __name__ == "__main__":
    main()
