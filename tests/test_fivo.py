"""FIVO (pyro_vrnn.infer.fivo): a bound between log p(x) and IWAE's on long sequences, gradients to
the model and the guide, and training through the Trainer by name."""

import pyro
import pytest
import torch
from pyro.infer import RenyiELBO
from test_linear_gaussian_exactness import exact_log_likelihood
from test_smc import lgssm

from pyro_vrnn import FIVO, VRNN
from pyro_vrnn.train.trainer import Trainer, make_elbo


def test_fivo_loss_lies_between_exact_nll_and_iwae_loss_on_long_sequences():
    """Same proposal (the guide is the prior), same K: resampling keeps FIVO near -log p(x) where
    the whole-sequence weights of IWAE degenerate."""
    model = lgssm(widen=1.0)
    with torch.no_grad():
        model.emission.raw_scale.fill_(1.0)
        x = model.generate(4, 100)
    exact_nll = -float(exact_log_likelihood(model, x).sum())
    fivo = [FIVO(num_particles=8).loss(model.model, model.guide, x) for _ in range(3)]
    iwae = RenyiELBO(alpha=0.0, num_particles=8, vectorize_particles=True, max_plate_nesting=1)
    iwae = [iwae.loss(model.model, model.guide, x) for _ in range(3)]
    assert exact_nll < sum(fivo) / 3, (exact_nll, fivo)  # a bound: above -log p(x) on average
    assert max(fivo) < min(iwae), (fivo, iwae)


def test_fivo_gradients_reach_every_part_of_model_and_guide():
    model = VRNN(2, 2, 8, feature_dims=(8,), hidden_dims=(8,))
    x = torch.randn(3, 6, 2)
    loss = FIVO(num_particles=4).loss_and_grads(model.model, model.guide, x)
    assert isinstance(loss, float)
    for part in ("phi_x", "phi_z", "transition", "prior", "emission", "posterior"):
        grads = [p.grad for p in getattr(model, part).parameters()]
        assert all(g is not None for g in grads) and any(bool(g.abs().sum() > 0) for g in grads), part


def test_training_with_fivo_by_name_lowers_the_fivo_loss():
    with torch.no_grad():
        x = lgssm(None).float().generate(8, 15)
    model = VRNN(2, 2, 8, feature_dims=(8,), hidden_dims=(8,))
    trainer = Trainer(model, elbo="fivo", num_particles=4, lr=1e-2)
    assert isinstance(trainer.elbo, FIVO) and trainer.elbo.num_particles == 4

    def fivo_loss():
        pyro.set_rng_seed(1)
        return sum(trainer.elbo.loss(model.model, model.guide, x) for _ in range(3)) / 3

    before = fivo_loss()
    for _ in range(30):
        assert trainer.step(x) is not None
    after = fivo_loss()
    assert after < before - 0.2 * abs(before), (before, after)


def test_fivo_needs_the_model_own_guide():
    model = VRNN(2, 2, 8, feature_dims=(8,), hidden_dims=(8,))
    other = VRNN(2, 2, 8, feature_dims=(8,), hidden_dims=(8,))
    with pytest.raises(ValueError, match="guide"):
        FIVO(num_particles=2).loss(model.model, other.guide, torch.randn(1, 3, 2))
    with pytest.raises(ValueError, match="num_particles"):
        make_elbo("fivo", num_particles=0)
