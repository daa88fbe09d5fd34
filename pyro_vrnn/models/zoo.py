"""Named models: the paper's five seed configurations, and any prior/guide/emission combination,
described by a plain, JSON-serialisable spec and built from it.

A *spec* is everything needed to rebuild a model's architecture (the run folder's ``config.json``
holds one under ``"model"``)::

    {"name": "vrnn-gmm", "family": "vrnn", "prior": "conditional", "guide": "filtering",
     "emission": "gmm", "transition": "lstm", "x_dim": 200, "z_dim": 16, "h_dim": 64,
     "feature_dims": [64], "hidden_dims": [64], "num_components": 20, "rnn_dim": null}

=============  =======  ===========  =========  ==========
name           family   prior        guide      emission
=============  =======  ===========  =========  ==========
rnn-normal     rnn      --           --         normal
rnn-gmm        rnn      --           --         gmm
storn          storn    standard     storn      normal
vrnn-i         vrnn     standard     filtering  normal      (Chung et al.: the VRNN with p(z_t) = N(0, I))
dmm            dmm      gated        combiner   normal      (Pyro's examples/dmm.py; h sizes the gated transition)
srnn           srnn     srnn         resq       normal      (Fraccaro et al. 2016: prior and guide fixed)
vrnn-normal    vrnn     conditional  filtering  normal
vrnn-gmm       vrnn     conditional  filtering  gmm
=============  =======  ===========  =========  ==========

Sizes left out (``None``) take the family's defaults, :data:`SIZE_DEFAULTS`: z 16, h 64, hidden 64 for
the RNN, STORN and VRNN families; Pyro's ``examples/dmm.py`` defaults for the DMM (z 100, gated
transition 200 wide as ``h``, emission layers (100, 100) as ``hidden_dims``, backward RNN 600).

On binary data (music) a real-valued emission (``normal``, ``gmm``) would be meaningless: the seed
models then use ``bernoulli`` instead, so ``rnn-gmm`` and ``vrnn-gmm`` become the same models as
``rnn-normal`` and ``vrnn-normal`` (:func:`compare <pyro_vrnn.evaluation.compare>` skips such duplicates).
"""

from __future__ import annotations

from ..components import registry
from .base import SequenceModel
from .seeds import DMM, RNN, SRNN, STORN, VRNN, _positive

SEED_MODELS: dict[str, dict] = {
    "rnn-normal": {"family": "rnn", "prior": None, "guide": None, "emission": "normal"},
    "rnn-gmm": {"family": "rnn", "prior": None, "guide": None, "emission": "gmm"},
    "storn": {"family": "storn", "prior": "standard", "guide": "storn", "emission": "normal"},
    "vrnn-i": {"family": "vrnn", "prior": "standard", "guide": "filtering", "emission": "normal"},
    "vrnn-normal": {"family": "vrnn", "prior": "conditional", "guide": "filtering", "emission": "normal"},
    "vrnn-gmm": {"family": "vrnn", "prior": "conditional", "guide": "filtering", "emission": "gmm"},
    "dmm": {"family": "dmm", "prior": "gated", "guide": "combiner", "emission": "normal"},
    "srnn": {"family": "srnn", "prior": "srnn", "guide": "resq", "emission": "normal"},
}
"""The VRNN paper's Table 1 models (plus VRNN-I), by command-line name. ``family`` names the model
class: ``rnn`` (:class:`~pyro_vrnn.models.seeds.RNN`), ``storn`` (:class:`~pyro_vrnn.models.seeds.STORN`, Bayer &
Osendorfer's recurrence), ``vrnn`` (:class:`~pyro_vrnn.models.seeds.VRNN`) or ``dmm``
(:class:`~pyro_vrnn.models.seeds.DMM`, Pyro's Deep Markov Model; its prior and guide are fixed) or ``srnn``
(:class:`~pyro_vrnn.models.seeds.SRNN`, Fraccaro et al. 2016; prior ``p(z_t | z_{t-1}, d_t)`` and
residual guide ``q(z_t | z_{t-1}, a_t)`` fixed)."""

DISPLAY_NAMES = {"rnn-normal": "RNN-Normal", "rnn-gmm": "RNN-GMM", "storn": "STORN", "vrnn-i": "VRNN-I",
                 "vrnn-normal": "VRNN-Normal", "vrnn-gmm": "VRNN-GMM", "dmm": "DMM", "srnn": "SRNN"}

PRIORS = tuple(registry.PRIORS)  # the names, from the one registry
GUIDES = tuple(registry.GUIDES)
EMISSIONS = tuple(registry.EMISSIONS)
TRANSITIONS = tuple(registry.TRANSITIONS)
MODEL_CLASSES = {"rnn": RNN, "storn": STORN, "vrnn": VRNN, "dmm": DMM, "srnn": SRNN}
SIZE_DEFAULTS = {"dmm": {"z_dim": 100, "h_dim": 200, "hidden_dims": (100, 100), "rnn_dim": 600},
                 None: {"z_dim": 16, "h_dim": 64, "hidden_dims": (64,), "rnn_dim": None}}
"""The sizes a spec takes when none is given: per family (``None``: every other family)."""
# the emission a named model uses on each kind of data when none is given explicitly
_BINARY_KINDS = ("music",)


def _dims(label, values):
    values = [int(v) for v in values]
    if any(v < 1 for v in values):
        raise ValueError(f"{label} must be positive integers, got {values}")
    return values


def model_spec(name: str, x_dim: int, *, kind: str | None = None, prior: str | None = None,
               guide: str | None = None, emission: str | None = None, transition: str = "lstm",
               z_dim: int | None = None, h_dim: int | None = None, feature_dims=(64,), hidden_dims=None,
               num_components: int = 20, rnn_dim: int | None = None) -> dict:
    """The spec of model ``name`` (a key of :data:`SEED_MODELS`) on data of ``kind``, with overrides.

    ``prior``/``guide`` turn an RNN name into a latent model (``--model rnn-normal --prior
    conditional`` is a VRNN-Normal); on ``kind="music"`` the seed's ``normal``/``gmm`` emission
    becomes ``bernoulli`` unless ``emission`` is given. Raises ``ValueError`` for unknown names,
    non-positive sizes and impossible combinations (a prior without a guide, handwriting emission
    on data that is not ``(dx, dy, pen)``).
    """
    if name not in SEED_MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(SEED_MODELS)}")
    seed = SEED_MODELS[name]
    if seed["family"] in ("dmm", "srnn") and (prior, guide) == (seed["prior"], seed["guide"]):
        prior = guide = None  # a saved spec (a resumed run) names the fixed prior and guide: they are the model's
    for label, value, allowed in (("prior", prior, PRIORS), ("guide", guide, GUIDES),
                                  ("emission", emission, EMISSIONS), ("transition", transition, TRANSITIONS)):
        if value is not None and value not in allowed:
            raise ValueError(f"unknown {label} {value!r}; expected one of {', '.join(allowed)}")
    if seed["family"] == "dmm" and (prior, guide) != (None, None):
        raise ValueError("the DMM's prior (gated transition) and guide (combiner) are fixed; pass prior=None and guide=None")
    if seed["family"] == "srnn" and (prior, guide) != (None, None):
        raise ValueError("the SRNN's prior p(z_t | z_{t-1}, d_t) and guide (resq) are fixed; pass prior=None and "
                         "guide=None (no --prior, --guide)")
    sizes = SIZE_DEFAULTS.get(seed["family"], SIZE_DEFAULTS[None])
    z_dim = sizes["z_dim"] if z_dim is None else z_dim
    h_dim = sizes["h_dim"] if h_dim is None else h_dim
    hidden_dims = sizes["hidden_dims"] if hidden_dims is None else hidden_dims
    rnn_dim = sizes["rnn_dim"] if rnn_dim is None else rnn_dim
    prior = prior or seed["prior"]
    guide = guide or seed["guide"]
    if (prior is None) != (guide is None):  # an RNN name given only one of the two latent pieces
        prior = prior or "conditional"
        guide = guide or "filtering"
    family = "rnn" if prior is None else ("vrnn" if seed["family"] == "rnn" else seed["family"])
    if emission is None:
        emission = "bernoulli" if kind in _BINARY_KINDS else seed["emission"]
    if emission == "handwriting" and int(x_dim) != 3:
        raise ValueError(f"the handwriting emission models (dx, dy, pen) steps, but the data have x_dim={x_dim}")
    spec = {
        "name": name, "family": family, "prior": prior, "guide": guide, "emission": emission,
        "transition": transition, "x_dim": _positive("x_dim", x_dim),
        "z_dim": _positive("z_dim", z_dim) if family != "rnn" else None, "h_dim": _positive("h_dim", h_dim),
        "feature_dims": _dims("feature_dims", feature_dims), "hidden_dims": _dims("hidden_dims", hidden_dims),
        "num_components": _positive("num_components", num_components) if emission in ("gmm", "handwriting")
        else None,
        "rnn_dim": _positive("rnn_dim", rnn_dim) if rnn_dim is not None else None,
    }
    return spec


def describe_spec(spec: dict) -> str:
    """A short label: the paper's name when the spec is a seed model as is, else its parts."""
    name = spec["name"]
    seed = SEED_MODELS.get(name, {})
    if (spec["prior"], spec["guide"], spec["emission"]) == (seed.get("prior"), seed.get("guide"), seed.get("emission")):
        return DISPLAY_NAMES.get(name, name)
    # the seed model's name without its emission ("VRNN-I", "DMM"), else the family's
    base = {"rnn-normal": "RNN", "rnn-gmm": "RNN", "vrnn-normal": "VRNN", "vrnn-gmm": "VRNN"}.get(
        name, DISPLAY_NAMES.get(name) or {"rnn": "RNN", "storn": "STORN", "dmm": "DMM"}.get(spec["family"], "VRNN"))
    parts = [spec["emission"].capitalize() if spec["emission"] != "gmm" else "GMM"]
    if spec["family"] != "rnn" and (spec["prior"], spec["guide"]) != (seed.get("prior"), seed.get("guide")):
        parts.append(f"{spec['prior']} prior, {spec['guide']} guide")
    return f"{base}-{parts[0]}" + (f" ({parts[1]})" if len(parts) > 1 else "")


def architecture(spec: dict) -> tuple:
    """The parts of a spec that decide the model (for spotting duplicates; the name is left out)."""
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(spec.items()) if k != "name")


def build_model(spec: dict) -> SequenceModel:
    """A fresh :class:`~pyro_vrnn.models.SequenceModel` from a spec (parameters drawn from torch's RNG)."""
    try:
        common = dict(emission=spec["emission"], transition=spec["transition"],
                      feature_dims=tuple(spec["feature_dims"]), hidden_dims=tuple(spec["hidden_dims"]),
                      num_components=spec["num_components"] or 20)
        family = spec["family"]
        if family not in MODEL_CLASSES:
            raise ValueError(f"unknown model family {family!r}; expected one of {', '.join(MODEL_CLASSES)}")
        if family == "rnn":
            return RNN(spec["x_dim"], spec["h_dim"], **common)
        if family == "dmm":
            return DMM(spec["x_dim"], spec["z_dim"], spec["emission"], transition_dim=spec["h_dim"],
                       emission_dims=tuple(spec["hidden_dims"]), rnn_dim=spec["rnn_dim"] or spec["h_dim"])
        if family == "srnn":
            return SRNN(spec["x_dim"], spec["z_dim"], spec["h_dim"], rnn_dim=spec["rnn_dim"], **common)
        return MODEL_CLASSES[family](spec["x_dim"], spec["z_dim"], spec["h_dim"], prior=spec["prior"],
                                     guide=spec["guide"], rnn_dim=spec["rnn_dim"], **common)
    except KeyError as missing:
        raise ValueError(f"model spec lacks {missing}") from None


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
