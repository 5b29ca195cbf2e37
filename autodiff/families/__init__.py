"""Families of numpy vocabulary beyond the core primitives.

Each module here holds one family (its primitives, registered in
`autodiff.primitives.REGISTRY`; their derivative rules, written with
primitives; the numpy-compatible functions; and the tables ``UFUNCS`` and
``FUNCTIONS`` that route numpy calls on traced values to them).
`autodiff.numpy_api` merges the tables of every module listed in ``FAMILIES``
when it loads.  A family may depend on an optional package (scipy): it then
registers nothing when that package is missing.
"""
from __future__ import annotations

import importlib

FAMILIES: tuple[str, ...] = ("special", "arrays", "linalg", "complex", "fft")


def load() -> list:
    """The family modules, imported (each registers its primitives and rules)."""
    return [importlib.import_module(f"{__name__}.{name}") for name in FAMILIES]
