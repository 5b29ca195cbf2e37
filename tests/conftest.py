"""Shared test setup: every test starts from the same random state.

Inputs are float64 (numpy's default); tests draw them from numpy's global
generator, which the autouse fixture below seeds before each test, so no test
depends on the order in which tests run.

`autodiff.jit` replays in Python throughout the suite (AUTODIFF_JIT_BACKEND
=python, unless the environment says otherwise): most tests compare a replay
with the engine bit for bit, which a numba-compiled program (rounding may
differ in the last bits) does not promise.  tests/test_jit_numba.py tests the
compiled backend, asking for it explicitly.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("AUTODIFF_JIT_BACKEND", "python")


@pytest.fixture(autouse=True)
def seed_numpy_global_rng():
    np.random.seed(1234)
    yield


def _traced_peak(f):
    """tracemalloc's peak while f() runs.  No gc.collect() first: it empties
    CPython's free lists, which would then refill (as traced allocations)
    during the measured call."""
    import tracemalloc
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def traced_peak():
    return _traced_peak
