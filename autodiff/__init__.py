"""autodiff: forward and reverse mode from one set of derivative rules.

User functions are plain numpy.  `grad`, `vjp` and `jacrev` record a tape;
`jvp`, `jacfwd` and `dual` push `Dual` arrays through it; any nesting works,
and running the tape on Duals (`hvp`, `jvp` of a loop that calls `grad`) gives
forward derivatives through whole training runs in flat memory.
"""
from . import rules as _rules  # noqa: F401  (attaches the derivative rules)
from .backend import engine as _engine_kernels
from .api import basis_tangents, grad, hvp, jacfwd, jacrev, jvp, value_and_grad, vjp
from .check import check_grads
from .core import primal_value as stop_gradient
from .dual import Dual, dual
from .jit import jit

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacfwd", "jacrev", "hvp",
           "Dual", "dual", "check_grads", "stop_gradient", "jit", "basis_tangents"]
__version__ = "0.1.0"

_engine_kernels.install()  # numba fast paths for large dual elementwise ops
