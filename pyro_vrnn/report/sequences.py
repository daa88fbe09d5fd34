"""The sequences ``score`` and ``forecast`` read for a run: its own test split, or every sequence of
another dataset, always in the run's normalization.

``load_run_sequences(config, normalizer, x_dim, data=SPEC)`` loads ``SPEC`` (any ``--data`` spec)
without holding anything out: every split, in the order ``train``, ``valid``, ``test``; for a
``series:`` source ``valid_fraction`` and ``test_fraction`` are 0 unless the options say otherwise,
so a single long series stays whole instead of being cut in time. Each
sequence is un-normalized with the normalizer fitted on ``SPEC`` and normalized with the run's
(``x -> (x - shift_run) / scale_run``): the model sees the same units it was trained on. Without
``data``, the run's own test split. Names come from the loader (``info["sequence_names"]``: the id,
file or key), else ``split/index``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data import load_dataset
from ..train.runs import load_data

NO_SPLIT = {"valid_fraction": 0.0, "test_fraction": 0.0}


@dataclass
class RunSequences:
    """``sequences``: ``(T_i, X)`` float32 tensors in the run's normalization; ``names``: one per sequence;
    ``normalizer``: the run's; ``feature_names``: ``X`` column names (``x0, x1, ...`` when the data
    have none); ``kind``: the data kind; ``source``: what was read, in words."""

    names: list
    sequences: list
    normalizer: object
    feature_names: list
    kind: str
    source: str


def _load_whole(data: str, options: dict):
    """``load_dataset(data)``; a ``series:`` source with nothing held out (a single series would
    otherwise be cut in time into train, valid and test pieces) unless the options say otherwise."""
    if data.startswith("series:") and not NO_SPLIT.keys() & options.keys():
        options = {**NO_SPLIT, **options}
    return load_dataset(data, **options)


def _names(dataset, split: str, count: int) -> list:
    given = (dataset.info.get("sequence_names") or {}).get(split)
    if given is not None and len(given) == count:
        return [str(name) for name in given]
    return [f"{split}/{i}" for i in range(count)]


def load_run_sequences(config: dict, normalizer, x_dim: int, data: str | None = None,
                       data_options: dict | None = None) -> RunSequences:
    """The sequences of ``data`` (every split; see the module docstring), or of the run's test split
    when ``data`` is None, in the run's normalization. ``normalizer``: the run's (``None``: the one its
    own data give). Raises ``ValueError`` naming ``--data`` when a step has not ``x_dim`` features."""
    if data is None:
        if data_options:
            raise ValueError("data options (--data-option) apply only with --data")
        dataset = load_data(config)
        splits, source = ("test",), f"the test split of {config['data']}"
    else:
        dataset = _load_whole(data, dict(data_options or {}))
        splits, source = ("train", "valid", "test"), f"every sequence of {data}"
    if dataset.x_dim != x_dim:
        raise ValueError(f"--data {data or config['data']}: a step has {dataset.x_dim} features, but the run's "
                         f"model takes {x_dim}")
    run_normalizer = normalizer if normalizer is not None else (
        dataset.normalizer if data is None else load_data(config).normalizer)
    names, sequences = [], []
    for split in splits:
        seqs = dataset.split(split)
        names += _names(dataset, split, len(seqs))
        sequences += [run_normalizer.normalize(dataset.normalizer.denormalize(s.double())).float() for s in seqs]
    if not sequences:
        raise ValueError(f"{source} holds no sequences" + (" (give --data)" if data is None else ""))
    features = dataset.info.get("feature_names")
    features = [str(f) for f in features] if features and len(features) == x_dim else [f"x{d}" for d in range(x_dim)]
    return RunSequences(names=names, sequences=sequences, normalizer=run_normalizer, feature_names=features,
                        kind=dataset.kind, source=source)
