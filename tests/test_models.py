"""The model family: exact RNN likelihood, masking, every prior/guide/emission combination."""

import itertools

import pyro
import pyro.poutine as poutine
from pyro.poutine.util import site_is_subsample
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from pyro.optim import ClippedAdam

from pyro_vrnn import (RNN, STORN, VRNN, FilteringGuide, SmoothingGuide, StandardNormalPrior,
                       importance_log_likelihood)
from pyro_vrnn.infer.importance import _site_log_probs

EMISSIONS = ["normal", "gmm", "bernoulli", "autoregressive", "handwriting"]


def data_for(emission, batch=3, steps=6, x_dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, x_dim, generator=g)
    if emission in ("bernoulli", "autoregressive"):
        x = (x > 0).to(x.dtype)
    if emission == "handwriting":
        x[..., 2] = (x[..., 2] > 0.5).to(x.dtype)
    return x


def small(cls, emission, **kw):
    sizes = dict(feature_dims=(8,), hidden_dims=(8,), num_components=3)
    if cls is RNN:
        return RNN(3, 8, emission, **sizes, **kw)
    return cls(3, 2, 8, emission, **sizes, **kw)


@pytest.mark.parametrize("emission", EMISSIONS)
def test_rnn_log_likelihood_equals_hand_summed_step_densities(emission):
    model = small(RNN, emission)
    x = data_for(emission)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] * 1 + [False] * 5])
    with torch.no_grad():
        state = model.transition.initial_state((3,), x)
        expected = torch.zeros(3)
        for t in range(6):
            step_lp = model.emission(model.transition.output(state)).log_prob(x[:, t])
            expected += torch.where(mask[:, t], step_lp, torch.zeros_like(step_lp))
            state = model.transition(model.phi_x(x[:, t]), state)
    got = importance_log_likelihood(model.model, model.guide, x, mask, num_particles=5)
    assert got.shape == (3,)
    assert torch.allclose(got.float(), expected, atol=1e-5)
    loss = Trace_ELBO().loss(model.model, model.guide, x, mask)
    assert loss == pytest.approx(-expected.sum().item(), rel=1e-5)


def _log_weight_given_latents(model, x, mask, latents):
    """log p(x, z) - log q(z | x) per sequence, with every z_t fixed to ``latents``."""
    guide_trace = poutine.trace(poutine.condition(model.guide, latents)).get_trace(x, mask)
    model_trace = poutine.trace(poutine.condition(model.model, latents)).get_trace(x, mask)
    b = x.shape[0]
    return (_site_log_probs(model_trace, b, 1, False, x.device)
            - _site_log_probs(guide_trace, b, 1, True, x.device))[0]


@pytest.mark.parametrize("cls,guide", [(RNN, None), (VRNN, "filtering"), (VRNN, "smoothing"), (STORN, "storn")])
def test_padded_batch_log_likelihood_equals_each_sequence_alone(cls, guide):
    kw = {} if cls is RNN else {"guide": guide}
    model = small(cls, "normal", **kw)
    lengths = [6, 3, 1]
    x = data_for("normal")
    mask = torch.arange(6).expand(3, 6) < torch.tensor(lengths)[:, None]
    x = x.masked_fill(~mask[..., None], 7.0)  # padding values must not matter
    with torch.no_grad():
        trace = poutine.trace(model.guide).get_trace(x, mask)
        latents = {n: s["value"] for n, s in trace.nodes.items() if s["type"] == "sample"}
        padded = _log_weight_given_latents(model, x, mask, latents)
        for i, n in enumerate(lengths):
            alone_latents = {f"z_{t}": latents[f"z_{t}"][i:i + 1] for t in range(n) if f"z_{t}" in latents}
            alone = _log_weight_given_latents(model, x[i:i + 1, :n], None, alone_latents)
            assert torch.allclose(padded[i], alone[0], atol=1e-5), (i, padded[i], alone)
    if cls is RNN:
        ll = importance_log_likelihood(model.model, model.guide, x, mask)
        for i, n in enumerate(lengths):
            assert torch.allclose(ll[i], importance_log_likelihood(model.model, model.guide, x[i:i + 1, :n])[0])


PRIORS = ["conditional", "standard"]
GUIDES = ["filtering", "smoothing", "storn"]
COMBINATIONS = list(itertools.product(PRIORS, GUIDES, EMISSIONS, ["lstm", "gru"]))


@pytest.mark.parametrize("prior,guide,emission,transition", COMBINATIONS)
def test_every_combination_samples_same_sites_and_trains_vectorized(prior, guide, emission, transition):
    model = small(VRNN, emission, prior=prior, guide=guide, transition=transition)
    x = data_for(emission)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[2, 4:] = False
    guide_trace = poutine.trace(model.guide).get_trace(x, mask)
    model_trace = poutine.trace(model.model).get_trace(x, mask)
    latent = lambda tr: {n for n, s in tr.nodes.items()
                         if s["type"] == "sample" and not s["is_observed"] and not site_is_subsample(s)}
    assert latent(guide_trace) == latent(model_trace) == {f"z_{t}" for t in range(6)}
    observed = {n for n, s in model_trace.nodes.items() if s["type"] == "sample" and s["is_observed"]}
    assert observed == {f"x_{t}" for t in range(6)}

    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    svi = SVI(model.model, model.guide, ClippedAdam({"lr": 1e-2}),
              Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1))
    loss = svi.step(x, mask)
    assert torch.isfinite(torch.tensor(loss))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("posterior") for k in changed) and any(k.startswith("emission") for k in changed)


@pytest.mark.parametrize("emission", EMISSIONS)
def test_rnn_trains_under_vectorized_particles(emission):
    model = small(RNN, emission)
    x = data_for(emission)
    svi = SVI(model.model, model.guide, ClippedAdam({"lr": 1e-2}),
              Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1))
    assert torch.isfinite(torch.tensor(svi.step(x)))


def test_storn_prior_inside_vrnn_and_custom_guide_objects():
    vrnn = VRNN(3, 2, 8, prior=StandardNormalPrior(2), guide=SmoothingGuide(64, 8, 2, rnn_dim=5))
    assert isinstance(vrnn.prior, StandardNormalPrior) and isinstance(vrnn.posterior, SmoothingGuide)
    x = data_for("normal")
    assert importance_log_likelihood(vrnn.model, vrnn.guide, x, num_particles=4).shape == (3,)


def test_any_pyro_guide_sampling_the_same_sites_works_for_training_and_evaluation():
    """A hand-written guide (not a library component) drives SVI and the importance sampler."""
    from pyro_vrnn.train.trainer import Trainer
    import pyro.distributions as dist

    model = small(VRNN, "normal")
    loc = torch.zeros(2, requires_grad=True)

    def my_guide(x, mask=None):
        pyro.param("my_guide_loc", loc)
        with pyro.plate("sequences", x.shape[0], dim=-1):
            for t in pyro.markov(range(x.shape[1])):
                pyro.sample(f"z_{t}", dist.Normal(pyro.param("my_guide_loc"), 1.0).to_event(1))

    x = data_for("normal")
    trainer = Trainer(model, guide=my_guide, lr=0.05, annealing=lambda step: 0.5)
    for _ in range(3):
        trainer.step(x)
    assert not torch.equal(pyro.param("my_guide_loc").detach(), torch.zeros(2))
    ll = importance_log_likelihood(model.model, my_guide, x, num_particles=8)
    assert ll.shape == (3,) and torch.isfinite(ll).all()


@pytest.mark.parametrize("cls", [RNN, VRNN, STORN])
def test_models_work_in_float64(cls):
    model = small(cls, "gmm").double()
    x = data_for("gmm").double()
    loss = SVI(model.model, model.guide, ClippedAdam({"lr": 1e-3}), TraceMeanField_ELBO(max_plate_nesting=1)).step(x)
    assert torch.isfinite(torch.tensor(loss))
    assert model.generate(2, 4).dtype == torch.float64


@pytest.mark.parametrize("emission,x_dim", [("normal", 3), ("gmm", 3), ("bernoulli", 3), ("handwriting", 3)])
def test_generate_returns_samples_of_the_right_shape_and_support(emission, x_dim):
    model = small(VRNN, emission)
    samples = model.generate(4, 7)
    assert samples.shape == (4, 7, x_dim) and torch.isfinite(samples).all()
    if emission == "bernoulli":
        assert set(samples.unique().tolist()) <= {0.0, 1.0}
    if emission == "handwriting":
        assert set(samples[..., 2].unique().tolist()) <= {0.0, 1.0}


def test_two_instances_do_not_share_parameters_in_the_param_store():
    a, b = small(VRNN, "normal"), small(VRNN, "normal")
    x = data_for("normal")
    pa = importance_log_likelihood(a.model, a.guide, x, num_particles=2)
    pb = importance_log_likelihood(b.model, b.guide, x, num_particles=2)
    assert a._pyro_name != b._pyro_name
    assert not torch.allclose(pa, pb)
    for name, p in a.named_parameters():
        assert pyro.get_param_store()[f"{a._pyro_name}$$${name}"] is p


@pytest.mark.parametrize("bad,match", [
    (torch.randn(3, 6), "shape"),
    (torch.randn(3, 6, 4), "x_dim=3"),
    (torch.randn(3, 6, 3).double(), "dtype"),
    (torch.randn(0, 6, 3), "at least one"),
])
def test_wrong_inputs_raise_value_error_saying_what_was_expected(bad, match):
    model = small(VRNN, "normal")
    with pytest.raises(ValueError, match=match):
        model.model(bad)
    with pytest.raises(ValueError, match=match):
        model.guide(bad)


@pytest.mark.parametrize("mask,match", [
    (torch.ones(3, 5, dtype=torch.bool), "shape"),
    (torch.ones(3, 6), "bool"),
    (torch.tensor([[True, False, True, True, True, True]] * 3), "prefix"),
])
def test_bad_masks_raise_value_error(mask, match):
    model = small(VRNN, "normal")
    with pytest.raises(ValueError, match=match):
        model.guide(data_for("normal"), mask)


def _sites(model, x, latents):
    """The model's trace with every ``z_t`` fixed to ``latents``."""
    return poutine.trace(poutine.condition(model.model, latents)).get_trace(x)


def test_storn_z_t_enters_the_recurrence_at_step_t_and_x_t_only_after_it():
    """STORN (Bayer & Osendorfer): h_t = f(x_{t-1}, z_t, h_{t-1}), p(x_t | h_t); z_t ~ N(0, I)."""
    model = small(STORN, "normal").double()
    x = data_for("normal").double()
    assert model.emission.net[0].in_features == model.transition.hidden_dim  # the emission reads h_t alone
    latents = {f"z_{t}": torch.zeros(3, 2, dtype=torch.float64) for t in range(6)}
    base = _sites(model, x, latents)
    changed = _sites(model, x, {**latents, "z_2": torch.ones(3, 2, dtype=torch.float64)})
    mean = lambda trace, t: trace.nodes[f"x_{t}"]["fn"].mean  # noqa: E731
    assert torch.equal(mean(base, 1), mean(changed, 1))
    assert not torch.allclose(mean(base, 2), mean(changed, 2))  # z_2 reaches p(x_2 | h_2) through h_2
    prior = base.nodes["z_3"]["fn"]
    assert torch.equal(prior.mean, torch.zeros_like(prior.mean)) and torch.equal(prior.stddev, torch.ones_like(prior.mean))
    x_changed = x.clone()
    x_changed[:, 2] += 1.0
    other = _sites(model, x_changed, latents)
    assert torch.equal(mean(base, 2), mean(other, 2))  # x_2 does not enter h_2 ...
    assert not torch.allclose(mean(base, 3), mean(other, 3))  # ... but h_3


def test_vrnn_i_differs_from_vrnn_normal_only_in_its_prior():
    """Chung et al. (2015): VRNN-I is the VRNN with ``p(z_t) = N(0, I)``; encoder ``q(z_t | x_t, h_{t-1})``,
    decoder and recurrence stay the VRNN's."""
    from pyro_vrnn.models.zoo import build_model, model_spec
    spec_i, spec_v = model_spec("vrnn-i", 3), model_spec("vrnn-normal", 3)
    assert {k: v for k, v in spec_i.items() if k not in ("name", "prior")} == \
        {k: v for k, v in spec_v.items() if k not in ("name", "prior")}
    assert (spec_i["prior"], spec_i["guide"], spec_v["prior"]) == ("standard", "filtering", "conditional")
    vrnn_i, vrnn = build_model(spec_i), build_model(spec_v)
    assert type(vrnn_i) is VRNN and isinstance(vrnn_i.prior, StandardNormalPrior)
    assert type(vrnn_i.posterior) is type(vrnn.posterior) is FilteringGuide
    shared = {k: v for k, v in vrnn.state_dict().items() if not k.startswith("prior.")}
    assert set(shared) == set(vrnn_i.state_dict())  # the same networks but the prior's
    vrnn_i.load_state_dict(shared)
    x = data_for("normal", batch=2)
    traces = []
    for m in (vrnn_i, vrnn):
        pyro.set_rng_seed(3)
        guide = poutine.trace(m.guide).get_trace(x)
        traces.append((guide, poutine.trace(poutine.replay(m.model, trace=guide)).get_trace(x)))
    (guide_i, model_i), (guide_v, model_v) = traces
    for t in range(x.shape[1]):
        assert torch.equal(guide_i.nodes[f"z_{t}"]["value"], guide_v.nodes[f"z_{t}"]["value"])  # same q, same z
        assert torch.equal(model_i.nodes[f"x_{t}"]["fn"].mean, model_v.nodes[f"x_{t}"]["fn"].mean)  # same decoder
        prior = model_i.nodes[f"z_{t}"]["fn"]
        assert torch.equal(prior.mean, torch.zeros(2, 16)) and torch.equal(prior.stddev, torch.ones(2, 16))
    assert not torch.equal(model_v.nodes["z_1"]["fn"].mean, torch.zeros(2, 16))


def test_storn_refuses_a_guide_that_reads_the_model_state():
    with pytest.raises(ValueError, match="must not read the model's state"):
        STORN(3, 2, 8, guide="filtering")


def test_model_and_guide_read_as_the_equations():
    """``model``/``guide`` stay short loops over one-step methods (the unit a reader studies)."""
    import inspect
    from pyro_vrnn.models import SequenceModel
    for method in (SequenceModel.model, SequenceModel.guide, SequenceModel.model_step, SequenceModel.guide_step):
        body = [line for line in inspect.getsource(method).splitlines() if line.strip()]
        assert len(body) <= 30, method.__name__
    assert "pyro.markov(range(num_steps))" in inspect.getsource(SequenceModel.model)
    assert "pyro.markov(range(num_steps))" in inspect.getsource(SequenceModel.guide)


def test_calling_the_model_runs_the_generative_program():
    model = small(VRNN, "normal")
    x = data_for("normal")
    trace = poutine.trace(model).get_trace(x)
    assert {f"x_{t}" for t in range(6)} | {f"z_{t}" for t in range(6)} <= set(trace.nodes)
    generated = poutine.trace(model).get_trace(None, num_steps=4, num_sequences=2)
    assert generated.nodes["_RETURN"]["value"].shape == (2, 4, 3)
    with pytest.raises(ValueError, match="num_steps"):
        model(None)


@pytest.mark.parametrize("mask,match", [
    (torch.tensor([[True] * 6, [False] * 6, [True] * 6]), "row 1 has no real step"),
    (torch.tensor([[True] * 6, [True, False, True, True, True, True], [True] * 6]), "row 1 is not a prefix"),
])
def test_mask_checks_are_always_on_whatever_pyro_validation_says(mask, match):
    model = small(VRNN, "normal")
    x = data_for("normal")
    with pyro.validation_enabled(False):
        for program in (model.model, model.guide):
            with pytest.raises(ValueError, match=match):
                program(x, mask)
        with pytest.raises(ValueError, match=match):
            importance_log_likelihood(model.model, model.guide, x, mask, num_particles=2)


def test_non_finite_real_steps_are_refused_and_padding_may_hold_anything():
    model = small(VRNN, "normal")
    x = data_for("normal")
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[2, 4:] = False
    x[2, 5] = float("nan")  # padding
    with pyro.validation_enabled(False):
        assert torch.isfinite(importance_log_likelihood(model.model, model.guide, x, mask, num_particles=2)).all()
        x[0, 3, 1] = float("inf")
        with pytest.raises(ValueError, match="sequence 0, step 3"):
            importance_log_likelihood(model.model, model.guide, x, mask, num_particles=2)


def test_describe_spec_keeps_seed_models_apart_under_an_emission_override():
    """On music every model takes the Bernoulli emission; the labels must still tell VRNN-I from the
    VRNN and the DMM from both (a results table with two rows called "VRNN-Bernoulli" says nothing)."""
    from pyro_vrnn.models.zoo import describe_spec, model_spec

    names = ["rnn-normal", "storn", "vrnn-i", "vrnn-normal", "dmm"]
    labels = [describe_spec(model_spec(n, x_dim=88, emission="bernoulli")) for n in names]
    assert labels == ["RNN-Bernoulli", "STORN-Bernoulli", "VRNN-I-Bernoulli", "VRNN-Bernoulli", "DMM-Bernoulli"]
    assert describe_spec(model_spec("storn", x_dim=3, emission="handwriting")) == "STORN-Handwriting"
    assert describe_spec(model_spec("vrnn-gmm", x_dim=3)) == "VRNN-GMM"
    smoothing = describe_spec(model_spec("vrnn-normal", x_dim=88, emission="bernoulli", guide="smoothing"))
    assert smoothing == "VRNN-Bernoulli (conditional prior, smoothing guide)"
