"""hyperopt.transforms: round trips, derivatives, and steps that cannot leave the range."""
import numpy as np
import pytest

from autodiff import grad, jvp
from hyperopt import optim
from hyperopt.optim import SGD, Adagrad, Adam, AdamW, RAdam, RMSprop
from hyperopt.schedules import CosineWarmRestarts, LinearWarmup, StepDecay, chain, scheduled
from hyperopt.transforms import (forward, from_unconstrained, inverse, is_valid, sigmoid,
                                 to_unconstrained)

VALUES = {
    "positive": [1e-12, 1e-8, 1e-3, 0.5, 1.0, 3.0, 1e6],
    "nonnegative": [1e-12, 1e-6, 0.01, 0.7, 1.0, 30.0, 1e4],
    "unit": [1e-12, 1e-4, 0.1, 0.5, 0.9, 0.999, 1 - 1e-9],
    "unit_closed_open": [1e-10, 0.01, 0.5, 0.99, 0.999999],
    None: [-3.0, 0.0, 2.5],
}
ALL_OPTS = [SGD(0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4), Adam(weight_decay=1e-4),
            AdamW(), RAdam(weight_decay=1e-3), RMSprop(momentum=0.5, weight_decay=1e-4),
            Adagrad(lr_decay=1e-3, weight_decay=1e-4, initial_accumulator_value=0.1)]


@pytest.mark.parametrize("constraint", list(VALUES))
def test_round_trip(constraint):
    x = np.array(VALUES[constraint])
    np.testing.assert_allclose(inverse(constraint, forward(constraint, x)), x, rtol=1e-13, atol=0)
    for v in VALUES[constraint]:  # Python floats one at a time too
        np.testing.assert_allclose(inverse(constraint, forward(constraint, v)), v, rtol=1e-13)


@pytest.mark.parametrize("opt", ALL_OPTS, ids=lambda o: o.describe())
def test_round_trip_optimizer_hparams(opt):
    raw = to_unconstrained(opt)
    assert set(raw) == set(opt.defaults)
    back = from_unconstrained(opt, raw)
    for k, v in opt.defaults.items():
        np.testing.assert_allclose(back[k], v, rtol=1e-13, err_msg=k)


def test_closed_ends_round_trip_exactly():
    opt = SGD(0.1)  # momentum, dampening and weight decay at 0
    back = from_unconstrained(opt, to_unconstrained(opt))
    assert back["momentum"] == 0 and back["dampening"] == 0 and back["weight_decay"] == 0
    assert to_unconstrained(opt)["weight_decay"] == -np.inf


@pytest.mark.parametrize("constraint", ["positive", "nonnegative", "unit", "unit_closed_open"])
def test_a_step_in_unconstrained_space_stays_valid(constraint):
    start = np.array(VALUES[constraint])
    u0 = forward(constraint, start)
    for step in [1e-3, 1.0, 37.0, 50.0, 800.0, 1e5, 1e300]:
        for sign in (1.0, -1.0):
            x = inverse(constraint, u0 + sign * step)
            assert is_valid(constraint, x), (constraint, sign * step, x)


@pytest.mark.parametrize("opt", ALL_OPTS, ids=lambda o: o.describe())
def test_stepped_hparams_are_accepted_by_the_constructor(opt):
    raw = to_unconstrained(opt)
    for step in [-1e4, -60.0, -5.0, 5.0, 60.0, 1e4]:
        h = from_unconstrained(opt, {k: u + step for k, u in raw.items()})
        for k, v in h.items():
            assert is_valid(opt.constraints[k], v), (k, v)
        kwargs = dict(h)
        if "beta1" in kwargs:
            kwargs["betas"] = (kwargs.pop("beta1"), kwargs.pop("beta2"))
        type(opt)(**kwargs)  # passes validation


def test_hypergradient_descent_in_unconstrained_space_never_leaves_the_range():
    # an objective that pulls momentum towards 2 and lr towards -1: both out of range
    opt = SGD(0.1, momentum=0.5)
    raw = to_unconstrained(opt, {"lr": 0.1, "momentum": 0.5})

    def objective(r):
        h = from_unconstrained(opt, r)
        return (h["momentum"] - 2.0) ** 2 + (h["lr"] + 1.0) ** 2

    for _ in range(200):
        g = grad(objective)(raw)
        raw = {k: raw[k] - 50.0 * g[k] for k in raw}
        h = from_unconstrained(opt, raw)
        assert is_valid("positive", h["lr"]) and is_valid("unit_closed_open", h["momentum"])
        SGD(h["lr"], momentum=h["momentum"])


@pytest.mark.parametrize("constraint", ["positive", "nonnegative", "unit", "unit_closed_open"])
def test_derivatives(constraint):
    for x in [0.02, 0.5, 0.9]:
        u = float(forward(constraint, x))
        _, t = jvp(lambda v: inverse(constraint, v), (u,), (1.0,))
        h = 1e-6
        fd = (inverse(constraint, u + h) - inverse(constraint, u - h)) / (2 * h)
        np.testing.assert_allclose(t, fd, rtol=1e-8)
        np.testing.assert_allclose(grad(lambda v: inverse(constraint, v))(u), t, rtol=1e-14)
        # and the forward transform is its inverse's inverse, derivative included
        _, tf = jvp(lambda v: forward(constraint, v), (x,), (1.0,))
        np.testing.assert_allclose(tf * t, 1.0, rtol=1e-12)


def test_sigmoid_is_accurate_and_smooth_at_zero():
    assert sigmoid(-40.0) == pytest.approx(np.exp(-40.0) / (1 + np.exp(-40.0)), rel=1e-14)
    assert sigmoid(-800.0) == 0.0 and sigmoid(800.0) == 1.0
    assert grad(sigmoid)(0.0) == 0.25 and jvp(sigmoid, (0.0,), (1.0,))[1] == 0.25


def test_per_parameter_values_and_schedules():
    opt = Adam()
    lr = {"w": 0.1, "b": np.array([0.01, 0.02])}
    raw = to_unconstrained(opt, {"lr": lr})
    np.testing.assert_allclose(raw["lr"]["b"], np.log(lr["b"]))
    np.testing.assert_allclose(from_unconstrained(opt, raw)["lr"]["b"], lr["b"], rtol=1e-14)
    sched = scheduled(SGD(0.1), chain(LinearWarmup(5, 0.1), CosineWarmRestarts(10, eta_min=1e-3)))
    raw = to_unconstrained(sched)
    assert set(raw) == {"lr", "momentum", "dampening", "weight_decay", "start_factor", "eta_min"}
    assert from_unconstrained(sched, raw)["eta_min"] == pytest.approx(1e-3, rel=1e-13)
    assert to_unconstrained(StepDecay(3, 0.5))["gamma"] == pytest.approx(np.log(0.5))


def test_unknown_names():
    with pytest.raises(ValueError, match="'gamma'"):
        to_unconstrained(SGD(0.1), {"gamma": 0.5})
    with pytest.raises(ValueError, match="'beta3'"):
        from_unconstrained(Adam(), {"beta3": 0.0})
    assert set(optim.CONSTRAINTS) == {"positive", "nonnegative", "unit", "unit_closed_open", None}
