"""Samples from a trained run, in data units, with real sequences of the same data beside them.

:func:`generate_samples` draws ancestral samples ``x ~ p(x)`` and un-normalizes them with the run's
saved normalizer; :func:`sample_run` writes them out: ``samples.png`` (generated beside real),
``samples.pt`` (the tensors), and for speech ``sample_{i}.wav`` / ``real_{i}.wav`` (16-bit PCM).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pyro
import torch

from . import plots
from .data import write_wav
from .outputs import check_sample_folder
from .runs import load_data, load_run

DEFAULT_LENGTHS = {"speech": 80, "handwriting": 120, "music": 64}


def postprocess(kind: str, x: torch.Tensor) -> torch.Tensor:
    """Make samples look like the data: pen bits thresholded to 0/1 for handwriting, clipped rolls for music."""
    if kind == "handwriting" and x.shape[-1] == 3:
        x = x.clone()
        x[..., 2] = (x[..., 2] > 0.5).to(x.dtype)
    elif kind == "music":
        x = (x > 0.5).to(x.dtype)
    return x


@torch.no_grad()
def generate_samples(model, normalizer, kind: str, num: int, length: int, seed: int | None = 0) -> torch.Tensor:
    """``(num, length, x_dim)`` samples in data units (float32 on CPU)."""
    if num < 1 or length < 1:
        raise ValueError(f"--num and --length must be >= 1, got {num}, {length}")
    if seed is not None:
        pyro.set_rng_seed(seed)
    x = model.generate(num, length).detach().float().cpu()
    if normalizer is not None:
        x = normalizer.denormalize(x).float()
    return postprocess(kind, x)


def real_examples(dataset, split: str, num: int, length: int | None = None) -> list[torch.Tensor]:
    """The first ``num`` sequences of ``split`` in data units, cut to ``length`` steps."""
    seqs = dataset.split(split)[:num]
    return [postprocess(dataset.kind, dataset.normalizer.denormalize(s[:length] if length else s).float())
            for s in seqs]


def typical_length(dataset, kind: str) -> int:
    lengths = [s.shape[0] for s in dataset.train]
    return int(statistics.median(lengths)) if lengths else DEFAULT_LENGTHS[kind]


def sample_run(run_dir, out, *, num: int = 4, length: int | None = None, seed: int = 0, device="cpu",
               with_real: bool = True, dataset=None, checkpoint: str = "best") -> dict:
    """Generate ``num`` samples from a run into folder ``out``; returns the paths written.

    ``length`` defaults to the median training length (speech: 40 frames = 0.5 s at 16 kHz);
    ``checkpoint``: ``"best"`` on validation (when the run has one) or ``"last"``.
    """
    model, config, normalizer, _ = load_run(run_dir, device, checkpoint)
    dataset = dataset if dataset is not None else (load_data(config) if with_real or normalizer is None else None)
    if normalizer is None and dataset is not None:
        normalizer = dataset.normalizer
    kind = dataset.kind if dataset is not None else _kind_of(config)
    length = length or (typical_length(dataset, kind) if dataset is not None else DEFAULT_LENGTHS[kind])
    out = Path(out)
    real = real_examples(dataset, "test", num, length) if dataset is not None and with_real else []
    check_sample_folder(out, ["samples.pt", "samples.png"] + (
        [f"sample_{i}.wav" for i in range(num)] + [f"real_{i}.wav" for i in range(len(real))]
        if kind == "speech" else []))
    out.mkdir(parents=True, exist_ok=True)
    samples = generate_samples(model, normalizer, kind, num, length, seed)
    written = {"samples": str(out / "samples.pt")}
    tmp = out / f".samples.pt.tmp-{os.getpid()}"
    torch.save({"samples": samples, "real": real, "config": config}, tmp)
    os.replace(tmp, out / "samples.pt")
    rate = int((dataset.info.get("sample_rate") if dataset is not None else None) or 16000)
    written["figure"] = str(plots.plot_samples(kind, list(samples), real, out / "samples.png",
                                               title=f"{config['model']['name']} on {config['data']}",
                                               sample_rate=rate))
    if kind == "speech":
        written["wav"] = [str(write_wav(out / f"sample_{i}.wav", s, sample_rate=rate)) for i, s in enumerate(samples)]
        written["wav_real"] = [str(write_wav(out / f"real_{i}.wav", s, sample_rate=rate)) for i, s in enumerate(real)]
    return written


def _kind_of(config: dict) -> str:
    data = config["data"]
    return data.split("-")[0] if data.endswith("-synthetic") else data.split(":", 1)[0]
