"""``--model dmm`` is Pyro's Deep Markov Model as ``examples/dmm.py`` defines it.

Held against an independent plain-Pyro reference written from the example's published description
(``tests/_reference_dmm.py``: its own networks, model and guide) with the weights copied across: the
same loss and gradients under ``Trace_ELBO`` and ``SequenceELBO`` in float64 on fixed noise
(``scale_floor=0``, the description's unfloored softplus), and the example's 725,488 parameters at its
defaults for 88 piano keys.
"""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_vrnn.infer import SequenceELBO
from pyro_vrnn.models import DMM
from pyro_vrnn.models.zoo import build_model, count_parameters, model_spec

import _reference_dmm as reference  # tests/ is on sys.path (pytest rootdir-relative imports)

# ours <- the reference's, parameter by parameter
_NAMES = {
    "z_0": "z_0", "z_q_0": "z_q_0", "posterior.h_0": "h_0",
    "prior.gate.0": "transition.gate_hidden", "prior.gate.2": "transition.gate_out",
    "prior.proposed_mean.0": "transition.mean_hidden", "prior.proposed_mean.2": "transition.mean_out",
    "prior.loc": "transition.z_to_loc", "prior.raw_scale": "transition.scale_out",
    "emission.net.0": "emitter.z_to_hidden", "emission.net.2": "emitter.hidden_to_hidden",
    "emission.logits": "emitter.hidden_to_probs",
    "posterior.rnn": "rnn", "posterior.z_to_hidden": "combiner.z_to_hidden",
    "posterior.loc": "combiner.hidden_to_loc", "posterior.raw_scale": "combiner.hidden_to_scale",
}


def _theirs(name):
    for ours, theirs in _NAMES.items():
        if name == ours or name.startswith(ours + "."):
            return theirs + name[len(ours):]
    raise KeyError(name)


def test_dmm_and_the_reference_have_the_examples_725488_parameters_at_its_defaults():
    ours, theirs = DMM(88), reference.ReferenceDMM(input_dim=88)
    assert count_parameters(ours) == count_parameters(theirs) == 725_488
    shapes = dict(theirs.named_parameters())
    assert {_theirs(n): tuple(p.shape) for n, p in ours.named_parameters()} == \
        {n: tuple(p.shape) for n, p in shapes.items()}
    spec = model_spec("dmm", 88, kind="music")  # --model dmm with no size flags
    assert (spec["z_dim"], spec["h_dim"], spec["hidden_dims"], spec["rnn_dim"]) == (100, 200, [100, 100], 600)
    assert count_parameters(build_model(spec)) == 725_488


def _pair(**sizes):
    pyro.clear_param_store()
    torch.manual_seed(0)
    theirs = reference.ReferenceDMM(input_dim=88, **sizes).double()
    with torch.no_grad():  # the learned initial states away from 0, so that they matter
        for p in (theirs.z_0, theirs.z_q_0, theirs.h_0):
            p.normal_(0, 0.5)
    ours = DMM(88, sizes.get("z_dim", 100), transition_dim=sizes.get("transition_dim", 200),
               emission_dims=(sizes.get("emission_dim", 100),) * 2, rnn_dim=sizes.get("rnn_dim", 600),
               scale_floor=0.0).double()
    their_params = dict(theirs.named_parameters())
    ours.load_state_dict({n: their_params[_theirs(n)].detach().clone() for n, _ in ours.named_parameters()})
    return ours, theirs


def _batch():
    """Four piano-roll sequences of lengths 7, 3, 5, 1 (zero padding after each), and their bool mask."""
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([7, 3, 5, 1])
    mask = torch.arange(7) < lengths[:, None]
    x = (torch.rand(4, 7, 88, generator=g, dtype=torch.float64) > 0.85).double() * mask[..., None]
    return x, mask


def _loss_and_grads(elbo, model, guide, params, *args):
    pyro.set_rng_seed(4)
    for p in params.values():
        p.grad = None
    loss = elbo.loss_and_grads(model, guide, *args)
    return loss, {n: p.grad.clone() for n, p in params.items()}


@pytest.mark.parametrize("annealing_factor", [1.0, 0.3])
def test_dmm_equals_the_reference_model_and_guide_loss_and_gradients(annealing_factor):
    ours, theirs = _pair()
    x, mask = _batch()
    their_params = dict(theirs.named_parameters())
    reference_loss, reference_grads = _loss_and_grads(Trace_ELBO(max_plate_nesting=1), theirs.model, theirs.guide,
                                                      their_params, x, mask, annealing_factor)
    our_params = dict(ours.named_parameters())
    for elbo in (Trace_ELBO(max_plate_nesting=1), SequenceELBO(max_plate_nesting=1)):
        loss, grads = _loss_and_grads(elbo, ours.model, ours.guide, our_params, x, mask, annealing_factor)
        assert loss == pytest.approx(reference_loss, rel=1e-12)
        assert len(grads) == len(reference_grads) == 31
        for name, grad in grads.items():
            assert torch.allclose(grad, reference_grads[_theirs(name)], rtol=1e-9, atol=1e-10), name
    for name in ("z_0", "z_q_0", "h_0"):  # the learned initial states are reached
        assert reference_grads[name].abs().sum() > 0


def test_the_reference_dmm_ignores_what_lies_in_the_padding():
    """The reference's backward RNN starts at each sequence's last real step: filling the padding with
    ones leaves its loss unchanged (a flip of the whole padded tensor would not)."""
    pyro.clear_param_store()
    torch.manual_seed(0)
    theirs = reference.ReferenceDMM(input_dim=88, z_dim=4, emission_dim=8, transition_dim=8, rnn_dim=8).double()
    with torch.no_grad():
        theirs.h_0.normal_(0, 0.5)
    x, mask = _batch()
    padded_with_ones = torch.where(mask[..., None], x, torch.ones_like(x))
    elbo = Trace_ELBO(max_plate_nesting=1)
    losses = []
    for data in (x, padded_with_ones):
        pyro.set_rng_seed(4)
        losses.append(elbo.loss(theirs.model, theirs.guide, data, mask))
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)


def test_dmm_floors_its_scales_where_the_reference_does_not():
    m = DMM(88, 4, transition_dim=8, emission_dims=(8,), rnn_dim=8)
    with torch.no_grad():
        m.prior.raw_scale.bias.fill_(-1e4)   # softplus underflows to 0 here
        m.posterior.raw_scale.bias.fill_(-1e4)
    z = torch.zeros(2, 4)
    assert torch.equal(m.prior(z).base_dist.scale, torch.full((2, 4), 1e-3))
    assert torch.equal(m.posterior(torch.zeros(2, 8), z).base_dist.scale, torch.full((2, 4), 1e-3))


def test_dmm_is_a_named_model_with_a_bernoulli_emission_on_music():
    spec = model_spec("dmm", 88, kind="music", z_dim=4, h_dim=8, hidden_dims=(8,))
    m = build_model(spec)
    assert isinstance(m, DMM) and spec["family"] == "dmm" and spec["guide"] == "combiner"
    assert isinstance(m.emission(torch.zeros(2, 4)).base_dist, dist.Bernoulli)
    with pytest.raises(ValueError, match="fixed"):
        model_spec("dmm", 88, guide="filtering")


def test_the_dmm_preset_keeps_the_examples_sizes():
    from pyro_vrnn.train.presets import get_preset
    flags = get_preset("dmm").flags
    assert flags["model"] == "dmm" and not {"z_dim", "h_dim", "hidden_dims", "feature_dims"} & set(flags)
