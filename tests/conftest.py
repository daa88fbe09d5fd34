import pyro
import pytest
import torch

# The suite's models are tiny: one thread is as fast as two and immune to oversubscription.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_validate():
    """Every test starts from a known seed with Pyro's validation on."""
    pyro.set_rng_seed(0)
    pyro.enable_validation(True)
    yield
