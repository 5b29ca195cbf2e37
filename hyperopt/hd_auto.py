"""Hypergradient descent for any optimizer, derived automatically by forward mode.

`hyperopt.hd` writes the hypergradient of Baydin et al. (ICLR 2018) by hand
for SGD, SGD with (Nesterov) momentum and Adam.  `HD` derives it for any
optimizer of `hyperopt.optim` and any subset of its hyperparameters, so
RAdam-HD, AdamW-HD or RMSprop-HD need no new math::

    opt = HD(RAdam(1e-3), params, hypergrad_lr=1e-8)
    for x, y in batches:
        params = opt.step(grad(loss)(opt.params, x, y))

At step t, with ``g_t = ∇f(θ_{t-1})``::

    h_t = g_t · ∂θ_{t-1}/∂α          (K numbers, one per tuned hyperparameter)
    α_t = α_{t-1} - β h_t
    θ_t = update(g_t, state_{t-1}, θ_{t-1}; α_t)

``∂θ_{t-1}/∂α`` is the tangent of the previous step's update with respect to
the hyperparameters it used: that update ran with the K tuned hyperparameters
as `Dual` values (one batched pass), and the parameters, the optimizer state
and the gradient entered it without tangents.  That is the one-step, greedy
hypergradient of Baydin et al.: for SGD, ``∂θ_{t-1}/∂α = -d_{t-1}``, the
previous step's direction, whose product with ``g_t`` is the closed form of
`hd.SGDHD` (momentum, Nesterov) and `hd.AdamHD`.  Before the second step
there is no previous update and α does not move (the closed forms' ``d_0 = 0``).

``space="raw"`` (the default) takes the step on α itself, as the closed forms
do, and then equals them (to rounding) where both exist.  ``space="unconstrained"``
takes it on the value of `hyperopt.transforms` (``u = log α`` for an lr,
``logit`` for momentum / betas), where ``h`` is ``∂f/∂u``: α then stays in its
range whatever β, and β is a relative rate (SGD on log α moves α by the
factor ``exp(-β α ∂f/∂α)``).  In the raw space a step that leaves the range
warns (`towers.HyperparameterWarning`, a `hd.LearningRateWarning`), raises
(``on_invalid="raise"``; nothing changes) or is ignored.

Differences from `hd.SGDHD` / `hd.AdamHD`
-----------------------------------------
* ``h`` is the derivative of the loss whose gradient ``step`` receives.  The
  closed forms add the coupled L2 term ``weight_decay · θ`` to the gradient in
  ``h`` too (they tune α for the regularized objective).  To get theirs with
  weight decay, put the L2 term in the loss (then both see the same gradient
  and coincide), or pass gradients that include it.
* The multiplicative mode, clipping and lr bounds of `hd` are not offered;
  ``space="unconstrained"`` is the way to keep α positive.
* One optimizer, one parameter tree (no param groups);
  ``per_parameter=True`` gives one value per parameter leaf instead.

`HD` is the height-1 hyperoptimizer tower ``optimizer / SGD(β)`` of
`hyperopt.towers` (with ``space="raw"`` and the tuned names given); it shares
its engine, so ``HD(opt, p, hypergrad_lr=β)`` and
``Tower(opt with optimizer=SGD(β), p, ("lr",), space="raw")`` are the same run.
"""
from __future__ import annotations

from typing import Any

from autodiff.tree import tree_flatten, tree_map

from ._checks import check_choice, check_range, renamed_kwargs
from .optim import SGD, Optimizer
from .towers import SPACES, TowerSpec, _Stateful, describe  # noqa: F401  (describe: re-export)

__all__ = ["HD", "hd_init"]


def _hypergrad_lr(hypergrad_lr, names: tuple) -> Any:
    if isinstance(hypergrad_lr, dict):
        unknown = [k for k in hypergrad_lr if k not in names]
        if unknown:
            raise ValueError(f"hypergrad_lr has an entry for {unknown[0]!r}, which is not tuned "
                             f"(tuned: {list(names)})")
        missing = [k for k in names if k not in hypergrad_lr]
        if missing:
            raise ValueError(f"hypergrad_lr has no entry for the tuned hyperparameter "
                             f"{missing[0]!r}")
        for k, v in hypergrad_lr.items():
            check_range(f"hypergrad_lr[{k!r}]", v)
        return dict(hypergrad_lr)
    check_range("hypergrad_lr", hypergrad_lr)
    if isinstance(hypergrad_lr, (list, tuple)):
        raise ValueError(f"hypergrad_lr must be a number or a dict {{name: number}}, "
                         f"got {hypergrad_lr!r}")
    return hypergrad_lr


@renamed_kwargs(hyperparams="wrt")
def hd_init(optimizer: Optimizer, params, *, hypergrad_lr, wrt=("lr",),
            space: str = "raw", per_parameter: bool = False, on_invalid: str = "warn"):
    """``(spec, state)`` of `HD` as pure values: step with ``towers.tower_update(spec, grads, state)``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"HD needs an Optimizer of hyperopt.optim, got {type(optimizer).__name__}")
    if optimizer.optimizer is not None:
        raise ValueError(f"{optimizer!r} already has a hyper-optimizer; HD uses SGD(hypergrad_lr) "
                         "as its own. For a stack of optimizers use hyperopt.towers.Tower")
    check_choice("space", space, SPACES)
    # the names and the initial values, to size the hyper-level's step sizes
    probe = TowerSpec([optimizer, SGD(0.0)], [wrt], space, [per_parameter], on_invalid)
    beta = _hypergrad_lr(hypergrad_lr, probe.names[0])
    u0 = probe.init(params).hparams[0]
    if isinstance(beta, dict):  # one step size per name, broadcast over per-parameter values
        beta = {name: tree_map(lambda _, b=beta[name]: b, u0[name]) for name in u0}
    spec = TowerSpec([optimizer, SGD(beta)], [probe.names[0]], space, [per_parameter],
                     on_invalid)
    return spec, spec.init(params)


class HD(_Stateful):
    """Online hypergradient descent on any subset of an optimizer's hyperparameters.

    ``HD(optimizer, params=None, *, hypergrad_lr, wrt=("lr",), space="raw",
    per_parameter=False, on_invalid="warn")``

    optimizer:     any optimizer of `hyperopt.optim` (without ``optimizer=``);
                   its current ``defaults`` are the initial values.
    params:        the parameter pytree (or give it later to `init`).
    hypergrad_lr:  β, a number or ``{name: β}``.  No default: its scale depends
                   on the optimizer and the space (the paper uses 1e-3 for SGD
                   and 1e-8..1e-7 for Adam, both raw).
    wrt:           the names to tune, e.g. ``("lr", "momentum")`` or
                   ``("lr", "betas", "weight_decay")``; K = their number (times
                   the number of parameter leaves with ``per_parameter``).
                   (``hyperparams=``, its old name, still works and warns.)
    space:         "raw" (default; equals the closed forms of `hd`) or
                   "unconstrained" (module docstring).

    ``step(grads)`` updates the hyperparameters, then the parameters, and
    returns the new parameters.  ``params``, ``hparams`` (the tuned values
    now), ``hypergrad`` (the last h, per name, in the chosen space),
    ``state_dict`` / ``load_state_dict``.
    """

    @renamed_kwargs(hyperparams="wrt")
    def __init__(self, optimizer: Optimizer, params=None, *, hypergrad_lr,
                 wrt=("lr",), space: str = "raw", per_parameter: bool = False,
                 on_invalid: str = "warn"):
        if isinstance(optimizer, Optimizer) and optimizer.optimizer is not None:
            raise ValueError(f"{optimizer!r} already has a hyper-optimizer; HD uses "
                             "SGD(hypergrad_lr) as its own. For a stack of optimizers use "
                             "hyperopt.towers.Tower")
        self.optimizer = optimizer
        self._options = dict(hypergrad_lr=hypergrad_lr, wrt=wrt, space=space,
                             per_parameter=per_parameter, on_invalid=on_invalid)
        self._history = None
        self.spec = self.state = None
        # validate everything now, even without params
        TowerSpec([optimizer, SGD(0.0)], [wrt], space, [per_parameter], on_invalid)
        if params is None:
            _hypergrad_lr(hypergrad_lr, TowerSpec([optimizer, SGD(0.0)], [wrt], space,
                                                  [per_parameter]).names[0])
        else:
            self.init(params)

    def init(self, params) -> "HD":
        """(Re)start from ``params`` with the optimizer's initial hyperparameters."""
        self.spec, self.state = hd_init(self.optimizer, params, **self._options)
        return self

    def _need_init(self):
        if self.state is None:
            raise RuntimeError("HD has no parameters yet: pass them to HD(...) or call init(params)")

    def step(self, grads):
        """One step: α_t = α_{t-1} - β h_t, then θ_t; returns θ_t."""
        self._need_init()
        return self._commit(grads, stacklevel=2)

    @property
    def params(self):
        self._need_init()
        return self.state.params

    @property
    def hparams(self) -> dict:
        """The tuned hyperparameters now, ``{name: value}`` (Python floats, or per-leaf pytrees)."""
        self._need_init()
        return self.spec.natural_floats(0, self.state.hparams[0])

    @property
    def lr(self):
        return self.hparams.get("lr", self.optimizer.defaults.get("lr"))

    @property
    def hypergrad(self) -> dict:
        """The last hypergradient per tuned name (0.0 before the second step)."""
        self._need_init()
        return self.spec.hypergrads(self.state)[0]

    def state_dict(self) -> dict:
        self._need_init()
        return super().state_dict()

    def load_state_dict(self, d: dict) -> None:
        self._need_init()
        super().load_state_dict(d)

    @property
    def K(self) -> int:
        self._need_init()
        return len(tree_flatten(self.state.hparams[0])[0])

    def __repr__(self) -> str:
        o = self._options
        return (f"HD({self.optimizer!r}, hypergrad_lr={o['hypergrad_lr']!r}, "
                f"wrt={o['wrt']!r}, space={o['space']!r})")
