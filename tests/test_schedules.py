"""hyperopt.schedules: closed forms, torch.optim.lr_scheduler, derivatives, scheduled()."""
import math
import warnings

import numpy as np
import pytest

from autodiff import grad, jvp
from hyperopt.optim import SGD, Adam
from hyperopt.schedules import (Chain, CosineWarmRestarts, ExponentialDecay, LinearWarmup,
                                Sequential, StepDecay, chain, scheduled)

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

N = 50
BASE = 0.1


def sgdr(t, base, T_0, T_mult, eta_min):
    """SGDR's schedule (Loshchilov & Hutter, eq. 5) with cycle lengths T_0 T_mult^i."""
    T_i, start = T_0, 0
    while t >= start + T_i:
        start, T_i = start + T_i, T_i * T_mult
    return eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * (t - start) / T_i))


def warm(t, base, W, s):
    return base * (s + (1 - s) * min(t, W) / W)


CLOSED = [
    (StepDecay(7, 0.5), lambda t: BASE * 0.5 ** (t // 7)),
    (ExponentialDecay(0.93), lambda t: BASE * 0.93 ** t),
    (CosineWarmRestarts(5, 1, 0.01), lambda t: sgdr(t, BASE, 5, 1, 0.01)),
    (CosineWarmRestarts(3, 2, 0.01), lambda t: sgdr(t, BASE, 3, 2, 0.01)),
    (CosineWarmRestarts(4, 3), lambda t: sgdr(t, BASE, 4, 3, 0.0)),
    (LinearWarmup(10, 0.1), lambda t: warm(t, BASE, 10, 0.1)),
    (LinearWarmup(10), lambda t: warm(t, BASE, 10, 0.0)),
    (chain(LinearWarmup(10, 0.1), CosineWarmRestarts(20)),
     lambda t: warm(t, 1.0, 10, 0.1) * sgdr(t, BASE, 20, 1, 0.0)),
    (Sequential([LinearWarmup(10, 0.1), CosineWarmRestarts(6, 2, 0.001)], [10]),
     lambda t: warm(t, BASE, 10, 0.1) if t < 10 else sgdr(t - 10, BASE, 6, 2, 0.001)),
    (Sequential([ExponentialDecay(0.9), StepDecay(3, 0.5), ExponentialDecay(0.99)], [5, 20]),
     lambda t: BASE * (0.9 ** t if t < 5 else 0.5 ** ((t - 5) // 3) if t < 20 else 0.99 ** (t - 20))),
]


@pytest.mark.parametrize("sched,ref", CLOSED, ids=[repr(s) for s, _ in CLOSED])
def test_closed_forms(sched, ref):
    ours = [sched(t, BASE) for t in range(N)]
    np.testing.assert_allclose(ours, [ref(t) for t in range(N)], rtol=1e-14, atol=1e-17)
    assert all(type(x) is float for x in ours)  # Python ints in, Python floats out
    # an int-array step count (as under autodiff.jit) gives the same values
    arr = [sched(np.array(t), BASE) for t in range(N)]
    np.testing.assert_allclose(np.array(arr, dtype=float), ours, rtol=1e-14, atol=1e-17)


def _torch_lrs(make):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=BASE)
    sched = make(opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(N):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


def _torch_cases():
    L = torch.optim.lr_scheduler
    return [
        (StepDecay(7, 0.5), lambda o: L.StepLR(o, 7, 0.5)),
        (ExponentialDecay(0.93), lambda o: L.ExponentialLR(o, 0.93)),
        (CosineWarmRestarts(5, 1, 0.01), lambda o: L.CosineAnnealingWarmRestarts(o, 5, 1, 0.01)),
        (CosineWarmRestarts(3, 2, 0.01), lambda o: L.CosineAnnealingWarmRestarts(o, 3, 2, 0.01)),
        (LinearWarmup(10, 0.1), lambda o: L.LinearLR(o, 0.1, 1.0, 10)),
        (Sequential([LinearWarmup(10, 0.1), CosineWarmRestarts(6, 2, 0.001)], [10]),
         lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 10),
                                      L.CosineAnnealingWarmRestarts(o, 6, 2, 0.001)], [10])),
        (chain(LinearWarmup(10, 0.1), ExponentialDecay(0.95)),
         lambda o: L.ChainedScheduler([L.LinearLR(o, 0.1, 1.0, 10), L.ExponentialLR(o, 0.95)])),
    ]


@pytest.mark.skipif(torch is None, reason="torch is not installed")
def test_matches_torch_lr_scheduler():
    for sched, make in _torch_cases():
        ours = [sched(t, BASE) for t in range(N)]
        np.testing.assert_allclose(ours, _torch_lrs(make), rtol=1e-12, atol=0, err_msg=repr(sched))


# -- derivatives in the continuous parameters ---------------------------------------------

DERIV = [
    (StepDecay(4, 0.7), "gamma"),
    (ExponentialDecay(0.95), "gamma"),
    (CosineWarmRestarts(6, 2, 0.01), "eta_min"),
    (LinearWarmup(8, 0.2), "start_factor"),
    (chain(LinearWarmup(8, 0.2), ExponentialDecay(0.95)), "start_factor"),
    (chain(LinearWarmup(8, 0.2), ExponentialDecay(0.95)), "gamma"),
    (Sequential([LinearWarmup(8, 0.2), CosineWarmRestarts(6, 2, 0.01)], [8]), "eta_min"),
    (Sequential([LinearWarmup(8, 0.2), CosineWarmRestarts(6, 2, 0.01)], [8]), "start_factor"),
]


@pytest.mark.parametrize("sched,name", DERIV, ids=[f"{s!r}-{n}" for s, n in DERIV])
def test_derivatives_match_finite_differences(sched, name):
    x0, h = sched.defaults[name], 1e-6
    for t in [0, 1, 3, 7, 8, 13, 25, 49]:
        f = lambda x: sched(t, BASE, {name: x})
        _, d = jvp(f, (x0,), (1.0,))
        fd = (f(x0 + h) - f(x0 - h)) / (2 * h)
        np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-12, err_msg=f"t={t}")
        np.testing.assert_allclose(grad(f)(x0), d, rtol=1e-12, atol=1e-15)
        # and in the base learning rate
        g = lambda b: sched(t, b, {name: x0})
        _, db = jvp(g, (BASE,), (1.0,))
        np.testing.assert_allclose(db, (g(BASE + h) - g(BASE - h)) / (2 * h), rtol=1e-6, atol=1e-12)


def test_parameter_names_of_compositions():
    c = chain(StepDecay(5, 0.5), ExponentialDecay(0.9), LinearWarmup(3))
    assert c.defaults == {"0.gamma": 0.5, "1.gamma": 0.9, "start_factor": 0.0}
    assert c(7, 1.0, {"1.gamma": 0.8}) == pytest.approx(0.5 * 0.8 ** 7)
    with pytest.raises(ValueError, match="'gamma'"):
        c(7, 1.0, {"gamma": 0.8})
    assert isinstance(c, Chain)
    assert repr(c) == ("chain(StepDecay(step_size=5, gamma=0.5), ExponentialDecay(gamma=0.9), "
                       "LinearWarmup(warmup_steps=3, start_factor=0.0))")


def test_per_parameter_base_lr():
    s = ExponentialDecay(0.9)
    out = s(3, {"w": 0.1, "b": np.array([1.0, 2.0])})
    assert out["w"] == pytest.approx(0.1 * 0.9 ** 3)
    np.testing.assert_allclose(out["b"], np.array([1.0, 2.0]) * 0.9 ** 3)


@pytest.mark.parametrize("make,arg", [
    (lambda: StepDecay(0), "step_size"),
    (lambda: StepDecay(3, -0.1), "gamma"),
    (lambda: ExponentialDecay(float("nan")), "gamma"),
    (lambda: CosineWarmRestarts(0), "T_0"),
    (lambda: CosineWarmRestarts(5, 0), "T_mult"),
    (lambda: CosineWarmRestarts(5, 1.5), "T_mult"),
    (lambda: CosineWarmRestarts(5, eta_min=-1.0), "eta_min"),
    (lambda: LinearWarmup(-1), "warmup_steps"),
    (lambda: LinearWarmup(5, -0.5), "start_factor"),
    (lambda: Sequential([StepDecay(2), StepDecay(3)], []), "milestones"),
    (lambda: scheduled(SGD(0.1), StepDecay(2), every="batch"), "every"),
    (lambda: scheduled(SGD(0.1), StepDecay(2), every="epoch"), "steps_per_epoch"),
])
def test_bad_arguments(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


# -- scheduled optimizers ----------------------------------------------------------------

def _problem():
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal((2, 2)), "b": rng.standard_normal(3)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(12)]
    return params, grads


def _run(opt, params, grads, hparams=None):
    state = opt.init(params)
    for g in grads:
        params, state = opt.update(g, state, params, hparams)
    return params, state


@pytest.mark.parametrize("every,spe", [("step", None), ("epoch", 4)])
def test_scheduled_sgd_follows_the_schedule(every, spe):
    params, grads = _problem()
    sched = StepDecay(2, 0.5)
    opt = scheduled(SGD(0.1, momentum=0.9), sched, every=every, steps_per_epoch=spe)
    ours, state = _run(opt, params, grads)
    assert state.step == len(grads) and state.inner.step == len(grads)
    # by hand: plain SGD with lr set from the schedule before each step
    p, s, inner = params, None, SGD(0.1, momentum=0.9)
    s = inner.init(p)
    for i, g in enumerate(grads):
        t = i if every == "step" else i // spe
        p, s = inner.update(g, s, p, {"lr": 0.1 * 0.5 ** (t // 2)})
    for k in params:
        np.testing.assert_allclose(ours[k], p[k], rtol=1e-14)
    t_next = len(grads) if every == "step" else len(grads) // spe
    assert opt.lr_at(state) == pytest.approx(0.1 * 0.5 ** (t_next // 2))
    assert opt.describe() == "sgd"
    assert repr(opt).startswith("scheduled(SGD(lr=0.1, momentum=0.9), StepDecay(step_size=2, gamma=0.5)")


def test_scheduled_hypergradients_through_optimizer_and_schedule():
    params, grads = _problem()
    opt = scheduled(Adam(0.05, betas=(0.8, 0.95)),
                    chain(LinearWarmup(3, 0.2), CosineWarmRestarts(4, 2, 1e-3)))
    assert set(opt.defaults) == {"lr", "beta1", "beta2", "eps", "weight_decay", "start_factor", "eta_min"}
    cot = {k: np.linspace(-1, 1, v.size).reshape(v.shape) for k, v in params.items()}
    for name in ["lr", "beta1", "start_factor", "eta_min"]:
        x0 = opt.defaults[name]
        f = lambda x: sum(np.sum(cot[k] * v) for k, v in _run(opt, params, grads, {name: x})[0].items())
        _, d = jvp(f, (x0,), (1.0,))
        h = 1e-6 * x0
        np.testing.assert_allclose(d, (f(x0 + h) - f(x0 - h)) / (2 * h), rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(grad(f)(x0), d, rtol=1e-10, err_msg=name)
        assert d != 0


def test_scheduled_name_clash():
    class Odd(ExponentialDecay):
        constraints = {"momentum": "positive"}

        def __init__(self):
            self.defaults = {"momentum": 0.5}

    with pytest.raises(ValueError, match="clash"):
        scheduled(SGD(0.1), Odd())
