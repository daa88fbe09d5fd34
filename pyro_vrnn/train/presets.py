"""Named configurations of ``pyro-vrnn train`` / ``compare``: sizes, budgets and objectives per data kind.

A preset is a set of command-line settings (keyed by the flags' argparse names, e.g. ``h_dim`` for
``--h-dim``). ``--preset NAME`` fills every flag the user did not give; a flag given on the command
line always wins::

    pyro-vrnn train --preset music --data music:jsb_chorales.pickle --out runs/jsb            # the preset
    pyro-vrnn train --preset music --h-dim 64 --data music:jsb_chorales.pickle --out runs/jsb  # h 64 wins

``pyro-vrnn presets`` lists them. The CPU presets (``music``, ``speech``, ``handwriting``) are sized
for one thread of a small machine, train early-stopped on validation with a plateau learning-rate
schedule, and carry over unchanged to the other corpora of their kind (MuseData and Piano-midi for
``music``; ``dmm`` is the music preset for ``--model dmm`` at Pyro's example's sizes, which the
``music`` preset's sizes would replace); ``paper`` holds the VRNN paper's sizes (Chung et al. 2015, Table 1) for a GPU.
docs/results.md gives the measured figures and the commands behind them (``benchmarks/fidelity.sh``
reruns each table): ``music`` is the configuration of its early-stopped JSB and Nottingham runs;
``speech`` gave the VRNN paper's ordering on LibriSpeech (RNN-Normal < RNN-GMM < STORN < VRNN) with
2,000 steps a model (3–12 minutes each on one thread), ``handwriting`` the VRNN-GMM on top on Omniglot
with 4,000 steps (9–21 minutes); both were sized, not tuned, on those corpora (no sweep over sizes
or rates was run).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """A named set of flag values (``flags``: argparse name -> value) with a one-line description."""

    name: str
    description: str
    flags: dict = field(default_factory=dict)

    def command_line(self) -> str:
        """The flags as they would be typed, e.g. ``--h-dim 256 --feature-dims 128,128``."""
        words = []
        for key, value in self.flags.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                words.append(flag)
            elif isinstance(value, (list, tuple)):
                words.append(f"{flag} {','.join(str(v) for v in value)}")
            else:
                words.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
        return " ".join(words)


#: early stopping and the learning-rate schedule shared by the CPU presets (patience counts validations)
_CONVERGE = {"lr_schedule": "plateau", "lr_factor": 0.5, "lr_patience": 5, "min_lr": 1e-5}

PRESETS = {p.name: p for p in (
    Preset("music", "binary piano rolls (JSB chorales, Nottingham, MuseData, Piano-midi): VRNN with a "
           "Bernoulli emission, early-stopped on validation; measured in an hour of one CPU thread: test NLL "
           "6.77 (IS) / 6.69 (SMC) per step on JSB, 2.91 / 2.80 on Nottingham (docs/results.md)",
           {"model": "vrnn-normal", "h_dim": 256, "z_dim": 32, "feature_dims": [128], "hidden_dims": [128],
            "batch_size": 16, "lr": 1e-3, "steps": 20000, "kl_anneal_steps": 1000, "kl_anneal_start": 0.1,
            "valid_every": 50, "patience": 20, "checkpoint_every": 500, "bucket_by_length": True, **_CONVERGE}),
    Preset("dmm", "binary piano rolls with Pyro's Deep Markov Model at examples/dmm.py's sizes (z 100, "
           "emission 100,100, gated transition 200, backward ReLU RNN 600: 725,488 parameters on 88 keys), "
           "trained as the music preset (the example's own optimizer settings are not reproduced)",
           {"model": "dmm", "batch_size": 16, "lr": 1e-3, "steps": 20000, "kl_anneal_steps": 1000,
            "kl_anneal_start": 0.1, "valid_every": 50, "patience": 20, "checkpoint_every": 500,
            "bucket_by_length": True, **_CONVERGE}),
    Preset("music-long", "the music preset for corpora of long pieces (MuseData, Piano-midi: thousands of steps "
           "a piece) with windowed training, one update per window of 100 steps (--train-window 100), the "
           "state carried across windows; validation and evaluation on whole pieces; Piano-midi 7.69, MuseData "
           "6.80 by SMC after 80 minutes (docs/results.md section 6b; music-ar does better)",
           {"model": "vrnn-normal", "h_dim": 256, "z_dim": 32, "feature_dims": [128], "hidden_dims": [128],
            "batch_size": 16, "lr": 1e-3, "steps": 20000, "kl_anneal_steps": 1000, "kl_anneal_start": 0.1,
            "valid_every": 50, "patience": 20, "checkpoint_every": 500, "bucket_by_length": True,
            "train_window": 100, **_CONVERGE}),
    Preset("music-ar", "binary piano rolls, one preset for all four sets: the music-long VRNN (windows of 100 "
           "steps, the state carried across windows) with the autoregressive emission, which models the keys "
           "sounding together within a step as RNN-NADE does (--emission autoregressive); measured on one "
           "loaded CPU thread, test NLL per step by IS / SMC: JSB 5.72 / 5.68, Nottingham 2.33 / 2.32, "
           "MuseData 5.83 / 5.83, Piano-midi 7.21 / 7.21; with --model srnn Piano-midi 7.12 / 7.12 "
           "(docs/results.md section 6a)",
           {"model": "vrnn-normal", "emission": "autoregressive", "h_dim": 256, "z_dim": 32, "feature_dims": [128],
            "hidden_dims": [128], "batch_size": 16, "lr": 1e-3, "steps": 20000, "kl_anneal_steps": 1000,
            "kl_anneal_start": 0.1, "valid_every": 50, "patience": 20, "checkpoint_every": 500,
            "bucket_by_length": True, "train_window": 100, **_CONVERGE}),
    Preset("speech", "raw 16 kHz audio in 200-sample frames, 0.5 s training chunks (LibriSpeech): VRNN-Normal, "
           "the best of the five seed models measured with --steps 2000 (docs/results.md; --model vrnn-gmm "
           "uses the 5 components)", {"model": "vrnn-normal", "h_dim": 256, "z_dim": 32, "feature_dims": [256],
                         "hidden_dims": [256], "num_components": 5, "batch_size": 32, "lr": 1e-3, "steps": 10000,
                         "valid_every": 200, "patience": 10, "checkpoint_every": 500, **_CONVERGE}),
    Preset("handwriting", "pen offsets (dx, dy, pen-up) (Omniglot strokes, IAM-OnDB): VRNN with the bivariate "
           "mixture + pen-bit emission, CPU-sized; measured on Omniglot with --steps 4000 (docs/results.md)",
           {"model": "vrnn-gmm", "emission": "handwriting", "h_dim": 256, "z_dim": 16, "feature_dims": [128],
            "hidden_dims": [128], "num_components": 10, "batch_size": 64, "lr": 1e-3, "steps": 10000,
            "valid_every": 200, "patience": 10, "checkpoint_every": 500, "bucket_by_length": True, **_CONVERGE}),
    Preset("paper", "the VRNN paper's Table 1 sizes for a GPU (LSTM 2000, z 200, four 600-unit ReLU layers per "
           "network, 20 mixture components, Adam 3e-4, batch 128); give --model and --data",
           {"h_dim": 2000, "z_dim": 200, "feature_dims": [600, 600, 600, 600],
            "hidden_dims": [600, 600, 600, 600], "num_components": 20, "batch_size": 128, "lr": 3e-4,
            "steps": 200000, "valid_every": 1000, "patience": 20, "checkpoint_every": 1000, **_CONVERGE}),
)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)} (see 'pyro-vrnn presets')")
    return PRESETS[name]


def describe_presets() -> str:
    """One paragraph per preset: its name, description and flags (what ``pyro-vrnn presets`` prints)."""
    return "\n\n".join(f"{p.name}: {p.description}\n  {p.command_line()}" for p in PRESETS.values())
