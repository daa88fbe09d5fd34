"""No library function changes the caller's global random state (issue 23): evaluation and sampling
seed their work and give the generators back as they found them."""

import random

import numpy as np
import pyro
import pytest
import torch

from pyro_vrnn import VRNN
from pyro_vrnn.report.evaluation import evaluate_sequences
from pyro_vrnn.report.sampling import generate_samples


def _draws():
    return torch.rand(4), np.random.rand(3), random.random()


def _model():
    torch.manual_seed(0)
    return VRNN(2, 2, 8, feature_dims=(8,), hidden_dims=(8,))


@pytest.mark.parametrize("work", ["evaluate_sequences", "evaluate_sequences_smc", "generate_samples"])
def test_the_next_draws_after_seeded_work_are_those_without_it(work):
    m = _model()
    sequences = [torch.randn(5, 2), torch.randn(3, 2)]
    run = {
        "evaluate_sequences": lambda: evaluate_sequences(m, sequences, num_particles=3, seed=0),
        "evaluate_sequences_smc": lambda: evaluate_sequences(m, sequences, num_particles=3, seed=0,
                                                             estimators=("is", "smc")),
        "generate_samples": lambda: generate_samples(m, None, "synthetic", 2, 4, seed=0),
    }[work]
    pyro.set_rng_seed(123)
    expected = _draws()
    pyro.set_rng_seed(123)
    first = run()
    got = _draws()
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    pyro.set_rng_seed(999)  # a different caller state: the seeded work gives the same numbers
    second = run()
    if work.startswith("evaluate"):
        assert first["log_likelihood"] == second["log_likelihood"]
    else:
        assert torch.equal(first, second)


def test_seeded_restores_the_state_when_the_block_raises():
    from pyro_vrnn.train.checkpoint import seeded  # here, so that the tests above run on code without it
    pyro.set_rng_seed(5)
    expected = torch.rand(3)
    pyro.set_rng_seed(5)
    with pytest.raises(RuntimeError):
        with seeded(0):
            torch.rand(10)
            raise RuntimeError("inside")
    assert torch.equal(torch.rand(3), expected)
