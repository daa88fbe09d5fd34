import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_validate():
    """Every test starts from a known seed with Pyro's validation on."""
    pyro.set_rng_seed(0)
    pyro.enable_validation(True)
    yield
