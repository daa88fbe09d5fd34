"""An independent plain-Pyro Deep Markov Model (Krishnan et al. 2017), the test reference for ``--model dmm``.

Written for tests/test_dmm.py from the paper and the published description of Pyro's DMM example,
not from the library's components and not from the example's source: its own small
``nn.Module`` s, its own reversal of the sequences (``pack_padded_sequence``), its own model and guide.
Sizes default to the example's (z 100, emission 100, transition 200, RNN 600): 725,488 parameters at
88 piano keys. Scales are the unfloored ``softplus`` of the description.

Shapes: ``x: (B, T, X)`` in {0, 1}, ``mask: (B, T)`` bool with each sequence's real steps first.
Sites ``z_{t}`` and ``x_{t}`` for ``t = 0 .. T-1`` inside the plate ``sequences``.
"""

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class Emitter(nn.Module):
    """``p(x_t | z_t) = Bernoulli(sigmoid(W3 relu(W2 relu(W1 z_t + b1) + b2) + b3))``."""

    def __init__(self, input_dim, z_dim, emission_dim):
        super().__init__()
        self.z_to_hidden = nn.Linear(z_dim, emission_dim)
        self.hidden_to_hidden = nn.Linear(emission_dim, emission_dim)
        self.hidden_to_probs = nn.Linear(emission_dim, input_dim)

    def forward(self, z):
        hidden = F.relu(self.hidden_to_hidden(F.relu(self.z_to_hidden(z))))
        return torch.sigmoid(self.hidden_to_probs(hidden))


class GatedTransition(nn.Module):
    """``p(z_t | z_{t-1}) = Normal(loc, scale)``::

        gate = sigmoid(Wg2 relu(Wg1 z + bg1) + bg2),   proposed = Wp2 relu(Wp1 z + bp1) + bp2
        loc = (1 - gate) * (A z + a) + gate * proposed   (A = I, a = 0 at initialisation)
        scale = softplus(Ws relu(proposed) + bs)
    """

    def __init__(self, z_dim, transition_dim):
        super().__init__()
        self.gate_hidden = nn.Linear(z_dim, transition_dim)
        self.gate_out = nn.Linear(transition_dim, z_dim)
        self.mean_hidden = nn.Linear(z_dim, transition_dim)
        self.mean_out = nn.Linear(transition_dim, z_dim)
        self.z_to_loc = nn.Linear(z_dim, z_dim)
        self.scale_out = nn.Linear(z_dim, z_dim)
        nn.init.eye_(self.z_to_loc.weight)
        nn.init.zeros_(self.z_to_loc.bias)

    def forward(self, z_prev):
        gate = torch.sigmoid(self.gate_out(F.relu(self.gate_hidden(z_prev))))
        proposed = self.mean_out(F.relu(self.mean_hidden(z_prev)))
        loc = (1.0 - gate) * self.z_to_loc(z_prev) + gate * proposed
        scale = F.softplus(self.scale_out(F.relu(proposed)))
        return loc, scale


class Combiner(nn.Module):
    """``q(z_t | z_{t-1}, h_t) = Normal(W_mu c + b_mu, softplus(W_s c + b_s))``,
    ``c = (tanh(W z_{t-1} + b) + h_t) / 2`` with ``h_t`` the backward RNN's output at ``t``."""

    def __init__(self, z_dim, rnn_dim):
        super().__init__()
        self.z_to_hidden = nn.Linear(z_dim, rnn_dim)
        self.hidden_to_loc = nn.Linear(rnn_dim, z_dim)
        self.hidden_to_scale = nn.Linear(rnn_dim, z_dim)

    def forward(self, z_prev, h_rnn):
        combined = 0.5 * (torch.tanh(self.z_to_hidden(z_prev)) + h_rnn)
        return self.hidden_to_loc(combined), F.softplus(self.hidden_to_scale(combined))


def reverse_each(x, lengths):
    """Each sequence of ``x: (B, T, D)`` reversed within its own length; the padding keeps its place."""
    out = x.clone()
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = x[b, :n].flip(0)
    return out


class ReferenceDMM(nn.Module):
    """The DMM: gated transition prior from a learned ``z_0``, Bernoulli emitter, and a guide that
    runs a ReLU ``nn.RNN`` (learned ``h_0``) backwards over each sequence and combines its output with
    ``z_{t-1}`` (a learned ``z_q_0`` at the first step)."""

    def __init__(self, input_dim=88, z_dim=100, emission_dim=100, transition_dim=200, rnn_dim=600):
        super().__init__()
        self.emitter = Emitter(input_dim, z_dim, emission_dim)
        self.transition = GatedTransition(z_dim, transition_dim)
        self.combiner = Combiner(z_dim, rnn_dim)
        self.rnn = nn.RNN(input_dim, rnn_dim, num_layers=1, nonlinearity="relu", batch_first=True)
        self.z_0 = nn.Parameter(torch.zeros(z_dim))
        self.z_q_0 = nn.Parameter(torch.zeros(z_dim))
        self.h_0 = nn.Parameter(torch.zeros(1, 1, rnn_dim))
        self.z_dim, self.rnn_dim = z_dim, rnn_dim

    def model(self, x, mask, annealing_factor=1.0):
        pyro.module("reference_dmm", self)
        batch, steps = mask.shape
        z_prev = self.z_0.expand(batch, self.z_dim)
        with pyro.plate("sequences", batch):
            for t in pyro.markov(range(steps)):
                loc, scale = self.transition(z_prev)
                with poutine.scale(scale=annealing_factor):
                    z_t = pyro.sample(f"z_{t}", dist.Normal(loc, scale).mask(mask[:, t, None]).to_event(1))
                pyro.sample(f"x_{t}", dist.Bernoulli(self.emitter(z_t)).mask(mask[:, t, None]).to_event(1),
                            obs=x[:, t])
                z_prev = z_t

    def guide(self, x, mask, annealing_factor=1.0):
        pyro.module("reference_dmm", self)
        batch, steps = mask.shape
        lengths = mask.sum(1).cpu()
        packed = pack_padded_sequence(reverse_each(x, lengths), lengths, batch_first=True, enforce_sorted=False)
        h_0 = self.h_0.expand(1, batch, self.rnn_dim).contiguous()
        rnn_out, _ = pad_packed_sequence(self.rnn(packed, h_0)[0], batch_first=True, total_length=steps)
        rnn_out = reverse_each(rnn_out, lengths)
        z_prev = self.z_q_0.expand(batch, self.z_dim)
        with pyro.plate("sequences", batch):
            for t in pyro.markov(range(steps)):
                loc, scale = self.combiner(z_prev, rnn_out[:, t])
                with poutine.scale(scale=annealing_factor):
                    z_t = pyro.sample(f"z_{t}", dist.Normal(loc, scale).mask(mask[:, t, None]).to_event(1))
                z_prev = z_t
