"""The outer loop (Tuner) and the mode planner."""

import numpy as np
import pytest

from hyperopt.data import Dataset, Split, digits
from hyperopt.hypergrad import Setup, hypergradient
from hyperopt.models import MLP, LogisticRegression
from hyperopt.optim import SGD, Adam
from hyperopt.planner import calibrate, plan
from hyperopt.tune import CheckpointError, CheckpointMismatch, Tuner


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
    ck = str(tmp_path / "ck.npz")
    make = lambda: Tuner(setup_(data, steps=20), {"lr": 0.02, "momentum": 0.5}, mode="forward",
                         hyper_optimizer=Adam(lr=0.1))
    full = make().run(4)
    make().run(2, checkpoint=ck)                 # "interrupted" after 2 iterations
    resumed = make().run(4, checkpoint=ck, resume=True)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(full.history)
    assert resumed.tuned_eval == full.tuned_eval


def test_checkpoint_of_other_settings_is_refused(data, tmp_path):
    ck = str(tmp_path / "ck.npz")
    Tuner(setup_(data, steps=10), {"lr": 0.02}, mode="forward").run(1, checkpoint=ck)
    other = Tuner(setup_(data, steps=11), {"lr": 0.02}, mode="forward")
    with pytest.raises(CheckpointMismatch):
        other.run(2, checkpoint=ck, resume=True)


def test_a_mismatch_names_the_settings_that_differ(data, tmp_path):
    ck = str(tmp_path / "ck.npz")
    Tuner(setup_(data, steps=10), {"lr": 0.02}, mode="forward").run(1, checkpoint=ck)
    other = Tuner(setup_(data, steps=11), {"lr": 0.03}, mode="forward")
    with pytest.raises(CheckpointMismatch) as e:
        other.load(ck)
    assert e.value.differences["steps"] == ("10", "11")
    assert e.value.differences["initial lr"] == ("0.02", "0.03")
    assert set(e.value.differences) == {"steps", "initial lr"}
    assert "steps: 10 in the checkpoint, 11 now" in str(e.value)


def test_the_checkpoint_is_a_versioned_npz_without_pickles(data, tmp_path):
    import json
    ck = str(tmp_path / "ck.npz")
    tuner = Tuner(setup_(data, steps=10), {"lr": 0.02, "momentum": 0.5}, mode="forward",
                  hyper_optimizer=Adam(lr=0.1))
    tuner.run(2, checkpoint=ck)
    with np.load(ck, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
        meta = json.loads(str(z["meta"][()]))
    assert meta["format"] == "hyperopt.tune checkpoint" and meta["version"] == 1
    assert meta["settings"]["steps"] == "10" and meta["iteration"] == 2
    assert [r["iteration"] for r in meta["history"]] == [0, 1]
    # a fresh tuner loads the exact state: values, dtypes and Python types
    fresh = Tuner(setup_(data, steps=10), {"lr": 0.02, "momentum": 0.5}, mode="forward",
                  hyper_optimizer=Adam(lr=0.1))
    fresh.load(ck)
    from autodiff.tree import tree_leaves
    state = lambda t: tree_leaves((t.u, t.opt_state))
    for a, b in zip(state(tuner), state(fresh)):
        assert type(a) is type(b) and np.asarray(a).dtype == np.asarray(b).dtype
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert fresh.history == tuner.history and fresh.iteration == 2


@pytest.mark.parametrize("damage", ["truncated", "text", "pickle", "other npz", "version"])
def test_damaged_checkpoints_raise_checkpoint_error(damage, data, tmp_path):
    import json
    import pickle
    ck = tmp_path / "ck.npz"
    make = lambda: Tuner(setup_(data, steps=10), {"lr": 0.02}, mode="forward")
    make().run(1, checkpoint=str(ck))
    if damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:-100])
    elif damage == "text":
        ck.write_text("not a checkpoint")
    elif damage == "pickle":
        ck.write_bytes(pickle.dumps({"fingerprint": "x"}))
    elif damage == "other npz":
        np.savez(ck, X=np.zeros(3))
    else:
        with np.load(ck) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"][()]))
        meta["version"] = 99
        arrays["meta"] = np.array(json.dumps(meta))
        with open(ck, "wb") as f:
            np.savez(f, **arrays)
    with pytest.raises(CheckpointError) as e:
        make().load(str(ck))
    assert not isinstance(e.value, CheckpointMismatch)
    assert str(ck) in str(e.value) and "\n" not in str(e.value)


def test_tuned_is_the_best_row_of_the_history(data):
    tuner = Tuner(setup_(data, steps=20), {"lr": 0.01, "momentum": 0.5},
                  hyper_optimizer=Adam(lr=0.3), mode="forward")
    res = tuner.run(3)
    losses = [r["val_loss"] for r in res.history]
    assert res.best_iteration == int(np.argmin(losses)) < len(res.history)
    row = res.history[res.best_iteration]
    assert res.tuned["lr"] == row["lr"] and res.tuned["momentum"] == row["momentum"]
    assert res.tuned_eval["val_loss"] == pytest.approx(row["val_loss"], rel=1e-9)


def test_calibration_seconds_are_recorded(data):
    fwd = Tuner(setup_(data, steps=10), {"lr": 0.01}, mode="forward")
    assert fwd.calibration_seconds == 0.0
    auto = Tuner(setup_(data, steps=10), {"lr": 0.01}, mode="auto")
    # the planner's own record (None: it took a path without calibrating)
    assert auto.calibration_seconds == (auto.plan.calibration_seconds or 0.0)
    res = auto.run(2)
    assert res.calibration_seconds == auto.calibration_seconds
    # the first row this process writes carries it
    assert [r["calibration_seconds"] for r in res.history] == [auto.calibration_seconds, 0.0]


def test_calibration_seconds_from_any_planner():
    from collections import namedtuple
    from hyperopt.tune import _calibration_seconds
    Old = namedtuple("Old", "mode")              # a Plan that records nothing: time the call
    New = namedtuple("New", "mode calibration_seconds")
    assert _calibration_seconds(Old("forward"), 2.5) == 2.5
    assert _calibration_seconds(New("forward", 1.25), 2.5) == 1.25
    assert _calibration_seconds(New("forward", None), 2.5) == 0.0   # it did not calibrate


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
