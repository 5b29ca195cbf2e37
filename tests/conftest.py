"""Shared test setup: every test starts from the same random state.

Inputs are float64 (numpy's default); tests draw them from numpy's global
generator, which the autouse fixture below seeds before each test, so no test
depends on the order in which tests run.
"""
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def seed_numpy_global_rng():
    np.random.seed(1234)
    yield
