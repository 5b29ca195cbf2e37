"""Old names of renamed arguments, attributes and values keep working: each
warns once (DeprecationWarning) and gives the same result as the new name.

The names: ``hypergrad_lr`` (was ``hyper_lr`` in hyperopt.online),
``on_invalid`` (was ``on_invalid_lr`` in hyperopt.hd), ``space="raw"`` /
``"unconstrained"`` (were ``"natural"`` / ``"log"`` in hyperopt.online) and
``step`` for the step counter of every state (was ``count`` in hd, towers and
schedules) and ``wrt`` for the tuned names of towers and HD (was ``hyperparams``,
as hypergrad, online and tune already called them).
"""
import pickle
import warnings

import numpy as np
import pytest

from hyperopt import _checks
from hyperopt.data import Dataset, Split, synthetic_regression
from hyperopt.hd import (AdamHD, SGDHD, SGDNHD, adamhd_init, adamhd_update, sgdhd_init,
                         sgdhd_update)
from hyperopt.hd_auto import HD
from hyperopt.hypergrad import Setup
from hyperopt.online import MARTHE, RTHO, Online
from hyperopt.optim import SGD, Adam
from hyperopt.schedules import Scheduled, StepDecay
from hyperopt.towers import Tower


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test sees the first use of an old name."""
    _checks._warned.clear()
    yield
    _checks._warned.clear()


def _calls_warn_once(fn, old):
    """Run ``fn`` twice; exactly one DeprecationWarning naming ``old``, pointing at this file."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first, second = fn(), fn()
    dep = [w for w in record if issubclass(w.category, DeprecationWarning)]
    assert len(dep) == 1, [str(w.message) for w in dep]
    assert old in str(dep[0].message) and "deprecated" in str(dep[0].message)
    assert dep[0].filename == __file__
    return first, second


def _same(a, b):
    la, lb = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
    return all(np.asarray(x).tobytes() == np.asarray(y).tobytes() for x, y in zip(la, lb))


P = {"w": np.array([[0.5, -1.0], [2.0, 0.25]]), "b": np.array([0.1, -0.3])}


def _grads(p):
    return {"w": 2 * p["w"] - 1.0 + np.sin(p["w"]), "b": p["b"] + 0.5}


def _run(opt, steps=8):
    for _ in range(steps):
        opt.step(_grads(opt.params))
    return [opt.params["w"], opt.params["b"], opt.lr]


# -- on_invalid (hd) -----------------------------------------------------------------

@pytest.mark.parametrize("cls", [SGDHD, SGDNHD, AdamHD])
def test_on_invalid_lr_keyword(cls):
    new = _run(cls(P, lr=0.05, hypergrad_lr=1e-2, on_invalid="ignore"))
    a, b = _calls_warn_once(
        lambda: _run(cls(P, lr=0.05, hypergrad_lr=1e-2, on_invalid_lr="ignore")), "on_invalid_lr")
    assert _same(a, new) and _same(b, new)
    assert cls(P, on_invalid_lr="raise").param_groups[0]["on_invalid"] == "raise"
    with pytest.raises(TypeError, match="on_invalid_lr"):
        cls(P, on_invalid="warn", on_invalid_lr="raise")


def test_on_invalid_lr_param_group_key():
    new = SGDHD([{"params": P, "on_invalid": "raise"}], lr=0.1)
    a, _ = _calls_warn_once(lambda: SGDHD([{"params": P, "on_invalid_lr": "raise"}], lr=0.1),
                            "on_invalid_lr")
    assert a.param_groups[0]["on_invalid"] == new.param_groups[0]["on_invalid"] == "raise"
    assert "on_invalid_lr" not in a.param_groups[0]


@pytest.mark.parametrize("init, update", [(sgdhd_init, sgdhd_update),
                                          (adamhd_init, adamhd_update)])
def test_on_invalid_lr_keyword_of_the_pure_updates(init, update):
    def run(**kw):
        p, s = P, init(P, 0.05)
        for _ in range(5):
            p, s = update(p, _grads(p), s, hypergrad_lr=1e-2, **kw)
        return [p["w"], p["b"], s.lr]
    new = run(on_invalid="ignore")
    a, b = _calls_warn_once(lambda: run(on_invalid_lr="ignore"), "on_invalid_lr")
    assert _same(a, new) and _same(b, new)


# -- step (every state's counter) ----------------------------------------------------

@pytest.mark.parametrize("cls", [SGDHD, AdamHD])
def test_count_of_the_hd_states(cls):
    opt = cls(P, lr=0.05)
    _run(opt, 3)
    a, b = _calls_warn_once(lambda: opt.state[0].count, "count")
    assert a == b == opt.state[0].step == 3


def test_count_of_tower_and_hd_auto():
    tower = Tower(SGD(0.05, optimizer=SGD(1e-3)), P, space="raw")
    hd = HD(Adam(0.05), P, hypergrad_lr=1e-4)
    for _ in range(3):
        tower.update(_grads(tower.params))
        hd.step(_grads(hd.params))
    for shell in (tower, hd):
        a, b = _calls_warn_once(lambda: shell.count, "count")
        assert a == b == shell.state.step == 3
        _checks._warned.clear()
        a, b = _calls_warn_once(lambda: shell.state.count, "count")
        assert a == b == 3
        _checks._warned.clear()


def test_count_of_scheduled_state():
    opt = Scheduled(SGD(0.1), StepDecay(2))
    p, s = P, opt.init(P)
    for _ in range(3):
        p, s = opt.update(_grads(p), s, p)
    a, b = _calls_warn_once(lambda: s.count, "count")
    assert a == b == s.step == 3


def test_state_dicts_saved_with_the_old_names_load():
    opt = SGDHD(P, lr=0.05, momentum=0.5)
    _run(opt, 3)
    old = opt.state_dict()
    for g in old["param_groups"]:
        g["on_invalid_lr"] = g.pop("on_invalid")
    for s in old["state"]:
        s["count"] = s.pop("step")
    fresh = SGDHD(P, lr=0.05, momentum=0.5)
    fresh.load_state_dict(pickle.loads(pickle.dumps(old)))
    assert fresh.state[0].step == 3 and fresh.param_groups[0]["on_invalid"] == "warn"
    assert _same(_run(fresh), _run(opt))

    tower = Tower(SGD(0.05, optimizer=SGD(1e-3)), P)
    tower.update(_grads(tower.params))
    old = tower.state_dict()
    old["count"] = old.pop("step")
    fresh = Tower(SGD(0.05, optimizer=SGD(1e-3)), P)
    fresh.load_state_dict(old)
    assert fresh.state.step == 1


# -- hypergrad_lr and space (online) ---------------------------------------------------

class _LeastSquares:
    def init(self, seed=0, scale=1.0, dtype=np.float64):
        return {"w": scale * np.random.default_rng(seed).standard_normal(4).astype(dtype) * 0.1}

    def loss(self, params, x, y, label_smoothing=0.0):
        return np.mean((x @ params["w"] - y) ** 2)

    def accuracy(self, params, x, y):
        return 0.0


@pytest.fixture(scope="module")
def setup():
    d = synthetic_regression(n=120, n_features=4, noise=0.5, seed=1)
    scale = np.std(d.train.y)
    f = lambda s: Dataset(s.x, s.y / scale)  # noqa: E731
    return Setup(_LeastSquares(), Split(f(d.train), f(d.val), f(d.test)), SGD(lr=0.02),
                 steps=6, batch_size=16)


def _online(res):
    return [res.params["w"], [row["lr"] for row in res.history], res.val_loss]


@pytest.mark.parametrize("make", [
    lambda s, **kw: Online(s, {"lr": 0.02}, mu=0.5, **kw),
    lambda s, **kw: RTHO(s, {"lr": 0.02}, **kw),
    lambda s, **kw: MARTHE(s, {"lr": 0.02}, mu=0.5, **kw),
], ids=["Online", "RTHO", "MARTHE"])
def test_hyper_lr_keyword(setup, make):
    new = _online(make(setup, hypergrad_lr=1e-2).run())
    a, b = _calls_warn_once(lambda: _online(make(setup, hyper_lr=1e-2).run()), "hyper_lr")
    assert _same(a, new) and _same(b, new)
    with pytest.raises(TypeError, match="hyper_lr"):
        make(setup, hyper_lr=1e-2, hypergrad_lr=1e-2)


@pytest.mark.parametrize("old, new", [("log", "unconstrained"), ("natural", "raw")])
def test_online_space_values(setup, old, new):
    ref = Online(setup, {"lr": 0.02}, mu=0.5, hypergrad_lr=1e-2, space=new)
    assert ref.space == new
    expected = _online(ref.run())
    a, b = _calls_warn_once(
        lambda: _online(Online(setup, {"lr": 0.02}, mu=0.5, hypergrad_lr=1e-2, space=old).run()),
        f"space={old!r}")
    assert _same(a, expected) and _same(b, expected)


# -- wrt (towers, hd_auto: was hyperparams) -------------------------------------------

def _tower_run(**kw):
    tower = Tower(SGD(0.05, momentum=0.5, optimizer=SGD(1e-3)), P, space="raw", **kw)
    for _ in range(6):
        tower.update(_grads(tower.params))
    return [tower.params["w"], tower.params["b"]]


def _hd_run(**kw):
    hd = HD(Adam(0.02), P, hypergrad_lr=1e-4, **kw)
    for _ in range(6):
        hd.step(_grads(hd.params))
    return [hd.params["w"], hd.params["b"]]


@pytest.mark.parametrize("run", [_tower_run, _hd_run])
def test_hyperparams_keyword(run):
    new = run(wrt=("lr", "momentum") if run is _tower_run else ("lr", "betas"))
    a, b = _calls_warn_once(
        lambda: run(hyperparams=("lr", "momentum") if run is _tower_run else ("lr", "betas")),
        "hyperparams")
    assert _same(a, new) and _same(b, new)
    with pytest.raises(TypeError, match="hyperparams"):
        run(wrt=("lr",), hyperparams=("lr",))
