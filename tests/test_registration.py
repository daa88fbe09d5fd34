"""Parameters the user replaces, loads or assigns are the ones that train; a model that has run pickles.

Issue 23: ``pyro.module(name, self)`` kept the tensors it first saw, so after ``m.emission = ...`` or
``m.load_state_dict(sd, assign=True)`` the trainer stepped the old tensors and the new ones never moved.
"""

import pickle

import pyro
import pytest
import torch

from pyro_vrnn import VRNN, Trainer, importance_log_likelihood
from pyro_vrnn.components.emissions import GaussianEmission


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 3, generator=g)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    return x, mask


def _model():
    torch.manual_seed(0)
    return VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,))


def _steps_move_exactly(m, trainer, old, x, mask):
    """Two steps move every current parameter and none of ``old``; the store holds the current ones."""
    before = [p.detach().clone() for p in m.parameters()]
    old_before = [p.detach().clone() for p in old]
    for _ in range(2):
        trainer.step(x, mask)
    moved = [not torch.equal(a, p.detach()) for a, p in zip(before, m.parameters())]
    assert sum(moved) == len(before)  # every parameter (all of them) trained
    assert all(torch.equal(a, p.detach()) for a, p in zip(old_before, old))  # the old ones did not
    store = pyro.get_param_store()
    prefix = m.pyro_name + "$$$"
    assert {store.param_name(p) for p in m.parameters()} == {prefix + n for n, _ in m.named_parameters()}
    assert all(store.param_name(p) is None for p in old)  # not in the store, so not in SVI's step
    assert all(p not in trainer.optim.optim_objs or p.grad is None or not p.grad.any() for p in old)


def test_a_replaced_emission_is_the_one_that_trains():
    x, mask = _data()
    m = _model()
    trainer = Trainer(m, lr=1e-2)
    trainer.step(x, mask)
    old = list(m.emission.parameters())
    m.emission = GaussianEmission(8 + 8, 3, hidden_dims=(8,))
    new = list(m.emission.parameters())
    assert len(new) == 6
    _steps_move_exactly(m, trainer, old, x, mask)


def test_parameters_loaded_with_assign_are_the_ones_that_train():
    x, mask = _data()
    m = _model()
    trainer = Trainer(m, lr=1e-2)
    trainer.step(x, mask)
    old = list(m.parameters())
    other = VRNN(3, 2, 8, feature_dims=(8,), hidden_dims=(8,))
    m.load_state_dict(other.state_dict(), assign=True)
    assert len(old) == 26 and not any(p is q for p, q in zip(old, m.parameters()))
    _steps_move_exactly(m, trainer, old, x, mask)


@pytest.mark.parametrize("dump", ["pickle", "torch.save"])
def test_a_model_that_has_run_pickles_and_gives_the_same_outputs(dump, tmp_path):
    x, mask = _data()
    m = _model()
    Trainer(m, lr=1e-2).step(x, mask)
    if dump == "pickle":
        copy = pickle.loads(pickle.dumps(m))
    else:
        torch.save(m, tmp_path / "model.pt")
        copy = torch.load(tmp_path / "model.pt", weights_only=False)
    assert copy.pyro_name != m.pyro_name
    for a, b in zip(m.state_dict().values(), copy.state_dict().values()):
        assert torch.equal(a, b)
    results = []
    for model in (m, copy):
        torch.manual_seed(4)
        results.append(importance_log_likelihood(model.model, model.guide, x, mask, num_particles=5))
    assert torch.isfinite(results[0]).all() and torch.equal(results[0], results[1])
    Trainer(copy, lr=1e-2).step(x, mask)  # the copy trains under its own name
