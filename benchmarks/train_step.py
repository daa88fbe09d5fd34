"""Time one training step of our Pyro VRNN against two plain-PyTorch VRNNs, in one interleaved run.

The Pyro side is what the ``Trainer`` runs by default: ``SequenceELBO`` (``pyro_vrnn.infer``) on
``vrnn.model``/``vrnn.guide``, which equals ``Trace_ELBO``; ``--pyro-elbo trace`` times stock
``Trace_ELBO`` on the same programs instead. The references (``reference_vrnn.py``) run the same
networks with the same weights and the same objective, the single-sample ``Trace_ELBO`` surrogate
with reparameterized ``z``: ``torch`` is the textbook per-step loop, ``torch_hoisted`` the hand-tuned
one (prior and emission batched over time). Before timing, loss and gradients of all three are
checked equal on the same noise. A step is ``zero grads -> loss -> backward`` (add ``--optimizer``
to include an Adam step on every side); the sides are timed interleaved after warm-up and the
medians and the ratios (Pyro over each reference) are printed and written as JSON.

    python benchmarks/train_step.py --device cpu --json benchmarks/results/train_step_cpu.json
    python benchmarks/train_step.py --device cuda --sizes small large paper --json ...

Sizes: ``small`` x 3 / h 64 / z 16 / batch 32 / T 50, ``large`` x 200 / h 256 / z 64 / batch 128 /
T 50 (MLP widths = h, one hidden layer) and ``paper`` (GPU): LSTM 2000, four 600-unit layers in
every network, x 200, z 200, batch 128, T 40. For each size the script also reports the matmul
FLOPs of a step (``torch.utils.flop_counter``) and the achieved FLOP/s of the Pyro step; on CUDA
against the card's dense TF32 peak (``--peak-tflops`` to override the built-in table).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyro
import torch
from pyro.infer import Trace_ELBO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (add_common_args, interleaved, median, ratio_stats,  # noqa: E402
                     setup_device, sync, write_records)
from reference_vrnn import TorchVRNNLoss  # noqa: E402

from pyro_vrnn import VRNN  # noqa: E402
from pyro_vrnn.infer import SequenceELBO  # noqa: E402

ELBOS = {"engine": SequenceELBO, "trace": Trace_ELBO}

SIZES = {
    "tiny": dict(x_dim=3, h_dim=8, z_dim=2, batch=4, steps=5, feature_dims=(8,), hidden_dims=(8,)),  # smoke test
    "small": dict(x_dim=3, h_dim=64, z_dim=16, batch=32, steps=50, feature_dims=(64,), hidden_dims=(64,)),
    "large": dict(x_dim=200, h_dim=256, z_dim=64, batch=128, steps=50, feature_dims=(256,), hidden_dims=(256,)),
    "paper": dict(x_dim=200, h_dim=2000, z_dim=200, batch=128, steps=40, feature_dims=(600,) * 4,
                  hidden_dims=(600,) * 4),
}

# dense (non-sparse) TF32 tensor-core peaks in TFLOP/s, from NVIDIA's data sheets
TF32_PEAK_TFLOPS = {"H100 SXM": 494.7, "H100 NVL": 417.5, "H100 PCIe": 378.0, "H100": 494.7, "H200": 494.7,
                    "A100": 156.0, "L40S": 183.0, "L4": 60.0, "A10": 62.5}


def peak_tflops(device, override):
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key in sorted(TF32_PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            return TF32_PEAK_TFLOPS[key]
    return None


def build(size: dict, device, seed: int):
    pyro.clear_param_store()
    torch.manual_seed(seed)
    vrnn = VRNN(size["x_dim"], size["z_dim"], size["h_dim"], feature_dims=size["feature_dims"],
                hidden_dims=size["hidden_dims"]).to(device)
    x = torch.randn(size["batch"], size["steps"], size["x_dim"], device=device)
    return vrnn, x


def grads_of(params):
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]


def check_equal(vrnn, x, reference, params, seed: int, elbo) -> dict:
    """Loss and gradients of the two sides on the same noise; returns the largest differences."""
    for p in params:
        p.grad = None
    torch.manual_seed(seed)
    pyro_loss = elbo.loss_and_grads(vrnn.model, vrnn.guide, x)
    pyro_grads = grads_of(params)
    for p in params:
        p.grad = None
    torch.manual_seed(seed)
    ref_loss = reference(x)
    ref_loss.backward()
    ref_grads = grads_of(params)
    for p in params:
        p.grad = None
    loss_diff = abs(pyro_loss - ref_loss.item()) / max(1.0, abs(ref_loss.item()))
    grad_diff = max(((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item()
                    for a, b in zip(pyro_grads, ref_grads))
    return {"loss_rel_diff": loss_diff, "grad_rel_diff": grad_diff}


def step_flops(reference, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        reference(x).backward()
    return int(counter.get_total_flops())


def run_size(name: str, args, device) -> dict:
    size = SIZES[name]
    vrnn, x = build(size, device, args.seed)
    params = list(vrnn.parameters())
    references = {"torch": TorchVRNNLoss(vrnn, loop="per_step"), "torch_hoisted": TorchVRNNLoss(vrnn, loop="hoisted")}
    elbo = ELBOS[args.pyro_elbo](max_plate_nesting=1)
    tol = 1e-3 if device.type == "cuda" else 1e-4
    checks = {}
    for label, reference in references.items():
        check = checks[label] = check_equal(vrnn, x, reference, params, args.seed, elbo)
        if max(check.values()) > tol:
            raise SystemExit(f"{name}: reference {label} and Pyro step differ: {check}")
    flops = step_flops(references["torch"], x)
    for p in params:
        p.grad = None

    optimizer = torch.optim.Adam(params, lr=1e-4) if args.optimizer else None

    def finish():
        if optimizer is not None:
            optimizer.step()
        for p in params:
            p.grad = None

    def torch_step(reference):
        def step():
            loss = reference(x)
            loss.backward()
            loss.item()  # the Pyro step returns a float: the same host sync on every side
            finish()
        return step

    def pyro_step():
        elbo.loss_and_grads(vrnn.model, vrnn.guide, x)
        finish()

    fns = {"pyro": pyro_step, **{label: torch_step(ref) for label, ref in references.items()}}
    if args.validation == "both":
        def pyro_validated_step():
            with pyro.validation_enabled(True):
                pyro_step()
        fns["pyro_validated"] = pyro_validated_step
    with pyro.validation_enabled(args.validation == "on"):
        times = interleaved(fns, device, args.repeats, args.warmup)
    sync(device)
    hoisted = {f"{k}_hoisted": v for k, v in ratio_stats(times["pyro"], times["torch_hoisted"]).items()}
    record = {"size": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
              "pyro_elbo": args.pyro_elbo, "torch_ms": median(times["torch"]),
              "torch_hoisted_ms": median(times["torch_hoisted"]), "pyro_ms": median(times["pyro"]),
              **ratio_stats(times["pyro"], times["torch"]), **hoisted,
              "pyro_validation": args.validation == "on",
              "optimizer_step": bool(args.optimizer), "repeats": args.repeats,
              **{f"{k}_vs_{label}": v for label, check in checks.items() for k, v in check.items()},
              "step_gflop": flops / 1e9, "pyro_tflops_per_s": flops / (median(times["pyro"]) * 1e-3) / 1e12,
              "torch_tflops_per_s": flops / (median(times["torch"]) * 1e-3) / 1e12}
    if "pyro_validated" in times:
        record["pyro_validated_ms"] = median(times["pyro_validated"])
        record["ratio_validated"] = record["pyro_validated_ms"] / record["torch_ms"]
    peak = peak_tflops(device, args.peak_tflops)
    if peak:
        record["peak_tf32_tflops"] = peak
        record["pyro_fraction_of_peak"] = record["pyro_tflops_per_s"] / peak
    record["raw_ms"] = {k: v for k, v in times.items()}
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, default_repeats=30)
    parser.add_argument("--sizes", nargs="+", default=["large", "small"], choices=sorted(SIZES))
    parser.add_argument("--pyro-elbo", default="engine", choices=sorted(ELBOS),
                        help="the Pyro side: the Trainer's default SequenceELBO (engine) or stock Trace_ELBO")
    parser.add_argument("--validation", default="off", choices=["off", "on", "both"],
                        help="Pyro validation during the timed Pyro step (default off; 'both' adds a "
                             "validated Pyro column)")
    parser.add_argument("--optimizer", action="store_true", help="include an Adam step on both sides")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense peak, TFLOP/s")
    args = parser.parse_args(argv)
    device = setup_device(args)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    records = []
    for name in args.sizes:
        record = run_size(name, args, device)
        records.append(record)
        extra = (f"  pyro+validation {record['pyro_validated_ms']:.2f} ms ({record['ratio_validated']:.2f}x)"
                 if "pyro_validated_ms" in record else "")
        print(f"{name:6s} torch {record['torch_ms']:8.2f} ms  hoisted {record['torch_hoisted_ms']:8.2f} ms  "
              f"pyro {record['pyro_ms']:8.2f} ms  ratio {record['ratio']:.3f} (pairs: median "
              f"{record['pair_ratio_median']:.3f}, {record['pair_ratio_min']:.3f}-{record['pair_ratio_max']:.3f})  "
              f"vs hoisted {record['ratio_hoisted']:.3f} (pairs: median {record['pair_ratio_median_hoisted']:.3f})"
              f"{extra}  "
              f"[{record['step_gflop']:.2f} GFLOP/step, pyro {record['pyro_tflops_per_s'] * 1e3:.1f} GFLOP/s"
              + (f", {100 * record['pyro_fraction_of_peak']:.1f}% of TF32 peak" if "pyro_fraction_of_peak" in record
                 else "") + "]", flush=True)
    write_records(args.json, records, "train_step.py", argv, device)
    return records


if __name__ == "__main__":
    main()
