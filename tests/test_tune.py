"""The outer loop (Tuner) and the mode planner."""

import numpy as np
import pytest

from hyperopt.data import Dataset, Split, digits
from hyperopt.hypergrad import Setup, hypergradient
from hyperopt.models import MLP, LogisticRegression
from hyperopt.optim import SGD, Adam
from hyperopt.planner import calibrate, plan
from hyperopt.tune import CheckpointMismatch, Tuner


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


def setup_(data, steps=40, **kw):
    return Setup(MLP((64, 16, 10)), data, SGD(lr=0.01, momentum=0.5), steps=steps,
                 batch_size=32, **kw)


def test_tuning_lowers_the_validation_loss(data):
    tuner = Tuner(setup_(data), {"lr": 0.01, "momentum": 0.5}, hyper_optimizer=Adam(lr=0.2),
                  mode="forward")
    res = tuner.run(6)
    losses = [r["val_loss"] for r in res.history]
    assert res.tuned_eval["val_loss"] < res.initial_eval["val_loss"] - 0.05
    assert res.tuned_eval["val_loss"] == pytest.approx(min(losses + [res.tuned_eval["val_loss"]]))
    assert res.tuned["lr"] > 0.01   # the run is too short for lr=0.01: tuning raises it
    # each row's hypergradient is the hypergradient at that row's hyperparameters
    r = res.history[2]
    hg = hypergradient(setup_(data), {"lr": r["lr"], "momentum": r["momentum"]})
    assert hg.value == pytest.approx(r["val_loss"], rel=1e-12)
    assert hg.grads["lr"] == pytest.approx(r["d_lr"], rel=1e-10)


def test_hypergradient_clipping(data):
    tuner = Tuner(setup_(data, steps=10), {"lr": 0.01}, hyper_optimizer=SGD(lr=1.0),
                  max_hypergrad_norm=1e-3, mode="forward")
    res = tuner.run(2)
    row = res.history[0]
    assert row["clipped"] and row["hypergrad_norm"] > 1e-3
    step = np.log(res.history[1]["lr"]) - np.log(row["lr"])
    assert abs(step) == pytest.approx(1e-3, rel=1e-9)


def test_resume_gives_the_uninterrupted_result_bit_for_bit(data, tmp_path):
    ck = str(tmp_path / "ck.pkl")
    make = lambda: Tuner(setup_(data, steps=20), {"lr": 0.02, "momentum": 0.5}, mode="forward",
                         hyper_optimizer=Adam(lr=0.1))
    full = make().run(4)
    make().run(2, checkpoint=ck)                 # "interrupted" after 2 iterations
    resumed = make().run(4, checkpoint=ck, resume=True)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(full.history)
    assert resumed.tuned_eval == full.tuned_eval


def test_checkpoint_of_other_settings_is_refused(data, tmp_path):
    ck = str(tmp_path / "ck.pkl")
    Tuner(setup_(data, steps=10), {"lr": 0.02}, mode="forward").run(1, checkpoint=ck)
    other = Tuner(setup_(data, steps=11), {"lr": 0.02}, mode="forward")
    with pytest.raises(CheckpointMismatch):
        other.run(2, checkpoint=ck, resume=True)


def test_tuner_bad_arguments(data):
    with pytest.raises(ValueError, match="unknown"):
        Tuner(setup_(data), {"lr": 0.01}, wrt=["nope"])
    with pytest.raises(ValueError, match="max_hypergrad_norm"):
        Tuner(setup_(data), {"lr": 0.01}, max_hypergrad_norm=-1)
    with pytest.raises(ValueError, match="iterations"):
        Tuner(setup_(data), {"lr": 0.01}, mode="forward").run(-1)


# -- the planner -------------------------------------------------------------------

@pytest.mark.parametrize("K,T", [(2, 30), (8, 30)])
def test_planner_memory_estimates_within_2x_of_measured_peaks(data, K, T, traced_peak):
    s = Setup(MLP((64, 32, 10)), data, SGD(lr=0.05, momentum=0.5), steps=T, batch_size=64,
              jit=False, check_every=0)
    lrs = {k: 0.05 for k in s.init(s.resolve({}))}   # 4 leaves: one lr each
    h = {"lr": lrs, "momentum": 0.5} if K <= 5 else {"lr": lrs, "momentum": 0.5,
                                                      "weight_decay": 1e-4, "init_scale": 1.0,
                                                      "label_smoothing": 0.01}
    h = {"lr": 0.05, "momentum": 0.5} if K == 2 else h
    assert sum(np.size(v) if not isinstance(v, dict) else len(v) for v in h.values()) == K
    p = plan(s, K=K, hparams=h)
    hypergradient(s, h, mode="forward")          # warm-up
    fwd = traced_peak(lambda: hypergradient(s, h, mode="forward"))
    rev = traced_peak(lambda: hypergradient(s, h, mode="reverse"))
    for name, measured in (("forward", fwd), ("reverse", rev)):
        est = p.estimates[name].bytes
        assert 0.5 <= est / measured <= 2.0, (name, est, measured)


def test_planner_choices(data):
    s = setup_(data, steps=200)
    cal = calibrate(s)
    # few hyperparameters, roomy budget: forward (flat memory, and faster than reverse)
    assert plan(s, K=2, calibration=cal).mode == "forward"
    # one weight per training example: reverse (one sweep instead of 1077 tangents)
    many = plan(s, K=1077, calibration=cal)
    assert many.mode == "reverse", many.reason
    # reverse does not fit and the forward tangents do not all fit: forward in chunks
    budget = 0.6 * many.estimates["reverse"].bytes
    chunked = plan(s, K=1077, T=2000, memory_budget=budget, calibration=cal)
    assert chunked.mode == "forward" and chunked.chunk_size < 1077
    # nothing exact fits: one-step HD, with the reason
    tiny = plan(s, K=2, memory_budget=1.0, calibration=cal)
    assert tiny.mode == "hd" and "no exact mode fits" in tiny.reason
    assert "forward" in plan(s, K=2, calibration=cal).table()


def test_planner_bad_arguments(data):
    s = setup_(data)
    cal = calibrate(s)
    for kw in ({"K": 0}, {"K": 2, "T": 0}, {"K": 2, "memory_budget": -5}):
        with pytest.raises(ValueError):
            plan(s, calibration=cal, **kw)
