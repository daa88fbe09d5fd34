"""What modelling the keys of a step jointly costs: the emission alone and a whole training update.

Three densities over 88 binary keys, each given the decoder input ``u`` of a music-sized VRNN:

- **bernoulli**: independent keys (``BernoulliEmission``);
- **autoregressive**: ``AutoregressiveBernoulliEmission``, a one-hidden-layer MADE plus a direct
  lower-triangular term, all conditionals in one pass (two masked matrix products);
- **nade**: NADE's weight sharing (Larochelle & Murray 2011, as in RNN-NADE), written here as the
  reference: the hidden state of key ``d`` is ``sigmoid(c + W_{:, <d} x_{<d})``, a ``(D, H)`` tensor per
  draw (an exclusive cumulative sum over keys).

Sweep 1 times the emission's log-density and its gradient on a window of ``--window`` steps of a batch
of ``--batch`` pieces; sweep 2 a whole windowed training update of the ``music-ar`` sized VRNN with the
Bernoulli and the autoregressive emission (``Trainer.window_steps``). Interleaved, medians.

    python benchmarks/emission_cost.py --json benchmarks/results/emission_cost_cpu.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyro
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, interleaved, median, setup_device, write_records  # noqa: E402

from pyro_vrnn import VRNN  # noqa: E402
from pyro_vrnn.components import AutoregressiveBernoulliEmission, BernoulliEmission  # noqa: E402
from pyro_vrnn.components.nn import MLP  # noqa: E402
from pyro_vrnn.train.trainer import Trainer  # noqa: E402


class NADEReference(nn.Module):
    """NADE with biases from ``u``: ``l_d = b_d(u) + V_d . sigmoid(c(u) + sum_{j<d} W_{:, j} x_j)``."""

    def __init__(self, in_dim, x_dim, hidden_dims, nade_dim):
        super().__init__()
        self.net = MLP(in_dim, hidden_dims)
        self.bias = nn.Linear(self.net.out_dim, x_dim)
        self.hidden_bias = nn.Linear(self.net.out_dim, nade_dim)
        self.in_weight = nn.Parameter(torch.randn(nade_dim, x_dim) / x_dim ** 0.5)
        self.out_weight = nn.Parameter(torch.randn(x_dim, nade_dim) / nade_dim ** 0.5)

    def log_prob(self, u, x):
        hidden = self.net(u)
        contribution = x.unsqueeze(-1) * self.in_weight.t()  # (..., D, H)
        before = F.pad(contribution.cumsum(-2)[..., :-1, :], (0, 0, 1, 0))
        logits = self.bias(hidden) + (torch.sigmoid(self.hidden_bias(hidden).unsqueeze(-2) + before)
                                      * self.out_weight).sum(-1)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def emission_case(kind, args, device):
    torch.manual_seed(args.seed)
    in_dim = args.h_dim + args.feature_dim
    u = torch.randn(args.window, args.batch, in_dim, device=device)
    x = (torch.rand(args.window, args.batch, 88, device=device) < 0.06).float()
    if kind == "nade":
        module = NADEReference(in_dim, 88, (args.hidden_dim,), args.hidden_dim).to(device)
        log_prob = lambda: module.log_prob(u, x)  # noqa: E731
    else:
        cls = BernoulliEmission if kind == "bernoulli" else AutoregressiveBernoulliEmission
        module = cls(in_dim, 88, (args.hidden_dim,)).to(device)
        log_prob = lambda: module(u).log_prob(x)  # noqa: E731

    def run():
        module.zero_grad(set_to_none=True)
        log_prob().sum().backward()

    return run


def update_case(emission, args, device):
    pyro.clear_param_store()
    torch.manual_seed(args.seed)
    model = VRNN(88, args.z_dim, args.h_dim, emission, feature_dims=(args.feature_dim,),
                 hidden_dims=(args.hidden_dim,)).to(device)
    x = (torch.rand(args.batch, args.window, 88, device=device) < 0.06).float()
    mask = torch.ones(args.batch, args.window, dtype=torch.bool, device=device)
    trainer = Trainer(model, lr=1e-4, train_window=args.window)

    def run():
        for loss, _, _ in trainer.window_steps(x, mask):
            assert loss is not None

    return run


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), default_repeats=10)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--h-dim", type=int, default=256, help="the music-ar preset's LSTM width")
    parser.add_argument("--z-dim", type=int, default=32)
    parser.add_argument("--feature-dim", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=128, help="the emission's layer and H of MADE/NADE")
    args = parser.parse_args(argv)
    device = setup_device(args)
    cases = {f"emission {kind}": emission_case(kind, args, device) for kind in ("bernoulli", "autoregressive", "nade")}
    cases.update({f"update {kind}": update_case(kind, args, device) for kind in ("bernoulli", "autoregressive")})
    times = interleaved(cases, device, args.repeats, args.warmup)
    records = []
    for sweep in ("emission", "update"):
        base = median(times[f"{sweep} bernoulli"])
        for name in (n for n in cases if n.startswith(sweep)):
            ms = median(times[name])
            records.append({"sweep": sweep, "emission": name.split()[1], "ms": ms, "x_bernoulli": ms / base,
                            "window": args.window, "batch": args.batch, "h_dim": args.h_dim,
                            "hidden_dim": args.hidden_dim, "repeats": args.repeats})
    print(f"{'sweep':<9} {'emission':<15} {'ms':>9} {'x bernoulli':>12}")
    for r in records:
        print(f"{r['sweep']:<9} {r['emission']:<15} {r['ms']:>9.1f} {r['x_bernoulli']:>12.2f}")
    write_records(args.json, records, "emission_cost.py", argv, device)
    return records


if __name__ == "__main__":
    main()
