"""Sequential Monte Carlo (pyro_vrnn.infer.smc): exact on the linear-Gaussian state-space model where
importance sampling collapses, unbiased, per-sequence under padding, and moving whole states."""

import math

import pyro.distributions as dist
import pytest
import torch
from test_linear_gaussian_exactness import exact_log_likelihood, linear_gaussian_model
from torch import nn

from pyro_vrnn import RNN, STORN, VRNN, importance_estimate, smc_estimate, smc_log_likelihood
from pyro_vrnn.data import pad_batch
from pyro_vrnn.infer.smc import resample_indices, resample_state


class PriorAsGuide(nn.Module):
    """A guide component that proposes from the model's prior, ``q(z_t | h_{t-1}) = N(mu, (c sigma)^2)``
    with ``(mu, sigma)`` the prior's: ``c = 1`` makes the guide the bootstrap proposal (so importance
    sampling through the guide and SMC with the prior proposal share one proposal); ``c > 1`` is a
    proposal unlike the prior, whose density does not cancel in the weights."""

    uses_model_state = True

    def __init__(self, prior, widen: float = 1.0):
        super().__init__()
        self.prior, self.widen, self.z_dim = prior, widen, prior.z_dim

    def encode(self, x, x_features, mask):
        return x

    def forward(self, context_t, h):
        p = self.prior(h).base_dist
        return dist.Normal(p.loc, p.scale * self.widen).to_event(1)


def lgssm(widen=None):
    """The linear-Gaussian state-space model of test_linear_gaussian_exactness, in float64; with
    ``widen`` its guide is :class:`PriorAsGuide`, else the (untrained) filtering guide on raw ``x``."""
    model = linear_gaussian_model()
    if widen is not None:
        model.posterior = PriorAsGuide(model.prior, widen)
    return model.double()


def test_bootstrap_smc_matches_exact_log_likelihood_where_importance_sampling_collapses():
    model = lgssm(widen=1.0)  # the guide is the prior: IS through the guide is bootstrap IS
    with torch.no_grad():
        # observation noise sd 1.3: at K = 1000 log p_hat(x) then spreads ~0.5 nats over runs, so its
        # downward bias (Jensen, ~sd^2 / 2) stays well inside 3 standard errors of 5 runs
        model.emission.raw_scale.fill_(1.0)
        x = model.generate(4, 200)
    exact = exact_log_likelihood(model, x)

    num_runs = 6  # independent filters of K = 1000 particles each, run together
    smc = smc_estimate(model, x, num_particles=1000, proposal="prior", num_replicates=num_runs, seed=0)
    runs = smc.replicate_log_likelihoods  # (runs, 4): log p_hat(x) of each run
    assert runs.dtype == torch.float64 and runs.shape == (num_runs, 4)
    mean, se = runs.mean(0), runs.std(0) / math.sqrt(num_runs)
    assert torch.all((mean - exact).abs() <= 3 * se), (mean, se, exact)
    assert torch.all(smc.num_resampling_events > 10)  # it is SMC, not IS, that got there

    importance = importance_estimate(model.model, model.guide, x, num_particles=1000)
    gap = exact - importance.log_likelihood
    assert torch.all(gap > 100 * se), (gap, se)  # IS with the same proposal and K is far below
    assert torch.all(importance.ess < 10)  # a few whole-sequence particles (of 1000) carry all the weight
    # sequential importance sampling (SMC that never resamples) with the same proposal falls as far
    sis = smc_estimate(model, x, num_particles=1000, proposal="prior", ess_threshold=0.0, seed=0)
    assert torch.all(sis.num_resampling_events == 0)
    assert torch.all(exact - sis.log_likelihood > 100 * se)


@pytest.mark.parametrize("proposal, widen, resampling", [("prior", None, "systematic"),
                                                         ("guide", 1.5, "multinomial"),
                                                         ("guide", 1.5, "stratified")])
def test_smc_estimate_of_p_x_is_unbiased(proposal, widen, resampling):
    model = lgssm(widen)
    with torch.no_grad():
        x = model.generate(2, 3)
    exact = exact_log_likelihood(model, x)
    num_runs = 10000
    est = smc_estimate(model, x, num_particles=8, proposal=proposal, resampling=resampling, ess_threshold=1.0,
                       num_replicates=num_runs, seed=1)
    assert torch.all(est.num_resampling_events > 1.5)  # resampled after both steps that have a successor
    ratio = (est.replicate_log_likelihoods - exact).exp()  # (runs, B)
    mean, se = ratio.mean(0), ratio.std(0) / math.sqrt(num_runs)
    assert torch.all((mean - 1).abs() <= 3 * se), (mean, se)
    # the check has teeth: log p_hat itself is biased low (Jensen), by many of its standard errors
    log_ratio = est.replicate_log_likelihoods - exact
    assert torch.all(log_ratio.mean(0) < -10 * log_ratio.std(0) / math.sqrt(num_runs))


def _models():
    torch.manual_seed(0)
    sizes = dict(feature_dims=(8,), hidden_dims=(8,))
    return {
        "vrnn": VRNN(3, 2, 8, **sizes),
        "vrnn-smoothing": VRNN(3, 2, 8, guide="smoothing", rnn_dim=8, **sizes),
        "vrnn-i": VRNN(3, 2, 8, prior="standard", guide="storn", rnn_dim=8, **sizes),
        "storn": STORN(3, 2, 8, rnn_dim=8, **sizes),
        "rnn": RNN(3, 8, **sizes),
    }


@pytest.mark.parametrize("name", ["vrnn", "vrnn-smoothing", "vrnn-i", "storn", "rnn"])
def test_padded_batch_gives_each_sequence_its_estimate_alone(name):
    """Exact (to float rounding), not only within Monte-Carlo error: each sequence draws from its own seed."""
    model = _models()[name].double()
    lengths = [7, 3, 5, 1]
    sequences = [torch.randn(n, 3, dtype=torch.float64) for n in lengths]
    x, mask = pad_batch(sequences)
    x = x.double().masked_fill(~mask.unsqueeze(-1), math.nan)  # padding may hold anything
    seeds = [11, 12, 13, 14]
    options = dict(num_particles=16, ess_threshold=0.9)
    batch = smc_estimate(model, x, mask, seed=seeds, **options)
    chunked = smc_estimate(model, x, mask, seed=seeds, chunk_size=3, **options)
    torch.testing.assert_close(batch.log_likelihood, chunked.log_likelihood, rtol=0, atol=1e-9)
    for i in range(len(lengths)):
        n = lengths[i]
        alone = smc_estimate(model, x[i:i + 1, :n], seed=[seeds[i]], **options)
        torch.testing.assert_close(batch.log_likelihood[i:i + 1], alone.log_likelihood, rtol=0, atol=1e-9)
        torch.testing.assert_close(batch.step_log_likelihood[i, :n], alone.step_log_likelihood[0], rtol=0, atol=1e-9)
        torch.testing.assert_close(batch.ess[i, :n], alone.ess[0], rtol=0, atol=1e-6)
        assert batch.num_resampling_events[i] == alone.num_resampling_events[0]
        assert torch.all(batch.step_log_likelihood[i, n:] == 0) and torch.all(batch.ess[i, n:].isnan())
    if model.has_latents:
        assert batch.num_resampling_events.sum() > 0  # the comparison covered resampling


@pytest.mark.parametrize("name, proposal", [("storn", "prior"), ("vrnn-smoothing", "guide")])
def test_smc_and_importance_sampling_estimate_the_same_p_x(name, proposal):
    """Both are unbiased for p(x): on a short sequence the log-mean of many SMC runs (resampling at
    every step) and a large importance sample agree. This pins the SMC weights of a model whose
    model_step differs from the base's (STORN: z_t enters the recurrence before the emission) and of
    a guide that looks ahead (smoothing). The tolerance is 4 combined standard errors: both are logs
    of means of right-skewed weights, whose delta-method errors are themselves rough."""
    model = _models()[name].double()
    with torch.no_grad():
        x = model.generate(2, 4)
    smc = smc_estimate(model, x, num_particles=4, proposal=proposal, ess_threshold=1.0, num_replicates=2000)
    guide = model.model if proposal == "prior" else model.guide  # the model as guide: z from the prior
    importance = importance_estimate(model.model, guide, x, num_particles=2000)
    assert torch.all(smc.num_resampling_events > 1)
    diff = smc.log_likelihood - importance.log_likelihood
    se = (smc.log_likelihood_se ** 2 + importance.log_likelihood_se ** 2).sqrt()
    assert torch.all(diff.abs() <= 4 * se), (diff, se)


def test_model_without_latents_gets_its_exact_log_likelihood():
    model = _models()["rnn"].double()
    x, mask = pad_batch([torch.randn(n, 3, dtype=torch.float64) for n in (6, 2)])
    x = x.double()
    est = smc_estimate(model, x, mask, num_particles=50)
    exact = importance_estimate(model.model, model.guide, x, mask).log_likelihood  # exact for an RNN
    torch.testing.assert_close(est.log_likelihood, exact)
    assert est.exact and est.num_particles == 1 and est.label.startswith("exact")
    assert torch.equal(smc_log_likelihood(model, x, mask), est.log_likelihood)


def test_estimate_is_labelled_an_smc_estimate_with_its_settings():
    est = smc_estimate(_models()["vrnn"], torch.randn(2, 3, 3), num_particles=7, proposal="prior")
    assert est.label.startswith("estimate (SMC") and "K=7" in est.label and "prior proposal" in est.label
    assert est.ess.shape == (2, 3) and est.num_resampling_events.shape == (2,)
    assert math.isnan(float(est.log_likelihood_se[0]))  # one filter: no spread is claimed


def test_resample_state_moves_whole_nested_states():
    """Each particle's (h, c) pair moves together to where its ancestor index sends it; a leaf
    without a particle dim (the same for every particle) is left as is."""
    R, K, B = 2, 3, 2
    ids = torch.arange(R * K * B, dtype=torch.float64).view(R, K, B, 1)
    state = ((ids.expand(R, K, B, 4).clone(), -ids.clone()), torch.randn(B, 5))
    ancestors = torch.tensor([[[2, 0], [2, 1], [0, 1]], [[1, 1], [1, 2], [0, 0]]])  # (R, K, B)
    (h, c), shared = resample_state(state, ancestors)
    for r in range(R):
        for k in range(K):
            for b in range(B):
                source = ids[r, ancestors[r, k, b], b]
                assert torch.all(h[r, k, b] == source) and torch.all(c[r, k, b] == -source)
    assert shared is state[1]


def test_systematic_resampling_keeps_every_particle_once_under_uniform_weights_and_follows_weights():
    K = 5
    uniform = torch.zeros(1, K, 1, dtype=torch.float64)
    u = torch.tensor([[[0.37]]], dtype=torch.float64)
    assert resample_indices(uniform, u, "systematic").flatten().tolist() == list(range(K))
    peaked = torch.tensor([0.0, 0.0, 30.0, 0.0, 0.0], dtype=torch.float64).view(1, K, 1)
    assert resample_indices(peaked, u, "systematic").flatten().tolist() == [2] * K
    half = torch.log(torch.tensor([0.5, 0.0, 0.0, 0.0, 0.5], dtype=torch.float64)).view(1, K, 1)
    counts = torch.bincount(resample_indices(half, u, "systematic").flatten(), minlength=K)
    assert sorted(counts.tolist()) == [0, 0, 0, 2, 3] and counts[0] + counts[4] == K


def test_bad_options_name_the_argument():
    model = _models()["vrnn"]
    x = torch.randn(1, 2, 3)
    with pytest.raises(ValueError, match="proposal"):
        smc_estimate(model, x, proposal="posterior")
    with pytest.raises(ValueError, match="resampling"):
        smc_estimate(model, x, resampling="residual")
    with pytest.raises(ValueError, match="ess_threshold"):
        smc_estimate(model, x, ess_threshold=2.0)
    with pytest.raises(ValueError, match="num_particles"):
        smc_estimate(model, x, num_particles=0)
    with pytest.raises(ValueError, match="SequenceModel"):
        smc_estimate(model.model, x)
