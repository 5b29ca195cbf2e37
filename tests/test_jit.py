"""jit: a recorded program replays exactly what the engine computes."""
import numpy as np
import pytest

from autodiff import dual, grad, jvp, vjp
from autodiff.dual import Dual
from autodiff.jit import RecordError, jit
from autodiff.ops import logsumexp
from autodiff.tree import tree_map

from test_primitives import COMPOSITES, TABLE


def _leaves(x):
    if isinstance(x, Dual):
        return _leaves(x.primal) + _leaves(x.tangents)
    if isinstance(x, (tuple, list)):
        return [l for v in x for l in _leaves(v)]
    if isinstance(x, dict):
        return [l for v in x.values() for l in _leaves(v)]
    return [x]


def assert_same(a, b):
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert type(x) is type(y) or (isinstance(x, (np.ndarray, np.generic)) and isinstance(y, (np.ndarray, np.generic)))
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert np.result_type(x) == np.result_type(y)


ALL = [pytest.param(c, id=f"{c.prim}-{c.id}") for cs in TABLE.values() for c in cs] + \
      [pytest.param(c, id=c.id) for c in COMPOSITES]


@pytest.mark.parametrize("c", ALL)
def test_replay_equals_direct_run(c):
    args = c.args()
    rng = np.random.default_rng(0)
    u = tree_map(lambda o: rng.standard_normal(np.shape(o)), vjp(c.f, *args)[0])
    pullback = lambda *a: vjp(c.f, *a)[1](u)
    duals = tuple(dual(a, rng.standard_normal((2,) + np.shape(a))) if isinstance(a, np.ndarray) else a
                  for a in args)
    for fn, inputs in [(c.f, args), (pullback, args), (c.f, duals), (pullback, duals)]:
        j = jit(fn)
        expected = fn(*inputs)
        assert_same(j(*inputs), expected)   # the recording run
        assert_same(j(*inputs), expected)   # a replay


def _mlp_loss(params, x, y):
    h = np.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    return np.mean(logsumexp(logits, axis=1) - np.sum(logits * y, axis=1))


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((16, 8)), np.eye(3)[rng.integers(0, 3, 16)]
    params = {"w1": rng.standard_normal((8, 6)), "b1": np.zeros(6),
              "w2": rng.standard_normal((6, 3)), "b2": np.zeros(3)}
    return params, x, y


def _step(params, vel, lr, x, y):
    g = grad(_mlp_loss)(params, x, y)
    vel = {k: 0.9 * vel[k] + g[k] for k in vel}
    return {k: params[k] - lr * vel[k] for k in params}, vel


def test_replay_with_new_values_matches_direct_run():
    params, x, y = _problem()
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    step = jit(_step)
    p_d, v_d, p_j, v_j = params, vel, params, vel
    for t in range(5):
        xb, yb = x + t, y  # new data each step: the replay must not bake values in
        p_d, v_d = _step(p_d, v_d, 0.05, xb, yb)
        p_j, v_j = step(p_j, v_j, 0.05, xb, yb)
        assert_same(p_j, p_d)
    assert len(step.programs) == 1


def test_forward_hypergradient_through_a_jitted_step():
    params, x, y = _problem()
    step = jit(_step)

    def train(lr, step_fn):
        p, v = params, {k: np.zeros_like(w) for k, w in params.items()}
        for _ in range(20):
            p, v = step_fn(p, v, lr, x, y)
        return _mlp_loss(p, x, y)

    expected = jvp(lambda lr: train(lr, _step), (np.asarray(0.1),), (np.asarray(1.0),))
    got = jvp(lambda lr: train(lr, step), (np.asarray(0.1),), (np.asarray(1.0),))
    assert_same(got, expected)
    # params, then the momentum buffer, pick up tangents: three signatures, then steady
    n = len(step.programs)
    assert n == 3
    got = jvp(lambda lr: train(lr, step), (np.asarray(0.1),), (np.asarray(1.0),))
    assert_same(got, expected)  # a new jvp has a new tag: the replay gives its outputs that tag
    assert len(step.programs) == n


def test_k_directions_and_float32():
    params, x, y = _problem()
    params = {k: v.astype(np.float32) for k, v in params.items()}
    x, y = x.astype(np.float32), y.astype(np.float32)
    rng = np.random.default_rng(1)
    duals = {k: dual(v, rng.standard_normal((4,) + v.shape).astype(np.float32)) for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    step = jit(_step)
    assert_same(step(duals, vel, 0.1, x, y), _step(duals, vel, 0.1, x, y))
    out = step(duals, vel, 0.1, x, y)[0]
    assert out["w1"].tangents.dtype == np.float32 and out["w1"].K == 4


def test_new_signature_records_again():
    f = jit(lambda a, s: a * s)
    f(np.ones(3), 2.0)
    f(np.ones(4), 2.0)
    f(np.ones(3), 3.0)  # Python scalars are static
    np.testing.assert_array_equal(f(np.ones(3), 3.0), np.full(3, 3.0))
    assert len(f.programs) == 3


def test_numpy_scalars_are_inputs_not_constants():
    """np.exp(0-d array) returns a numpy scalar: as a Dual's primal or bare, it is
    a 0-d input, so new values replay the same program and give new results."""
    f = jit(lambda a, lr, t: (a * lr + t, t + 1))
    a = np.ones(3)
    for i, lr in enumerate([0.1, 0.2, 0.3]):
        out, t = f(a, np.exp(np.log(np.asarray(lr))), np.int64(i))
        np.testing.assert_allclose(out, lr + i)
        assert int(t) == i + 1
    g = jit(lambda a, lr: a * lr)
    for lr in (0.1, 0.2):
        out = g(a, dual(np.exp(np.asarray(np.log(lr))), np.ones(1)))
        np.testing.assert_allclose(out.primal, lr * a)
        np.testing.assert_allclose(out.tangents, a[None])
    assert len(f.programs) == 1 and len(g.programs) == 1


def test_value_dependent_control_flow_is_refused():
    def f(x):
        return x if np.sum(x) > 0 else -x
    with pytest.raises(RecordError, match="np.where"):
        jit(f)(np.ones(3))


def test_where_on_comparisons_is_recorded():
    relu = jit(lambda x: np.where(x > 0, x, 0.0))
    relu(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(relu(np.array([-2.0, 3.0])), [0.0, 3.0])


def test_program_source_is_readable_and_frees_temporaries():
    params, x, y = _problem()
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    step = jit(_step)
    step(params, vel, 0.1, x, y)
    src = next(iter(step.programs.values())).replay.source
    assert src.startswith("def replay(") and "del " in src


def test_outputs_are_not_overwritten_by_later_replays():
    params, x, y = _problem()
    rng = np.random.default_rng(3)
    duals = {k: dual(v, rng.standard_normal((2,) + v.shape)) for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    step = jit(_step)
    step(duals, vel, 0.1, x, y)
    first = step(duals, vel, 0.1, x, y)
    snapshot = [np.copy(l) for l in _leaves(first)]
    step(duals, vel, 0.1, x + 1.0, y)  # reuses the program's own buffers
    for a, b in zip(_leaves(first), snapshot):
        np.testing.assert_array_equal(a, b)
    assert next(iter(step.programs.values())).replay.n_buffers > 0
