"""Hypergradients through a whole training run.

A `Setup` is a training run written as a plain function of its
hyperparameters: model, data, optimizer, number of steps, batch size and
seeds.  `hypergradient` returns the validation loss after the run and its
derivative with respect to any mix of hyperparameters:

* ``mode="forward"``: K tangent directions ride along the run in one pass.
  Parameters, momentum buffers and Adam moments all carry K tangents (the
  optimizer's state is part of what each step maps), every step's gradient
  tape runs on those dual values and is freed when the step ends, so memory
  does not depend on the number of steps.  ``chunk_size`` splits K into
  passes of at most that many directions (ForwardDiff's chunk mode).
* ``mode="reverse"``: the whole run is recorded on one tape and swept back
  once: cost independent of K, memory growing with the number of steps.  Use
  it for short runs with many hyperparameters (one weight per example).
* ``mode="auto"``: `hyperopt.planner` picks one from K, T, the parameter
  count and a memory budget (calibrating on short runs only when that costs
  little next to this hypergradient; otherwise forward mode, when its rough
  memory estimate fits).

Hyperparameters are differentiated in their unconstrained coordinates
(`hyperopt.transforms`: log lr, logit momentum, ...), the coordinates the
outer loop (`Tuner`) steps in; ``Hypergradient.natural`` gives the same
derivatives with respect to the values themselves.

Besides the optimizer's own hyperparameters (any key of
``optimizer.defaults``, a per-parameter pytree allowed, e.g. one lr per
layer; for a `scheduled` optimizer, the schedule's parameters too), a setup
knows three more: ``init_scale`` (multiplies the model's initial weights),
``label_smoothing`` (of the training loss; the validation loss is the plain
loss) and ``example_weights`` (one weight in (0, 1) per training example
multiplying its loss, as in data hyper-cleaning: K = the number of training
examples, a case for reverse mode).

The model is any object following `hyperopt.models.Model`: ``init(seed,
scale, dtype)`` and ``loss(params, x, y)``; the built-in models and your own
are treated alike.  `Setup` checks the model when it is built (TypeError
naming a missing method) and detects its optional parts
(`hyperopt.models.check_model`).  A hyperparameter the model cannot use is
an error, not a zero hypergradient: ``label_smoothing`` needs a loss with a
``label_smoothing`` parameter, ``init_scale`` an init with a ``scale``
parameter, ``example_weights`` an ``apply(params, x)`` returning logits;
tuning one of them (or setting it to a value other than its default)
without that part raises ValueError naming the model and the hyperparameter.
A hypergradient that comes out exactly zero after the whole run (the
validation loss does not depend on that hyperparameter) is reported with a
RuntimeWarning.  A model without ``accuracy`` gets ``nan`` accuracies.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from autodiff import basis_tangents, grad, jit as _jit, value_and_grad
from autodiff.core import Box, primal_value
from autodiff.dual import Dual, dual
from autodiff.jit import RecordError
from autodiff.tree import tree_leaves, tree_map, tree_unflatten

from . import transforms
from ._checks import float_dtype, scalar_loss
from .coords import d_value_d_u, flat_hypergrad, from_unconstrained, to_unconstrained, unflatten_like
from .models import check_model
from .optim import Optimizer, to_dtype

__all__ = ["Setup", "Hypergradient", "HypergradientError", "hypergradient", "EXTRA_CONSTRAINTS",
           "flat_hypergrad", "unflatten_like"]

# hyperparameters a Setup knows besides its optimizer's, with their ranges
EXTRA_CONSTRAINTS = {"init_scale": "positive", "label_smoothing": "unit_closed_open",
                     "example_weights": "unit"}
EXTRA_DEFAULTS = {"init_scale": 1.0, "label_smoothing": 0.0, "example_weights": None}


class HypergradientError(FloatingPointError):
    """A training run whose tangents (or values) stopped being finite numbers."""


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, unit="step", mininterval=0.5)


def _as_step_array(state):
    """The optimizer state with its Python-int step counters as 0-d int arrays.

    `jit` treats Python scalars as constants of a recording, so a counter
    that changes every step would be recorded anew every step (numpy
    scalars, which the replayed steps return, are inputs).  `Setup` runs
    every step on such a counter, jit-ed or not, so that both execute the
    same numpy operations and give the same numbers bit for bit (numpy's
    ``b ** t`` is not always Python's to the last bit).  The coefficients
    computed from it are 0-d float64 arrays, which the optimizers cast to the
    parameters' dtype (`hyperopt.optim.keep_dtype`), so a float32 run stays
    float32.
    """
    def conv(s):
        if isinstance(s, tuple) and hasattr(s, "_fields"):
            return type(s)(*[np.asarray(v, dtype=np.int64)
                             if isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                             else conv(v) for v in s])
        return s
    return conv(state)


def _as_jit_input(x):
    if type(x) is Dual:
        p, t = _as_jit_input(x.primal), _as_jit_input(x.tangents)
        return x if p is x.primal and t is x.tangents else Dual(p, t, x._trace)
    if isinstance(x, np.generic) and isinstance(x, (np.number, np.bool_)):
        return np.asarray(x)
    return x


def _as_jit_inputs(tree):
    """``tree`` with its numpy scalars (``np.float64(0.1)``, ``np.int64(3)``, inside
    Duals too) as 0-d arrays, which is what a jit-ed step is given in their
    place: an eager step on this runs the same numpy operations as the
    replayed one (numpy's scalar arithmetic, ``np.float64(b) ** np.int64(t)``,
    is not always its array arithmetic to the last bit).  (Module-level
    functions, not a recursive closure: that would be a reference cycle per
    step, freed only by the cyclic garbage collector.)"""
    return tree_map(_as_jit_input, tree)


@dataclass
class Setup:
    """One training run: ``steps`` minibatch updates of ``model`` on ``data``.

    ``data`` is a `hyperopt.data.Split` (train / val / test `Dataset`s);
    batches come from ``Batcher(len(train), batch_size, seed)``, a pure
    function of the step number, so a run is reproducible bit for bit.
    ``jit=True`` records the training step once and replays it (much faster
    for small models; it falls back to eager execution, with a warning, if
    the step cannot be recorded).  ``check_every`` steps, the tangents are
    checked: a non-finite value or a tangent norm above
    ``max_tangent_norm`` raises `HypergradientError` naming the step.
    ``dtype`` (float32 or float64) is the dtype of the parameters and inputs,
    and of every array the run computes: hyperparameters given as numpy
    values of a wider type are cast to it (`cast_hparams`).  Jit-ed and eager
    steps run the same numpy operations (an int-array step counter, and 0-d
    arrays where jit passes them), so they give the same numbers.

    ``model`` follows the `hyperopt.models.Model` protocol: ``init(seed,
    scale, dtype)`` -> parameters, ``loss(params, x, y)`` -> one number (shape
    (), or (1,) taken as that number); it is checked here (TypeError naming
    what is missing), and ``model_info`` records its optional parts (a
    ``label_smoothing`` parameter of loss, ``accuracy``, ``apply``).  The loss
    is given ``label_smoothing`` only when it is tuned or nonzero.
    """

    model: Any
    data: Any
    optimizer: Optimizer
    steps: int
    batch_size: int = 64
    seed: int = 0
    init_seed: int = 0
    dtype: Any = np.float64
    jit: bool = True
    check_every: int = 50
    max_tangent_norm: float = 1e12
    _steppers: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        from .data import Batcher
        if not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        self.dtype = float_dtype(self.dtype, "dtype")
        self.model_info = check_model(self.model)
        train = self.data.train
        self.batcher = Batcher(len(train.x), self.batch_size, seed=self.seed)
        self._train_x = np.asarray(train.x, dtype=self.dtype) if np.issubdtype(
            np.asarray(train.x).dtype, np.floating) else np.asarray(train.x)
        self._train_y = np.asarray(train.y)

    # -- hyperparameters ---------------------------------------------------------
    @property
    def constraints(self) -> dict:
        return {**self.optimizer.constraints, **EXTRA_CONSTRAINTS}

    @property
    def defaults(self) -> dict:
        return {**self.optimizer.defaults, **EXTRA_DEFAULTS}

    def resolve(self, hparams: dict | None) -> dict:
        """``defaults`` overridden by ``hparams``; unknown names and values outside
        their range raise ValueError."""
        h = dict(self.defaults)
        for k, v in (hparams or {}).items():
            if k not in h:
                raise ValueError(f"unknown hyperparameter {k!r}; this setup has {sorted(h)}")
            c = self.constraints.get(k)
            if k == "example_weights" and v is not None and np.shape(primal_value(v)) != (
                    len(self.data.train.x),):
                raise ValueError(f"example_weights must have one weight per training example, "
                                 f"shape ({len(self.data.train.x)},), got {np.shape(v)}")
            if c is not None and v is not None and not isinstance(v, (bool, str)) \
                    and not transforms.is_valid(c, v):
                raise ValueError(f"hyperparameter {k}={_fmt(v)} is outside its range ({c}) "
                                 "or not finite")
            if k in EXTRA_DEFAULTS and not _is_default(k, v):
                self._check_model_uses(k, f"{k}={_fmt(v)}" if np.size(primal_value(v)) == 1
                                       else f"{k} given")
            h[k] = v
        return h

    def _check_model_uses(self, name: str, what: str) -> None:
        """ValueError if the model has no use for hyperparameter ``name`` (``what``
        says how it was asked for: tuned, or a value)."""
        info, m = self.model_info, self.model_info.name
        if name == "label_smoothing" and info.label_smoothing is None:
            raise ValueError(
                f"{what}: model {m} does not use label_smoothing (its loss{_sig(self.model.loss)} "
                "has no label_smoothing parameter), so its hypergradient would be exactly zero; "
                f"add a label_smoothing parameter to {m}.loss, or do not tune or set it")
        if name == "init_scale" and not info.init_scale:
            raise ValueError(
                f"{what}: model {m} does not use init_scale (its init{_sig(self.model.init)} "
                "has no scale parameter), so its hypergradient would be exactly zero; "
                f"give {m}.init a scale parameter that multiplies the initial weights")
        if name == "example_weights" and not info.apply:
            raise ValueError(
                f"{what}: model {m} has no apply(params, x) returning logits, which "
                "example_weights needs (it weights each example's softmax cross-entropy)")

    def check_tunable(self, names) -> None:
        """ValueError naming the model and the hyperparameter if one of ``names``
        is a hyperparameter this setup's model cannot use (``label_smoothing``
        without a loss that takes it, ``init_scale`` without an init that takes
        ``scale``, ``example_weights`` without ``apply``)."""
        for k in names:
            if k in EXTRA_DEFAULTS:
                self._check_model_uses(k, f"cannot tune {k}")

    # -- the run ---------------------------------------------------------------
    def batch(self, t: int):
        idx = self.batcher.indices(t)
        return self._train_x[idx], self._train_y[idx]

    def cast_hparams(self, h: dict) -> dict:
        """``h`` with every numpy value (or Dual, or tape value of one) of a wider
        type than the setup's dtype cast to it, differentiably (`optim.to_dtype`):
        a 0-d float64 learning rate, label smoothing or init scale, or float64
        example weights would otherwise turn a float32 run into a float64 one
        (numpy's NEP 50 promotion).  Python floats are left as they are (numpy
        keeps them weakly typed), and so is everything in a float64 setup."""
        return {k: tree_map(lambda v: to_dtype(v, self.dtype), v) for k, v in h.items()}

    def init(self, hparams: dict):
        return self._init_params(to_dtype(hparams["init_scale"], self.dtype))

    def _init_params(self, scale):
        """``model.init`` with the seed, and ``scale`` and ``dtype`` where it takes them
        (a scale it cannot take must be 1: `resolve` refuses other values)."""
        info = self.model_info
        kw = {}
        if info.init_scale:
            kw["scale"] = scale
        if info.init_dtype:
            kw["dtype"] = self.dtype
        if info.init_seed == "keyword":
            params = self.model.init(seed=self.init_seed, **kw)
        else:
            params = self.model.init(self.init_seed, **kw)
        if not info.init_dtype:   # an init that cannot be told the dtype must match it
            got = {np.result_type(primal_value(p)) for p in tree_leaves(params)}
            if got - {self.dtype}:
                raise ValueError(
                    f"{info.name}.init{_sig(self.model.init)} takes no dtype and returned "
                    f"{', '.join(sorted(d.name for d in got))} parameters, but the setup computes "
                    f"in {self.dtype.name}; give {info.name}.init a dtype parameter, or build the "
                    f"setup with dtype={sorted(d.name for d in got)[0]}")
        return params

    def loss(self, params, x, y, label_smoothing=None):
        """``model.loss(params, x, y)`` as a 0-d value (`scalar_loss`): a single-element
        loss is reshaped to (), any other shape raises ValueError.

        ``label_smoothing`` is passed on when it is a traced value (tuned) or
        nonzero; None or a plain zero is left out, so a model whose loss has no
        such parameter works.  A model that cannot take a nonzero or tuned one
        raises ValueError."""
        info = self.model_info
        if label_smoothing is None or _plain_zero(label_smoothing):
            out = self.model.loss(params, x, y)
        elif info.label_smoothing == "keyword":
            out = self.model.loss(params, x, y, label_smoothing=label_smoothing)
        else:
            self._check_model_uses("label_smoothing", "label_smoothing")  # raises if it is None
            out = self.model.loss(params, x, y, label_smoothing)
        return scalar_loss(out, f"model.loss ({info.name}.loss)")

    def _smoothing_arg(self, smoothing):
        """What the training step passes as label smoothing: None for a plain zero
        (the model's loss is then called without it), else the value."""
        return None if smoothing is None or _plain_zero(smoothing) else smoothing

    def _raw_step(self, params, state, opt_h, smoothing, x, y, weights=None):
        if weights is None:
            g = grad(self.loss)(params, x, y, smoothing)
        else:
            g = grad(self._weighted_loss)(params, x, y, smoothing, weights)
        return self.optimizer.update(g, state, params, opt_h)

    def _weighted_loss(self, params, x, y, smoothing, weights):
        """The batch mean of weights_i x (smoothed) cross-entropy_i."""
        from autodiff.ops import log_softmax
        smoothing = 0.0 if smoothing is None else smoothing
        logp = log_softmax(self.model.apply(params, x), axis=-1)
        picked = np.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
        per_example = -(1.0 - smoothing) * picked - smoothing * np.mean(logp, axis=-1)
        return np.mean(weights * per_example)

    def _stepper(self, use_jit: bool):
        if not use_jit:
            return self._raw_step
        if "jit" not in self._steppers:
            self._steppers["jit"] = _jit(self._raw_step)
        return self._steppers["jit"]

    def hypergradient(self, hparams: dict | None = None, wrt=None, **kwargs) -> "Hypergradient":
        """``hypergradient(self, hparams, wrt, **kwargs)``: the hypergradient of this
        setup's run (the planner measures setups through this method)."""
        return hypergradient(self, hparams, wrt, **kwargs)

    def train(self, hparams: dict | None = None, *, progress: bool = False, jit: bool | None = None,
              callback: Callable | None = None, start=None):
        """The parameters after the run (of whatever number type ``hparams`` carry).

        ``start=(t0, params, state)`` continues a run from step ``t0``;
        ``callback(t, params, state)`` is called after every step.
        """
        h = self.cast_hparams(self.resolve(hparams))
        opt_h = {k: h[k] for k in self.optimizer.defaults}
        smoothing = self._smoothing_arg(h["label_smoothing"])
        use_jit = self.jit if jit is None else jit
        if start is None:
            t0 = 0
            params = self.init(h)
            state = self.optimizer.init(params)
        else:
            t0, params, state = start
        state = _as_step_array(state)  # jit-ed or not: the same arithmetic (see there)
        step = self._stepper(use_jit)
        guard = use_jit and self._eps_at_zero(opt_h)
        bar = _progress(self.steps - t0, "training steps", progress)
        weights = h["example_weights"]
        for t in range(t0, self.steps):
            idx = self.batcher.indices(t)
            x, y = self._train_x[idx], self._train_y[idx]
            extra = () if weights is None else (weights[idx],)
            args = (params, state, opt_h, smoothing, x, y, *extra)
            if not use_jit:
                args = _as_jit_inputs(args)
            try:
                params, state = step(*args)
            except RecordError as e:  # a step jit cannot record: run it eagerly from now on
                import warnings
                warnings.warn(f"jit could not record the training step ({e}); running eagerly",
                              RuntimeWarning, stacklevel=2)
                step = self._steppers["jit"] = self._raw_step
                params, state = step(*args)
            if guard:
                self._explain_nonfinite(params, args)
            if self.check_every and ((t + 1) % self.check_every == 0 or t + 1 == self.steps):
                self.check_finite(params, t + 1)
            if callback is not None:
                callback(t, params, state)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return params

    @staticmethod
    def _eps_at_zero(opt_h: dict) -> bool:
        """Whether the optimizer's eps is 0 (somewhere): its 0/0 check cannot run inside
        a jit-ed step, so such runs are checked after every step (`_explain_nonfinite`)."""
        return "eps" in opt_h and any(np.any(np.asarray(primal_value(e)) <= 0)
                                      for e in tree_leaves(opt_h["eps"]))

    def _explain_nonfinite(self, new_params, args) -> None:
        """If a jit-ed step made the parameters non-finite, run it again eagerly on
        its inputs ``args``, where the optimizer raises the FloatingPointError that
        names the cause (eps=0 on a zero second moment) at this step."""
        if all(np.all(np.isfinite(primal_value(p))) for p in tree_leaves(new_params)):
            return
        with np.errstate(all="ignore"):
            self._raw_step(*args)

    def check_finite(self, params, t: int) -> None:
        """Raise `HypergradientError` if the parameters or their tangents are not
        finite, or the tangents' norm exceeds ``max_tangent_norm``."""
        leaves = tree_leaves(params)
        if not all(np.all(np.isfinite(primal_value(p))) for p in leaves):
            raise HypergradientError(
                f"the parameters stopped being finite at step {t}: the training run diverged "
                "(learning rate too large?)")
        tangents = [p.tangents for p in leaves if isinstance(p, Dual)]
        if not tangents:
            return
        sq = sum(float(np.sum(np.square(primal_value(z)))) for z in tangents)
        norm = math.sqrt(sq) if np.isfinite(sq) else math.inf
        if not norm <= self.max_tangent_norm:
            raise HypergradientError(
                f"the tangent d(params)/d(hyperparameters) exploded at step {t} "
                f"(norm {norm:.3g} > max_tangent_norm={self.max_tangent_norm:.3g}): the run is "
                "unstable or chaotic in these hyperparameters, so its long-horizon hypergradient "
                "is meaningless; lower the learning rate, shorten the horizon, or use MARTHE "
                "(hyperopt.online) with mu < 1")

    def evaluate(self, params, split: str = "val"):
        """``(loss, accuracy)`` on a split; the loss keeps params' number type (the
        model's plain loss, without label smoothing).  The accuracy is a float, or
        ``nan`` when the model has no ``accuracy`` method (or it returns None)."""
        d = getattr(self.data, split)
        x = np.asarray(d.x, dtype=self.dtype) if np.issubdtype(np.asarray(d.x).dtype,
                                                              np.floating) else d.x
        leaves = tree_leaves(params)
        if self.jit and all(type(p) is np.ndarray or type(p) is Dual for p in leaves):
            # replayed like the training step (tape values, in reverse mode, cannot be)
            key = ("loss", split)
            if key not in self._steppers:
                self._steppers[key] = _jit(lambda p, x, y: self.loss(p, x, y))
            loss = self._steppers[key](params, x, d.y)
        else:
            loss = self.loss(params, x, d.y)
        acc = (self.model.accuracy(tree_map(primal_value, params), x, d.y)
               if self.model_info.accuracy else None)
        return loss, (math.nan if acc is None else float(acc))

    def n_params(self) -> int:
        return int(sum(np.size(p) for p in tree_leaves(self._init_params(1.0))))


def _plain_zero(v) -> bool:
    """Whether ``v`` is a plain number (or array) that is all zeros: not traced."""
    if isinstance(v, Box) or isinstance(v, bool):
        return False
    if isinstance(v, (int, float, np.integer, np.floating)):
        return v == 0
    if type(v) is np.ndarray and v.dtype.kind in "fi":
        return not np.any(v)
    return False


def _is_default(name: str, v) -> bool:
    """Whether ``v`` is the neutral value of an extra hyperparameter (no use asked of
    the model): label_smoothing 0, init_scale 1, example_weights None."""
    if name == "example_weights":
        return v is None
    if isinstance(v, Box):
        return False
    try:
        return bool(np.all(np.asarray(v) == EXTRA_DEFAULTS[name]))
    except (TypeError, ValueError):
        return False


def _sig(fn) -> str:
    import inspect
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _fmt(v) -> str:
    try:
        return f"{float(primal_value(v)):.6g}"
    except (TypeError, ValueError):
        return repr(v)


class Hypergradient(NamedTuple):
    """What `hypergradient` returns.

    ``value``: the validation loss after the run; ``grads``: its derivative
    with respect to each differentiated hyperparameter's unconstrained value
    (a dict shaped like those values); ``natural``: the same with respect to
    the hyperparameters themselves; ``accuracy``: validation accuracy (``nan``
    for a model without ``accuracy``);
    ``mode``, ``K``, ``seconds``: how it was computed.
    """
    value: float
    grads: dict
    natural: dict
    accuracy: float
    mode: str
    K: int
    seconds: float


def val_loss_of(setup: Setup, h: dict, **train_kw):
    params = setup.train(h, **train_kw)
    loss, acc = setup.evaluate(params)
    return loss, acc


def hypergradient(setup: Setup, hparams: dict | None = None, wrt=None, *, mode: str = "forward",
                  chunk_size: int | None = None, progress: bool = False,
                  memory_budget: float | None = None, client=None) -> Hypergradient:
    """d(validation loss after ``setup``'s run)/d(hyperparameters ``wrt``).

    ``hparams`` gives the values (missing ones take the setup's defaults);
    ``wrt`` the names to differentiate (default: every name in ``hparams``).
    A value may be a pytree of arrays (one lr per layer): its K entries are K
    directions.

    ``client`` (a ``distributed.Client``, forward mode only) sends each chunk of
    ``chunk_size`` directions to a Dask worker (default: one chunk per worker)
    and checks that every chunk's validation loss agrees bit for bit
    (`hyperopt.distributed`).
    """
    h = setup.resolve(hparams)
    names = list(hparams or {}) if wrt is None else ([wrt] if isinstance(wrt, str) else list(wrt))
    if not names:
        raise ValueError("nothing to differentiate: give hparams or wrt")
    for k in names:
        if k not in h:
            raise ValueError(f"unknown hyperparameter {k!r}; this setup has {sorted(h)}")
        if setup.constraints.get(k, "missing") == "missing":
            raise ValueError(f"{k!r} is not a continuous hyperparameter")
    setup.check_tunable(names)
    u = to_unconstrained(setup, h, names)
    leaves, treedef, sizes = flat_hypergrad(u, names)
    K = sum(sizes)
    if mode == "auto":
        from .planner import plan
        # one hypergradient: the planner calibrates only if that is cheap next to it
        mode = plan(setup, K=K, memory_budget=memory_budget, iterations=1,
                    hparams={k: h[k] for k in names}).mode
        if mode == "hd":  # a whole-run hypergradient was asked for: HD is an online method
            mode = "forward"
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode must be 'forward', 'reverse' or 'auto', got {mode!r}")
    if client is not None and mode != "forward":
        raise ValueError(f"client= sends chunks of tangent directions to workers: it needs "
                         f"mode='forward', got mode={mode!r}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    t0 = time.perf_counter()
    if mode == "forward" and client is not None:
        from .distributed import forward_chunks
        value, flat, acc = forward_chunks(client, chunk_task, setup, (h, u, list(names)), K, chunk_size)
    elif mode == "forward":
        value, flat, acc = _forward(setup, h, u, leaves, treedef, sizes, chunk_size, progress)
    else:
        value, flat, acc = _reverse(setup, h, u, leaves, treedef, progress)
    seconds = time.perf_counter() - t0
    grads = unflatten_like(flat, leaves, treedef)
    _warn_zero(setup, grads, names)
    scale = d_value_d_u(setup, u)
    natural = {k: tree_map(lambda g, s: np.asarray(g) / s, grads[k], scale[k]) for k in names}
    return Hypergradient(float(value), grads, natural, acc, mode, K, seconds)


def _warn_zero(setup: Setup, grads: dict, names) -> None:
    """A RuntimeWarning for each hyperparameter whose hypergradient is exactly zero
    in every entry after the whole run: the validation loss does not depend on it."""
    for k in names:
        leaves = [np.asarray(g) for g in tree_leaves(grads[k])]
        if leaves and not any(np.any(g != 0) for g in leaves):
            warnings.warn(
                f"the hypergradient with respect to {k!r} is exactly zero after the whole run "
                f"({setup.steps} steps of {setup.model_info.name}): the validation loss does not "
                f"depend on {k}, so tuning it does nothing (is it used by the model or the "
                "optimizer? is the run long enough for it to act?)", RuntimeWarning, stacklevel=3)


def _forward(setup, h, u, leaves, treedef, sizes, chunk_size, progress):
    K = sum(sizes)
    chunk = K if chunk_size is None else min(chunk_size, K)
    flat = np.zeros(K)
    value = acc = None
    for c0 in range(0, K, chunk):
        c1 = min(c0 + chunk, K)
        value, flat[c0:c1], acc = _forward_chunk(setup, h, leaves, treedef, c0, c1,
                                                 progress)
    return value, flat, acc


def _forward_chunk(setup, h, leaves, treedef, c0, c1, progress=False):
    """One forward pass carrying directions ``c0 .. c1-1`` of the K: ``(validation
    loss, its c1 - c0 tangents, validation accuracy)``.  (`hyperopt.distributed`
    runs one such pass per task.)"""
    leaves = [np.asarray(x) for x in leaves]
    duals = [dual(x, t) for x, t in zip(leaves, basis_tangents(leaves, c0, c1))]
    hd = {**h, **from_unconstrained(setup, tree_unflatten(treedef, duals))}
    loss, acc = val_loss_of(setup, hd, progress=progress)
    if isinstance(loss, Dual):
        return (float(primal_value(loss.primal)),
                np.asarray(primal_value(loss.tangents)).reshape(c1 - c0), acc)
    return float(primal_value(loss)), np.zeros(c1 - c0), acc  # the loss does not depend on them


def chunk_task(setup, h: dict, u: dict, names: list, c0: int, c1: int):
    """One Dask task of a chunked forward hypergradient (`hyperopt.distributed`): the
    forward pass carrying directions ``c0 .. c1-1`` of the K that ``u[names]`` flatten
    to, on the task's own copy of ``setup``; ``(validation loss, tangents, accuracy)``."""
    from .distributed import task_setup
    leaves, treedef, _ = flat_hypergrad(u, names)
    return _forward_chunk(task_setup(setup), h, leaves, treedef, c0, c1)


def _reverse(setup, h, u, leaves, treedef, progress):
    out = {}

    def f(leaf_list):
        hd = {**h, **from_unconstrained(setup, tree_unflatten(treedef, leaf_list))}
        loss, acc = val_loss_of(setup, hd, progress=progress, jit=False)
        out["acc"] = acc
        return loss

    value, g = value_and_grad(f)([np.asarray(x) for x in leaves])
    flat = np.concatenate([np.ravel(primal_value(x)) for x in g]) if g else np.zeros(0)
    return float(primal_value(value)), flat, out["acc"]
