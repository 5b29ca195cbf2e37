"""Online hypergradients during one training run: RTHO and MARTHE.

Write one training step as ``s_t = Phi_t(s_{t-1}, lambda)``, where the state
``s`` is the parameters *and* the optimizer's buffers (momentum, Adam
moments).  Its tangent ``Z_t = ds_t/dlambda`` obeys

    Z_t = mu * A_t Z_{t-1} + B_t,     A_t = dPhi_t/ds,  B_t = dPhi_t/dlambda,

and ``<grad E_val(w_t), Z_t>`` estimates d(validation error)/d(lambda).

* RTHO (Franceschi et al., 2017), ``mu = 1``: Z_t is the exact tangent of the
  run so far; the hyperparameters move every ``delta`` steps.
* MARTHE (Donini et al., 2020), ``0 <= mu <= 1``: the past is discounted.
  ``mu = 0`` leaves Z_t = B_t, one-step hypergradient descent with the
  validation gradient (HD-val).  ``mu="adaptive"`` follows the paper's
  heuristic: after each hyper-step, with ``q = lr / <grad E_val(w_t), g_t>``
  (g_t the training gradient of the step) ``z = clip(q, 0, 1)``,
  ``c <- c * sign(mu) + mu`` and ``mu <- z ** (1 / (1 + c))``.
* The hypergradient learning rate ``beta`` (``hypergrad_lr``) may adapt too
  (``alpha > 0``), by hypergradient descent one level up:
  ``lambda_t = lambda_{t-1} - beta h_t`` makes ``d lambda_t / d beta = -h_t``,
  so ``beta <- max(beta + alpha h_t . h_{t-1}, 0)``.

Nothing is derived by hand: each step runs the ordinary training step on
dual numbers whose tangents are ``mu * Z_{t-1}`` (state) and the identity
(hyperparameters); the tangents that come out are ``Z_t``.

Guards against the usual failures: by default hyperparameters move in their
unconstrained coordinates (log lr), so an lr cannot go negative or NaN; with
``space="raw"`` a positive hyperparameter is kept at or above
``floor``; hypergradients are clipped to ``max_hypergrad_norm``; and a tangent
whose norm passes ``setup.max_tangent_norm`` (or stops being finite) raises
`HypergradientError` naming the step, instead of letting a NaN learning rate
wreck the run.
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from autodiff import basis_tangents, grad, jit, value_and_grad
from autodiff.core import primal_value
from autodiff.dual import Dual, dual
from autodiff.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

from . import transforms
from ._checks import check_choice, check_range, renamed, renamed_kwargs
from .coords import columns_of, flat_hypergrad, unflatten_like
from .hypergrad import HypergradientError, Setup, _as_jit_inputs, _as_step_array
from .towers import SPACES

__all__ = ["Online", "RTHO", "MARTHE", "OnlineResult"]

_OLD_SPACES = {"log": "unconstrained", "natural": "raw"}


class OnlineResult(NamedTuple):
    history: list       # one dict per step: t, hyperparameters, mu, beta, hypergradient, losses
    params: object      # the trained parameters
    hparams: dict       # the hyperparameters at the end
    val_loss: float
    val_acc: float
    test_loss: float
    test_acc: float
    seconds: float


def _is_buffer(x) -> bool:
    return not isinstance(x, (int, np.integer)) and np.ndim(primal_value(x)) >= 0 and \
        np.issubdtype(np.asarray(primal_value(x)).dtype, np.floating)


class Online:
    """RTHO / MARTHE on a `Setup`: one run, hyperparameters updated as it goes.

    ``hparams``: starting values (the setup's defaults fill the rest);
    ``wrt``: the names adapted (default ``("lr",)``); ``mu``: a number in
    [0, 1] or ``"adaptive"``; ``hypergrad_lr`` (beta) and ``alpha`` (beta's
    own step, 0 = fixed beta); ``delta``: steps between hyper-steps;
    ``space``: ``"unconstrained"`` (the coordinates of `hyperopt.transforms`:
    log lr, logit momentum; the default) or ``"raw"`` (the values
    themselves), as in `hyperopt.towers`; ``floor``: the least value of a
    positive hyperparameter in the raw space;
    ``val_batch_size``: validation examples per hypergradient (default all).
    """

    @renamed_kwargs(hyper_lr="hypergrad_lr")
    def __init__(self, setup: Setup, hparams: dict | None = None, wrt=("lr",), *, mu=0.9,
                 hypergrad_lr: float = 1e-3, alpha: float = 0.0, delta: int = 1,
                 space: str = "unconstrained",
                 floor: float = 0.0, max_hypergrad_norm: float | None = None,
                 val_batch_size: int | None = None, seed: int = 0):
        self.setup = setup
        self.h = setup.resolve(hparams)
        self.wrt = [wrt] if isinstance(wrt, str) else list(wrt)
        for k in self.wrt:
            if setup.constraints.get(k, "missing") == "missing":
                raise ValueError(f"{k!r} is not a continuous hyperparameter of this setup")
        if isinstance(mu, str) and mu != "adaptive":
            raise ValueError(f"mu must be in [0, 1] or 'adaptive', got {mu!r}")
        if mu != "adaptive":
            check_range("mu", mu, hi=1.0, hi_open=False, scalar=True)
        for name, v in (("hypergrad_lr", hypergrad_lr), ("alpha", alpha), ("floor", floor)):
            check_range(name, v, scalar=True)
        if not isinstance(delta, (int, np.integer)) or delta < 1:
            raise ValueError(f"delta must be a positive integer, got {delta!r}")
        if space in _OLD_SPACES:
            renamed(f"space={space!r}", f"space={_OLD_SPACES[space]!r}", type(self).__name__)
            space = _OLD_SPACES[space]
        check_choice("space", space, SPACES)
        if max_hypergrad_norm is not None:
            check_range("max_hypergrad_norm", max_hypergrad_norm, lo_open=True, finite=False,
                        scalar=True)
        self.adaptive_mu = mu == "adaptive"
        self.mu = 0.0 if self.adaptive_mu else float(mu)
        self.c = 0.0
        self.beta, self.alpha = float(hypergrad_lr), float(alpha)
        self.delta, self.space, self.floor = int(delta), space, float(floor)
        self.max_norm = max_hypergrad_norm
        self.val_batch_size = val_batch_size
        self.rng = np.random.default_rng(seed)
        dt = setup.dtype
        self.u = {k: self._to_space(k, tree_map(lambda a: np.asarray(a, dtype=dt), self.h[k]))
                  for k in self.wrt}
        self._prev_h = None

    # -- coordinates -------------------------------------------------------------
    def _constraint(self, k):
        return self.setup.constraints[k] if self.space == "unconstrained" else None

    def _to_space(self, k, v):
        return transforms.forward(self._constraint(k), v)

    def _from_space(self, u: dict) -> dict:
        return {k: transforms.inverse(self._constraint(k), v) for k, v in u.items()}

    def hparams(self) -> dict:
        return {**self.h, **{k: tree_map(lambda a: np.asarray(primal_value(a)), v)
                             for k, v in self._from_space(self.u).items()}}

    # -- the run -----------------------------------------------------------------
    def _val_batch(self):
        d = self.setup.data.val
        x = np.asarray(d.x, dtype=self.setup.dtype) if np.issubdtype(np.asarray(d.x).dtype,
                                                                    np.floating) else d.x
        if self.val_batch_size is None or self.val_batch_size >= len(d.x):
            return x, d.y
        idx = self.rng.choice(len(d.x), self.val_batch_size, replace=False)
        return x[idx], d.y[idx]

    def run(self, steps: int | None = None, *, progress: bool = False) -> OnlineResult:
        setup = self.setup
        steps = setup.steps if steps is None else steps
        t_start = time.perf_counter()
        leaves, treedef, sizes = flat_hypergrad(self.u, self.wrt)
        K = sum(sizes)

        h = self.hparams()
        params = setup.init(h)
        state = _as_step_array(setup.optimizer.init(params))  # as Setup.train does
        # tangents of (params, state) w.r.t. the K hyperparameters: Z_0 = 0
        # (init_scale, if tuned, is not differentiated online: it acts before step 1)
        s_leaves, s_def = tree_flatten((params, state))
        is_buf = [_is_buffer(x) for x in s_leaves]
        Z = [np.zeros((K,) + np.shape(x), dtype=setup.dtype) if b else None
             for x, b in zip(s_leaves, is_buf)]
        step = setup._stepper(setup.jit)
        guard = setup.jit and setup._eps_at_zero(setup.optimizer.resolve(
            {k: self.h[k] for k in setup.optimizer.defaults}))
        loss_fn = setup.loss  # model.loss, reduced to a 0-d value (or a clear ValueError)
        val_vg = value_and_grad(lambda p, x, y: loss_fn(p, x, y))
        # adaptive mu needs the step's training gradient at the primal parameters
        train_grad = grad(loss_fn)
        if setup.jit:   # fixed computations too: replay them
            val_vg = setup._steppers.setdefault("val_grad", jit(val_vg))
            train_grad = jit(train_grad)
        history = []
        prev_hyper = None
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=steps, desc=f"{type(self).__name__} steps", unit="step",
                       mininterval=0.5, leave=False)
        for t in range(steps):
            x, y = setup.batch(t)
            # hyperparameters as duals: direction j is entry j of the flattened u
            u_now = [np.asarray(leaf) for leaf in tree_leaves(self.u)]
            u_leaves = [dual(leaf, t) for leaf, t in zip(u_now, basis_tangents(u_now))]
            # in the setup's dtype: u is updated in float64 (a float32 u would lose small steps)
            hd = setup.cast_hparams({**self.h,
                                     **self._from_space(tree_unflatten(treedef, u_leaves))})
            opt_h = {k: hd[k] for k in setup.optimizer.defaults}
            s_in = [dual(x_, self.mu * z) if b else x_ for x_, z, b in zip(s_leaves, Z, is_buf)]
            p_in, st_in = tree_unflatten(s_def, s_in)
            g_train = train_grad(tree_map(primal_value, p_in), x, y, primal_value(
                hd["label_smoothing"])) if self.adaptive_mu else None
            args = (p_in, st_in, opt_h, hd["label_smoothing"], x, y)
            p_out, st_out = step(*(args if setup.jit else _as_jit_inputs(args)))
            if guard:
                setup._explain_nonfinite(p_out, args)
            out = tree_leaves((p_out, st_out))
            s_leaves = [o.primal if isinstance(o, Dual) else o for o in out]
            Z = [(primal_value(o.tangents) if isinstance(o, Dual) else
                  np.zeros((K,) + np.shape(o), dtype=setup.dtype)) if b else None
                 for o, b in zip(out, is_buf)]
            params = tree_unflatten(s_def, s_leaves)[0]
            if setup.check_every and ((t + 1) % setup.check_every == 0 or t + 1 == steps):
                self._check(Z, t + 1)

            xv, yv = self._val_batch()
            val_loss, g_val = val_vg(params, xv, yv)
            val_loss = primal_value(val_loss)
            hyper = np.zeros(K)
            for i, gv in enumerate(tree_leaves(g_val)):
                hyper += np.tensordot(Z[i], gv, axes=gv.ndim).reshape(K)
            norm = float(np.linalg.norm(hyper))
            if not np.all(np.isfinite(hyper)):
                raise HypergradientError(
                    f"the hypergradient stopped being finite at step {t + 1} "
                    f"(hyperparameters {columns_of(self.hparams(), self.wrt)})")
            clipped = self.max_norm is not None and norm > self.max_norm
            h_used = hyper * (self.max_norm / norm) if clipped else hyper
            updated = (t + 1) % self.delta == 0
            if updated:
                flat_u = np.concatenate([np.ravel(x_) for x_ in tree_leaves(self.u)])
                flat_u = flat_u - self.beta * h_used
                self.u = self._clamp(unflatten_like(flat_u, tree_leaves(self.u), treedef))
                if self.alpha > 0 and prev_hyper is not None:
                    self.beta = max(self.beta + self.alpha * float(h_used @ prev_hyper), 0.0)
                prev_hyper = h_used
                if self.adaptive_mu:
                    self._adapt_mu(g_val, g_train)
            row = {"t": t + 1, **columns_of(self.hparams(), self.wrt), "mu": self.mu,
                   "beta": self.beta, "hypergrad_norm": norm, "updated": updated,
                   "val_loss": float(val_loss)}
            for j, v in enumerate(hyper):
                row[f"h{j}"] = float(v)
            history.append(row)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        val_loss, val_acc = setup.evaluate(params, "val")
        test_loss, test_acc = setup.evaluate(params, "test")
        return OnlineResult(history, params, self.hparams(), float(val_loss), val_acc,
                            float(test_loss), test_acc, time.perf_counter() - t_start)

    def _clamp(self, u: dict) -> dict:
        if self.space != "raw":
            return u
        out = {}
        for k, v in u.items():
            c = self.setup.constraints[k]
            lo = self.floor if c in ("positive", "nonnegative") else (
                0.0 if c in ("unit", "unit_closed_open") else -np.inf)
            hi = 1.0 - np.finfo(float).epsneg if c in ("unit", "unit_closed_open") else np.inf
            out[k] = tree_map(lambda a: np.clip(a, lo, hi), v)
        return out

    def _adapt_mu(self, g_val, g_train) -> None:
        inner = sum(float(np.vdot(a, b)) for a, b in zip(tree_leaves(g_val), tree_leaves(g_train)))
        lr = float(np.mean(primal_value(self.hparams()["lr"])))
        q = lr / inner if inner != 0 else (math.inf if lr > 0 else 0.0)
        z = min(max(q, 0.0), 1.0)
        self.c = self.c * float(np.sign(self.mu)) + self.mu
        self.mu = z ** (1.0 / (self.c + 1.0))

    def _check(self, Z, t: int) -> None:
        sq = sum(float(np.sum(np.square(z))) for z in Z if z is not None)
        norm = math.sqrt(sq) if math.isfinite(sq) else math.inf
        if not norm <= self.setup.max_tangent_norm:
            raise HypergradientError(
                f"the tangent Z_t exploded at step {t} (norm {norm:.3g} > max_tangent_norm="
                f"{self.setup.max_tangent_norm:.3g}); with mu={self.mu:.3g} the discounted "
                "history grows without bound: lower mu or the learning rate")


@renamed_kwargs(hyper_lr="hypergrad_lr")
def RTHO(setup: Setup, hparams: dict | None = None, wrt=("lr",), *, hypergrad_lr: float = 1e-3,
         delta: int = 1, **kwargs) -> Online:
    """Real-time hyperparameter optimization (Franceschi et al., 2017): the full
    tangent (mu = 1), hyper-steps every ``delta`` training steps."""
    return Online(setup, hparams, wrt, mu=1.0, hypergrad_lr=hypergrad_lr, delta=delta, **kwargs)


@renamed_kwargs(hyper_lr="hypergrad_lr")
def MARTHE(setup: Setup, hparams: dict | None = None, wrt=("lr",), *, mu="adaptive",
           hypergrad_lr: float = 1e-3, alpha: float = 0.0, **kwargs) -> Online:
    """MARTHE (Donini et al., 2020): a discounted tangent, adaptive mu by default."""
    return Online(setup, hparams, wrt, mu=mu, hypergrad_lr=hypergrad_lr, alpha=alpha, **kwargs)
