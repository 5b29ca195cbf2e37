"""The mode planner's calibration cost: recorded, and skipped when it would cost
more than a fixed share of the run."""

import math

import pytest

from hyperopt import planner
from hyperopt.data import digits
from hyperopt.hypergrad import Setup, hypergradient
from hyperopt.models import MLP
from hyperopt.optim import SGD
from hyperopt.planner import Plan, calibrate, plan, probe


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


def setup_(data, steps=40, **kw):
    return Setup(MLP((64, 16, 10)), data, SGD(lr=0.01, momentum=0.5), steps=steps,
                 batch_size=32, **kw)


H = {"lr": 0.01, "momentum": 0.5}


def test_plan_is_backward_compatible():
    p = Plan("forward", "why", {}, 2, 10, 1e9, None)
    assert p.calibration_seconds is None and p._fields[-1] == "calibration_seconds"


def test_calibration_seconds_are_recorded(data):
    s = setup_(data)
    p = plan(s, K=2, hparams=H)                 # no iterations: it always calibrates
    assert p.calibration_seconds is not None and p.calibration_seconds > 0
    assert "calibrating took" in p.reason
    assert set(p.estimates) == {"forward", "reverse", "hd"}
    # a calibration given: none ran in this call
    assert plan(s, K=2, calibration=calibrate(s, H)).calibration_seconds is None


def test_probe_measures_sizes_and_a_step(data):
    s = setup_(data)
    pr = probe(s, H)
    assert pr.n_params == 64 * 16 + 16 + 16 * 10 + 10
    assert pr.param_bytes == 8 * pr.n_params and pr.state_bytes == pr.param_bytes  # one buffer
    assert pr.step_bytes > 0 and 0 < pr.step_seconds < 1 and pr.eval_seconds > 0


def test_a_short_run_takes_the_cheap_path(data, monkeypatch):
    s = setup_(data, steps=20)
    calls = []
    monkeypatch.setattr(planner, "calibrate", lambda *a, **k: calls.append(1))
    p = plan(s, K=2, hparams=H, iterations=2)
    assert calls == []                                  # no calibration ran
    assert p.mode == "forward" and p.calibration_seconds is None
    assert "without calibrating" in p.reason and "more than 10% of" in p.reason
    assert "2 hypergradients of 20 steps" in p.reason
    assert all("rough" in e.note for e in p.estimates.values())
    assert "forward" in p.table() and "reverse" in p.table()
    # hypergradient(mode="auto") is one hypergradient: it does not calibrate either
    hg = hypergradient(s, H, mode="auto")
    assert calls == [] and hg.mode == "forward"


def test_a_long_run_calibrates(data, monkeypatch):
    s = setup_(data, steps=40)
    # make the probe see a slow step, so that the run (iterations x T steps) is long
    # next to the calibration; the plan then calibrates and says what that cost
    real = planner.probe
    monkeypatch.setattr(planner, "probe", lambda *a, **k: real(*a, **k)._replace(step_seconds=1.0))
    monkeypatch.setattr(planner, "CAL_BASE_STEPS", 10.0)
    monkeypatch.setattr(planner, "CAL_STEPS_PER_TANGENT", 10.0)
    p = plan(s, K=2, hparams=H, iterations=25)
    assert p.calibration_seconds is not None and p.calibration_seconds > 0
    assert "calibrating took" in p.reason and "of the run's estimated" in p.reason
    assert not any("rough" in e.note for e in p.estimates.values())
    assert p.mode == "forward"


def test_the_cheap_path_is_refused_when_forward_may_not_fit_or_reverse_may_win(data):
    s = setup_(data, steps=20)
    pr = probe(s, H)
    rough = 3 * (pr.param_bytes + pr.state_bytes + pr.step_bytes)
    # a budget that forward's rough memory fits, but not 4x over: calibrate, and say why
    p = plan(s, K=2, hparams=H, iterations=1, memory_budget=2 * rough)
    assert p.calibration_seconds is not None
    assert "calibrated although calibrating would take" in p.reason
    assert "does not fit the budget 4x over" in p.reason
    # many directions (the calibration runs w.r.t. H and extrapolates to K): reverse may be
    # much faster, which only calibration can tell
    p = plan(s, K=40, hparams=H, iterations=1, memory_budget=1e12)
    assert p.calibration_seconds is not None and "reverse mode may be faster" in p.reason


def test_plan_argument_checks(data):
    s = setup_(data)
    cal = calibrate(s)
    for kw in ({"iterations": 0}, {"iterations": 2.5}, {"max_calibration_share": -1},
               {"max_calibration_share": math.nan}):
        with pytest.raises(ValueError):
            plan(s, K=2, calibration=cal, **kw)
