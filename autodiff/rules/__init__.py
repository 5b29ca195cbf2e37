"""Derivative rules, by family.  Importing this package attaches every rule to
its primitive in `autodiff.primitives`."""
from . import elementwise, linalg, products, reduce, shape  # noqa: F401
