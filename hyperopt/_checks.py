"""Argument checks shared by hyperopt's modules (numpy only, no autodiff)."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["float_dtype", "scalar_loss"]


def float_dtype(dtype: Any, what: str = "dtype") -> np.dtype:
    """``dtype`` as an ``np.dtype`` if it is float32 or float64; otherwise a
    ValueError naming ``what``.  ``None`` means float64, as in numpy.
    (Integer and bool values cannot carry a derivative; float16 underflows
    Adam's eps and small squared gradients to 0; complex and object arrays are
    not what the models and optimizers compute in.)"""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be float32 or float64 (np.float32 / np.float64), "
                         f"got {dtype!r}") from None
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise ValueError(f"{what} must be float32 or float64 (np.float32 / np.float64), "
                         f"got {dt.name}")
    return np.dtype(dt.name)  # native byte order


def scalar_loss(value, what: str = "model.loss"):
    """``value`` as a 0-d scalar (of whatever number type it is).

    A loss of shape (1,) or (1, 1) is accepted, as `autodiff.grad` accepts it,
    and reshaped to () (the same number, the same derivative), so everything
    downstream sees one shape.  A loss with another number of elements (a
    per-example loss, say) raises ValueError naming ``what`` and the shape.
    """
    if value is None:
        raise ValueError(f"{what} must return a scalar (one element), got None")
    shape = np.shape(value)
    if int(np.prod(shape)) != 1:
        raise ValueError(f"{what} must return a scalar (one element), got shape {shape}; "
                         "reduce it with np.mean")
    return value if shape == () else np.reshape(value, ())
