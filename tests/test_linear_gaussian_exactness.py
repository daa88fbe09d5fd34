"""A linear-Gaussian state-space model assembled from the library's own component slots must
agree with the exact marginal likelihood of ``pyro.distributions.GaussianHMM``."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

from pyro_vrnn import (IdentityTransition, Identity, LinearGaussianEmission, LinearGaussianPrior, NoFeatures,
                       SequenceModel, importance_estimate)
from pyro_vrnn.components.guides import GaussianHead
from pyro_vrnn.components.nn import broadcast_cat
from pyro_vrnn.train.trainer import Trainer

X_DIM, Z_DIM, T = 2, 2, 6


class RawFilteringGuide(nn.Module):
    """q(z_t | x_t, z_{t-1}): a filtering guide on the raw observation (the model's phi_x drops x)."""

    uses_model_state = True

    def __init__(self):
        super().__init__()
        self.z_dim = Z_DIM
        self.head = GaussianHead(X_DIM + Z_DIM, Z_DIM, hidden_dims=(32,))

    def encode(self, x, x_features, mask):
        return x

    def forward(self, context_t, h):
        return self.head(broadcast_cat([context_t, h]))


def linear_gaussian_model():
    prior = LinearGaussianPrior(h_dim=Z_DIM, z_dim=Z_DIM)
    emission = LinearGaussianEmission(in_dim=Z_DIM + Z_DIM, x_dim=X_DIM)
    with torch.no_grad():
        prior.linear.weight.copy_(torch.tensor([[0.9, 0.2], [-0.1, 0.8]]))
        prior.linear.bias.zero_()
        prior.raw_scale.fill_(-0.5)
        emission.linear.weight.copy_(torch.tensor([[1.0, 0.5, 0.0, 0.0], [-0.3, 1.2, 0.0, 0.0]]))
        emission.linear.bias.copy_(torch.tensor([0.1, -0.2]))
        emission.raw_scale.fill_(-0.2)
    return SequenceModel(X_DIM, phi_x=NoFeatures(X_DIM), phi_z=Identity(Z_DIM), transition=IdentityTransition(Z_DIM),
                         prior=prior, emission=emission, posterior=RawFilteringGuide())


def exact_log_likelihood(model, x):
    prior, emission = model.prior, model.emission
    hmm = dist.GaussianHMM(
        dist.Normal(torch.zeros(Z_DIM, dtype=x.dtype), 1e-6).to_event(1),  # h_0 = 0
        prior.linear.weight.T.detach(),
        dist.Normal(torch.zeros(Z_DIM, dtype=x.dtype), prior.scale.detach()).to_event(1),
        emission.linear.weight[:, :Z_DIM].T.detach(),
        dist.Normal(emission.linear.bias.detach(), emission.scale.detach()).to_event(1),
        duration=x.shape[1],
    )
    return hmm.log_prob(x)


@pytest.mark.filterwarnings("ignore:.*was not registered in the param store")
def test_importance_estimate_matches_gaussian_hmm_and_elbo_is_below():
    model = linear_gaussian_model().double()
    for name, p in model.named_parameters():  # fit the guide only: the model stays the known LGSSM
        p.requires_grad_(name.startswith("posterior"))
    with torch.no_grad():
        x = model.generate(4, T)
    exact = exact_log_likelihood(model, x)

    trainer = Trainer(model, lr=1e-2)
    for _ in range(300):
        trainer.step(x)
    est = importance_estimate(model.model, model.guide, x, num_particles=4000, chunk_size=1000)

    assert est.log_likelihood.shape == (4,)
    assert torch.all((est.log_likelihood - exact).abs() <= 3 * est.log_likelihood_se + 1e-6), (
        est.log_likelihood, est.log_likelihood_se, exact)
    assert torch.all(est.elbo < exact)
    assert torch.all(est.ess > 50)


def test_exact_reference_is_not_trivially_matched():
    """The check above has teeth: a wrong emission bias moves the estimate by far more than 3 SE."""
    model = linear_gaussian_model().double()
    with torch.no_grad():
        x = model.generate(4, T)
    exact = exact_log_likelihood(model, x)
    with torch.no_grad():
        model.emission.linear.bias.add_(1.0)
    est = importance_estimate(model.model, model.guide, x, num_particles=2000)
    assert torch.any((est.log_likelihood - exact).abs() > 3 * est.log_likelihood_se)
