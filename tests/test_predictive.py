"""Sampling x from a model: the prior predictive (``Predictive`` over ``model.model``), reconstructions
under the guide (teacher forcing), continuations of a prefix, and the sampling temperature."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Predictive

from pyro_vrnn import VRNN
from pyro_vrnn.data import load_dataset, pad_batch
from pyro_vrnn.components.distributions import BivariateGaussianMixturePen
from pyro_vrnn.models.predictive import tempered_sample
from pyro_vrnn.train.trainer import fit
from pyro_vrnn.models.zoo import build_model, model_spec

SEED_MODELS = ("rnn-normal", "storn", "vrnn-i", "vrnn-normal", "vrnn-gmm")


def tiny(name="vrnn-normal", x_dim=3, **overrides):
    spec = model_spec(name, x_dim, z_dim=2, h_dim=8, feature_dims=(8,), hidden_dims=(8,), num_components=3,
                      **overrides)
    return build_model(spec).double()


def stacked(trace, prefix, num_steps):
    return torch.stack([trace.nodes[f"{prefix}_{t}"]["value"] for t in range(num_steps)], dim=-2)


# ---------------------------------------------------------------------------- prior predictive
@pytest.mark.parametrize("name", SEED_MODELS)
def test_predictive_over_model_with_x_none_is_the_prior_predictive_of_every_site(name):
    model = tiny(name)
    S, B, T = 5, 3, 4
    samples = Predictive(model.model, num_samples=S, parallel=True)(None, num_steps=T, num_sequences=B)
    for t in range(T):
        assert samples[f"x_{t}"].shape == (S, B, 3)
        if model.has_latents:
            assert samples[f"z_{t}"].shape == (S, B, 2)
    assert set(samples) == {f"{site}_{t}" for t in range(T) for site in (("x", "z") if model.has_latents else ("x",))}
    assert samples["x_0"].std(0).min() > 0  # S independent draws, not one repeated


def test_generate_without_prefix_is_the_model_program_run_forward():
    model = tiny()
    pyro.set_rng_seed(3)
    trace = poutine.trace(model.model).get_trace(None, num_steps=6, num_sequences=4)
    pyro.set_rng_seed(3)
    x, z = model.generate(4, 6, return_latents=True)
    assert torch.equal(x, trace.nodes["_RETURN"]["value"])
    assert torch.equal(z, stacked(trace, "z", 6))
    pyro.set_rng_seed(3)
    assert torch.equal(model.generate(4, 6), x)


# ---------------------------------------------------------------------------- reconstruction
def test_reconstructions_are_sampled_and_their_mean_is_closer_to_x_than_the_prior_predictives():
    data = load_dataset("handwriting-synthetic", num_train=24, num_valid=1, num_test=8, min_steps=30, max_steps=50)
    x, mask = pad_batch(data.test)
    S, (B, T, X) = 20, x.shape

    def errors(model):
        reconstructions = model.reconstruct(x, mask, num_samples=S)
        prior = Predictive(model.model, num_samples=S, parallel=True)(None, num_steps=T, num_sequences=B)
        prior = torch.stack([prior[f"x_{t}"] for t in range(T)], dim=-2)
        assert reconstructions.shape == prior.shape == (S, B, T, X)
        assert reconstructions.std(0)[mask].mean() > 0.1  # S draws, not one mean repeated
        return [(draws.mean(0) - x).square().sum(-1)[mask].mean().item() for draws in (reconstructions, prior)]

    model = VRNN(3, 4, 16, emission="handwriting", num_components=3, feature_dims=(16,), hidden_dims=(16,))
    untrained = errors(model)
    fit(model, data.train, num_steps=60, batch_size=8, seed=0, progress=False, lr=2e-2)
    reconstruction_error, prior_error = errors(model)
    assert reconstruction_error < 0.85 * prior_error, (reconstruction_error, prior_error)
    assert abs(untrained[0] - untrained[1]) < 0.1 * untrained[1]  # it is the training that makes the difference


@pytest.mark.parametrize("name", ["vrnn-normal", "storn", "rnn-normal"])
def test_reconstruction_reads_the_true_past_and_never_the_future(name):
    """Teacher forcing: changing x at step k leaves the reconstructions of steps < k as they were and
    changes those after k (the recurrence reads the data, not the reconstructions)."""
    model = tiny(name)
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    changed = x.clone()
    changed[:, 3] += 2.0
    pyro.set_rng_seed(1)
    before = model.reconstruct(x, num_samples=4)
    pyro.set_rng_seed(1)
    after = model.reconstruct(changed, num_samples=4)
    assert before.shape == (4, 2, 7, 3)
    assert torch.equal(before[:, :, :3], after[:, :, :3])
    assert (before[:, :, 4:] - after[:, :, 4:]).abs().amax(-1).min() > 0


def test_reconstruct_rejects_a_bad_sample_count_and_a_non_prefix_mask():
    model = tiny()
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="num_samples"):
        model.reconstruct(x, num_samples=0)
    with pytest.raises(ValueError, match="not a prefix"):
        model.reconstruct(x, torch.tensor([[True, False, True, True], [True] * 4]))


# ---------------------------------------------------------------------------- primed generation
@pytest.mark.parametrize("name", SEED_MODELS)
def test_the_prefix_latents_are_the_guides_draws_and_the_continuation_has_num_steps_more_steps(name):
    model = tiny(name)
    prefix = torch.randn(5, 3, dtype=torch.float64)  # one prefix, continued three times
    pyro.set_rng_seed(7)
    x, z = model.generate(3, 4, prefix=prefix, return_latents=True)
    assert x.shape == (3, 5 + 4, 3) and z.shape == (3, 9, model.z_dim)
    assert torch.equal(x[:, :5], prefix.expand(3, 5, 3))
    if model.has_latents:
        pyro.set_rng_seed(7)  # the same noise: the guide, run on the prefix, draws the same z
        guide_trace = poutine.trace(model.guide).get_trace(prefix.expand(3, 5, 3).contiguous())
        assert torch.equal(z[:, :5], stacked(guide_trace, "z", 5))
    assert not torch.equal(x[0, 5:], x[1, 5:])  # each continuation draws its own


@pytest.mark.parametrize("guide", ["filtering", "smoothing"])
def test_at_temperature_zero_the_continuation_runs_the_means_from_the_state_the_guide_filtered(guide):
    """Reference written with the one-step methods: z_t = mean of q over the prefix (the recurrence
    reading the prefix), then z_t = mean of the prior and x_t = mean of the emission."""
    model = tiny(guide=guide)
    prefix = torch.randn(2, 5, 3, dtype=torch.float64)
    x, z = model.generate(2, 4, prefix=prefix, temperature=0, return_latents=True)
    with torch.no_grad():
        state = model.initial_state((2,), prefix)
        x_features, contexts = model.encode(prefix)
        for t in range(5):
            z_t = model.posterior_dist(state, contexts[:, t]).mean
            assert torch.allclose(z[:, t], z_t)
            state = model.next_state(state, x_features[:, t], model.phi_z(z_t))
        for t in range(5, 9):
            z_t = model.prior_dist(state).mean
            z_feature = model.phi_z(z_t)
            x_t = model.emission_dist(state, z_feature).mean
            assert torch.allclose(z[:, t], z_t) and torch.allclose(x[:, t], x_t)
            state = model.next_state(state, model.phi_x(x_t), z_feature)


def test_each_row_of_a_masked_prefix_continues_after_its_own_last_real_step():
    model = tiny()
    prefix = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = [6, 2, 4]
    mask = torch.arange(6) < torch.tensor(lengths)[:, None]
    x = model.generate(3, 3, prefix=prefix, prefix_mask=mask, temperature=0)
    assert x.shape == (3, 6 + 3, 3)
    for row, length in enumerate(lengths):
        alone = model.generate(1, 6 - length + 3, prefix=prefix[row, :length], temperature=0)
        assert torch.allclose(x[row], alone[0])
        assert torch.equal(x[row, :length], prefix[row, :length])


def test_primed_generation_names_the_prefix_in_its_errors():
    model = tiny()
    with pytest.raises(ValueError, match="prefix has 2 sequences but num_sequences=3"):
        model.generate(3, 4, prefix=torch.randn(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="prefix: mask row 0 is not a prefix"):
        model.generate(1, 4, prefix=torch.randn(1, 3, 3, dtype=torch.float64),
                       prefix_mask=torch.tensor([[True, False, True]]))
    with pytest.raises(ValueError, match="prefix: x has 2 features per step"):
        model.generate(1, 4, prefix=torch.randn(1, 3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        model.generate(1, 0, prefix=torch.randn(1, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"temperature \(--temperature\) must be a finite number from 0 to 1000"):
        model.generate(1, 4, temperature=-1.0)


# ---------------------------------------------------------------------------- temperature
@pytest.mark.parametrize("name,emission", [("vrnn-normal", None), ("vrnn-gmm", None), ("storn", None),
                                           ("rnn-gmm", None), ("vrnn-normal", "bernoulli"),
                                           ("vrnn-normal", "handwriting"), ("vrnn-normal", "autoregressive")])
def test_temperature_zero_is_deterministic(name, emission):
    model = tiny(name, emission=emission)
    pyro.set_rng_seed(0)
    first = model.generate(2, 5, prefix=torch.ones(2, 3, dtype=torch.float64), temperature=0)
    pyro.set_rng_seed(1)
    assert torch.equal(first, model.generate(2, 5, prefix=torch.ones(2, 3, dtype=torch.float64), temperature=0))


def _mixture(loc, scale, logits):
    return dist.MixtureSameFamily(dist.Categorical(logits=logits), dist.Normal(loc, scale).to_event(1))


def test_temperature_zero_gives_the_mean_of_a_gaussian_the_most_likely_components_mean_and_the_likelier_bit():
    loc, scale = torch.randn(4, 3), torch.rand(4, 3) + 0.1
    normal = dist.Normal(loc, scale).to_event(1).mask(torch.tensor([True, False, True, True]))
    assert torch.equal(tempered_sample(normal, 0), loc)

    logits, component_loc = torch.randn(4, 5), torch.randn(4, 5, 3)
    mixture = _mixture(component_loc, torch.ones(4, 5, 3), logits)
    assert torch.equal(tempered_sample(mixture, 0), component_loc[torch.arange(4), logits.argmax(-1)])

    bit_logits = torch.randn(4, 88)
    assert torch.equal(tempered_sample(dist.Bernoulli(logits=bit_logits).to_event(1), 0), (bit_logits > 0).float())

    pen = BivariateGaussianMixturePen(logits, torch.randn(4, 5, 2), torch.rand(4, 5, 2) + 0.1,
                                      torch.rand(4, 5) - 0.5, torch.randn(4))
    expected = torch.cat([pen.loc[torch.arange(4), logits.argmax(-1)], (pen.pen_logits > 0).float()[:, None]], -1)
    assert torch.equal(tempered_sample(pen, 0), expected)


def test_temperature_scales_the_gaussian_noise_and_sharpens_the_discrete_choices():
    normal = dist.Normal(torch.zeros(20000), 2 * torch.ones(20000))
    assert abs(tempered_sample(normal, 0.5).std().item() - 1.0) < 0.03
    pyro.set_rng_seed(2)
    at_one = tempered_sample(normal, 1.0)
    pyro.set_rng_seed(2)
    assert torch.equal(at_one, normal())  # tau = 1 is pyro.sample's own draw
    bits = dist.Bernoulli(logits=torch.full((20000,), 1.0))  # p = 0.73; at tau = 0.5, sigmoid(2) = 0.88
    assert abs(tempered_sample(bits, 0.5).mean().item() - torch.sigmoid(torch.tensor(2.0)).item()) < 0.01
    with pytest.raises(ValueError, match="not for Gamma"):
        tempered_sample(dist.Gamma(torch.ones(3), torch.ones(3)), 0.5)
