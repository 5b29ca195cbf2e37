"""``state_dict`` / ``load_state_dict`` for hyperopt's stateful shells.

`hd.SGDHD`, `hd.SGDNHD`, `hd.AdamHD`, `towers.Tower` and `hd_auto.HD` keep
everything their next steps depend on in plain Python and numpy values.  A
shell says what that is (``_state``) and how to install it after checking that
it fits (``_load``); `Stateful` does the rest the same way for all of them:
``state_dict()`` is a copy that later steps do not change and that pickles,
``load_state_dict(d)`` installs a copy of ``d``, so the following steps repeat
the saved run bit for bit.
"""
from __future__ import annotations

import numpy as np

from autodiff.tree import tree_flatten

__all__ = ["Stateful", "copy_state", "check_like"]


def copy_state(x):
    """A copy of a state: arrays copied, containers (dict, list, tuple,
    NamedTuple) rebuilt; immutable values (numbers, strings, None) shared."""
    if isinstance(x, np.ndarray):
        return np.array(x, copy=True)
    if isinstance(x, dict):
        return {k: copy_state(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*[copy_state(v) for v in x])
    if isinstance(x, (list, tuple)):
        return type(x)(copy_state(v) for v in x)
    return x


def check_like(saved, mine, what: str) -> None:
    """Raise ValueError unless ``saved`` has the pytree structure and leaf shapes of ``mine``."""
    la, ta = tree_flatten(saved)
    lb, tb = tree_flatten(mine)
    if ta != tb or any(np.shape(x) != np.shape(y) for x, y in zip(la, lb)):
        raise ValueError(f"the state dict's {what} do not match this one's (structure or shapes)")


class Stateful:
    """``state_dict`` / ``load_state_dict`` from a shell's ``_state`` and ``_load``."""

    def _state(self) -> dict:  # pragma: no cover - abstract
        """Everything the next steps depend on (shared, not copied)."""
        raise NotImplementedError

    def _load(self, d: dict) -> None:  # pragma: no cover - abstract
        """Check that ``d`` (a private copy) fits this shell, then install it."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """A copy of everything the next steps depend on, parameters included
        (plain Python and numpy values: it pickles).  ``kind`` names the class."""
        return {"kind": type(self).__name__, **copy_state(self._state())}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a `state_dict`; the next steps then repeat the saved run exactly."""
        self._load(copy_state(dict(state_dict)))
