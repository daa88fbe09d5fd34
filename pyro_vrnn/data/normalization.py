"""Per-dimension affine normalization, fitted on the training split and carried with the model.

``normalize(x) = (x - shift) / scale`` and ``denormalize(y) = y * scale + shift``, with ``shift`` and
``scale`` of shape ``(D,)`` broadcast over any leading dimensions. Three fits cover the data kinds:

- :meth:`Normalizer.identity` — binary piano rolls stay 0/1;
- :meth:`Normalizer.fit_global` — one mean and one std over every value (raw-audio frames, as in
  the VRNN paper);
- :meth:`Normalizer.fit_offset_scale` — handwriting: ``(dx, dy)`` divided by their training std,
  no shift (a zero offset stays zero), the pen bit left untouched;
- :meth:`Normalizer.fit_standard` — tabular series: each dimension z-scored by its own training
  mean and std, 0/1 columns left untouched.

A fit refuses (:class:`DataError`) training values whose std is zero or lost in rounding —
``std <= 1e-7 * max|x|``, all-zero data included: there is nothing to scale by, and dividing by a
floor such as ``1e-8`` would blow the valid and test values up by that factor.

:meth:`Normalizer.state_dict` is a plain ``dict`` of strings and tensors, so it can be saved inside a
``torch.save`` checkpoint and rebuilt with :meth:`Normalizer.from_state_dict` at generation time.
"""

import math

import numpy as np
import torch

from .errors import DataError

#: a std at most this fraction of the largest magnitude is rounding noise: the values are constant
DEGENERATE_STD = 1e-7


def _checked_std(std, largest, what):
    """``std`` if it is a usable scale for values of magnitude up to ``largest``, else :class:`DataError`."""
    if not (math.isfinite(std) and math.isfinite(largest)):
        raise DataError(f"cannot normalize: the training {what} hold NaN or Inf")
    if not std > DEGENERATE_STD * largest:
        raise DataError(f"cannot normalize: the training {what} are all equal (std {std:.3g}, largest magnitude "
                        f"{largest:.3g}), so there is no scale to divide by; the training split holds no variation")
    return std


class Normalizer:
    """``x -> (x - shift) / scale`` per dimension.

    :param torch.Tensor shift: ``(D,)``.
    :param torch.Tensor scale: ``(D,)``, positive.
    :param str description: a short human-readable account of the fit, used by ``describe()``.
    """

    def __init__(self, shift, scale, description="affine"):
        shift = torch.as_tensor(shift, dtype=torch.float64).reshape(-1).clone()
        scale = torch.as_tensor(scale, dtype=torch.float64).reshape(-1).clone()
        if shift.shape != scale.shape:
            raise DataError(f"normalizer shift {tuple(shift.shape)} and scale {tuple(scale.shape)} differ")
        if not (torch.isfinite(shift).all() and torch.isfinite(scale).all() and (scale > 0).all()):
            raise DataError("normalizer shift/scale must be finite with scale > 0")
        self.shift = shift
        self.scale = scale
        self.description = description

    @property
    def x_dim(self):
        return self.shift.numel()

    @property
    def is_identity(self):
        return bool((self.shift == 0).all() and (self.scale == 1).all())

    # ---- fits ---------------------------------------------------------------------------------
    @classmethod
    def identity(cls, x_dim):
        """No change: for binary data (piano rolls)."""
        return cls(torch.zeros(x_dim), torch.ones(x_dim), description="identity (binary data kept 0/1)")

    @classmethod
    def fit_global(cls, seqs, x_dim=None):
        """One mean and one std over every value of ``seqs`` (a list of ``(T, D)`` tensors or 1-D
        waveforms); the same pair is used for every dimension."""
        total, total_sq, count, largest = 0.0, 0.0, 0, 0.0
        for s in seqs:
            s = torch.as_tensor(s, dtype=torch.float64)
            total += s.sum().item()
            total_sq += (s * s).sum().item()
            count += s.numel()
            largest = max(largest, s.abs().max().item() if s.numel() else 0.0)
            if x_dim is None and s.dim() == 2:
                x_dim = s.shape[-1]
        if count == 0:
            raise DataError("cannot fit a normalizer on an empty training split")
        mean = total / count
        var = max(total_sq / count - mean * mean, 0.0)
        std = _checked_std(var ** 0.5, largest, "values")
        x_dim = 1 if x_dim is None else x_dim
        return cls(torch.full((x_dim,), mean), torch.full((x_dim,), std),
                   description=f"global mean/std over training values (mean={mean:.4g}, std={std:.4g})")

    @classmethod
    def fit_offset_scale(cls, seqs, scaled_dims=(0, 1)):
        """Divide ``scaled_dims`` by one std pooled over those dims of the training rows (no shift);
        other dimensions (the pen bit) are left unchanged. ``seqs``: list of ``(T, D)`` tensors."""
        values = [torch.as_tensor(s, dtype=torch.float64)[:, list(scaled_dims)].reshape(-1) for s in seqs]
        if not values or sum(v.numel() for v in values) == 0:
            raise DataError("cannot fit a normalizer on an empty training split")
        flat = torch.cat(values)
        std = _checked_std(flat.std(unbiased=False).item(), flat.abs().max().item(),
                           f"values of dims {list(scaled_dims)}")
        x_dim = seqs[0].shape[-1]
        scale = torch.ones(x_dim, dtype=torch.float64)
        scale[list(scaled_dims)] = std
        return cls(torch.zeros(x_dim), scale,
                   description=f"dims {list(scaled_dims)} divided by training std {std:.4g}; others kept")

    @classmethod
    def fit_standard(cls, seqs, keep_dims=(), names=None):
        """Each dimension ``d`` z-scored, ``(x_d - mean_d) / std_d``, with the mean and (population) std of
        dimension ``d`` over every training step; dimensions in ``keep_dims`` (0/1 columns) are left
        unchanged. ``seqs``: list of ``(T, D)`` tensors or arrays; ``names``: ``D`` column names used in
        the error for a constant column."""
        rows = [torch.as_tensor(s, dtype=torch.float64) for s in seqs]
        if not rows or sum(r.shape[0] for r in rows) == 0:
            raise DataError("cannot fit a normalizer on an empty training split")
        flat = torch.cat(rows, dim=0)
        x_dim = flat.shape[1]
        names = list(names) if names is not None else [f"dimension {d}" for d in range(x_dim)]
        keep = {int(d) for d in keep_dims}
        shift = torch.zeros(x_dim, dtype=torch.float64)
        scale = torch.ones(x_dim, dtype=torch.float64)
        for d in range(x_dim):
            if d in keep:
                continue
            column = flat[:, d]
            shift[d] = column.mean()
            scale[d] = _checked_std(column.std(unbiased=False).item(), column.abs().max().item(),
                                    f"values of column {names[d]!r}")
        kept = [names[d] for d in sorted(keep)]
        return cls(shift, scale, description="each column z-scored by its training mean and std"
                   + (f"; 0/1 columns kept: {', '.join(kept)}" if kept else ""))

    # ---- use ----------------------------------------------------------------------------------
    def normalize(self, x):
        """``x``: ``(..., D)`` tensor (or NumPy array) -> ``(..., D)`` normalized tensor, same dtype and device."""
        x = self._tensor(x)
        shift, scale = self._like(x)
        return (x - shift) / scale

    def denormalize(self, x):
        """Inverse of :meth:`normalize`; ``x``: ``(..., D)`` tensor or NumPy array."""
        x = self._tensor(x)
        shift, scale = self._like(x)
        return x * scale + shift

    @staticmethod
    def _tensor(x):
        if torch.is_tensor(x):
            return x
        if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
            return torch.as_tensor(x)
        raise DataError(f"the normalizer takes a tensor (or NumPy array) of real numbers of shape (..., D), got "
                        f"{type(x).__name__}" + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))

    def _like(self, x):
        if x.dim() == 0 or x.shape[-1] != self.x_dim:
            raise DataError(f"normalizer expects last dimension {self.x_dim}, got shape {tuple(x.shape)}")
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return self.shift.to(x.device, dtype), self.scale.to(x.device, dtype)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self):
        """A plain dict (str and tensors) for ``torch.save``."""
        return {"type": "affine", "shift": self.shift.clone(), "scale": self.scale.clone(),
                "description": self.description}

    @classmethod
    def from_state_dict(cls, state):
        """Rebuild from :meth:`state_dict`."""
        if not isinstance(state, dict) or state.get("type") != "affine" or "shift" not in state \
                or "scale" not in state:
            raise DataError("not a normalizer state dict (expected type 'affine' with shift and scale)")
        return cls(state["shift"], state["scale"], description=state.get("description", "affine"))

    def __repr__(self):
        return f"Normalizer(x_dim={self.x_dim}, {self.description})"
