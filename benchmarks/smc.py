"""Sequential Monte Carlo against importance sampling on a trained model's test split: the
log-likelihood per time step, its spread over seeds, the effective sample size and the time of each.

Both estimators see the same model, sequences, batches and particle count ``K``; IS weights whole
sequences (``pyro_vrnn.importance_estimate``), SMC resamples when the ESS falls below ``K / 2``
(``pyro_vrnn.smc_estimate``, the guide as proposal). One seed is one evaluation of both
(:func:`pyro_vrnn.report.evaluation.evaluate_sequences` with ``estimators=("is", "smc")``); the spread over
seeds is the Monte-Carlo spread of each estimator's per-step figure on the same data.

    pyro-vrnn train --model vrnn-normal --data music:../shared/data/music/jsb_chorales.pickle --steps 1500 \\
        --batch-size 16 --bucket-by-length --lr 3e-3 --threads 1 --out runs/jsb-vrnn-elbo
    python benchmarks/smc.py runs/jsb-vrnn-elbo --particles 100 1000 --seeds 5 --max-sequences 24 \\
        --json benchmarks/results/smc_jsb.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_records  # noqa: E402

from pyro_vrnn.report.evaluation import evaluate_sequences  # noqa: E402
from pyro_vrnn.train.runs import load_data, load_run  # noqa: E402


def evenly_spaced(sequences, count):
    if count is None or count >= len(sequences):
        return list(sequences)
    stride = len(sequences) / count
    return [sequences[int(i * stride)] for i in range(count)]


def spread(values):
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run folder (pyro-vrnn train --out ...)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--particles", type=int, nargs="+", default=[100, 1000], help="K values")
    parser.add_argument("--seeds", type=int, default=5, help="evaluations per K (seeds 0..N-1)")
    parser.add_argument("--max-sequences", type=int, default=None,
                        help="evaluate N sequences, evenly spaced through the split (the same ones every time)")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences evaluated together")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pyro.enable_validation(False)
    model, config, _, payload = load_run(args.run_dir, "cpu")
    sequences = evenly_spaced(load_data(config).split(args.split), args.max_sequences)
    records = []
    for k in args.particles:
        per_seed = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            result = evaluate_sequences(model, sequences, num_particles=k, batch_size=args.batch_size, seed=seed,
                                        estimators=("is", "smc"))
            per_seed.append(result)
            print(f"K={k} seed={seed}: IS {-result['log_likelihood_per_step']:.4f} (ESS {result['ess_mean']:.1f}, "
                  f"{result['seconds']:.1f} s)  SMC {-result['smc_log_likelihood_per_step']:.4f} "
                  f"(ESS {result['smc_ess_mean']:.1f}, min {result['smc_ess_min']:.1f}, resampled after "
                  f"{100 * result['smc_resampling_rate']:.0f}% of steps, {result['smc_seconds']:.1f} s) "
                  f"[{time.perf_counter() - start:.0f} s]", flush=True)
        records.append({
            "num_particles": k,
            "nll_per_step": {"elbo": spread([-r["elbo_per_step"] for r in per_seed]),
                             "is": spread([-r["log_likelihood_per_step"] for r in per_seed]),
                             "smc": spread([-r["smc_log_likelihood_per_step"] for r in per_seed])},
            "ess": {"is_mean_per_sequence": spread([r["ess_mean"] for r in per_seed]),
                    "smc_mean_over_steps": spread([r["smc_ess_mean"] for r in per_seed]),
                    "smc_min_over_steps": spread([r["smc_ess_min"] for r in per_seed])},
            "smc_resampling_rate": spread([r["smc_resampling_rate"] for r in per_seed]),
            "seconds": {"is_and_elbo": spread([r["seconds"] for r in per_seed]),
                        "smc": spread([r["smc_seconds"] for r in per_seed])},
        })
    setting = {"run_dir": str(args.run_dir), "model": config["model"], "train_steps": payload["step"],
               "data": config["data"], "split": args.split, "num_sequences": len(sequences),
               "num_steps": int(sum(len(s) for s in sequences)), "batch_size": args.batch_size,
               "seeds": args.seeds, "threads": args.threads,
               "units": "negative log-likelihood in nats per time step (lower is better); spread over seeds"}
    for record in records:
        record.update(setting)
    write_records(args.json, records, "smc.py", argv, torch.device("cpu"))
    return records


if __name__ == "__main__":
    main()
