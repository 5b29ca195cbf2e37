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


def sweep_inputs(c):
    """A sweep case's inputs, a pullback of its function (a fixed random cotangent) and
    its inputs as Duals with 2 random tangent directions."""
    args = c.args()
    rng = np.random.default_rng(0)
    u = tree_map(lambda o: rng.standard_normal(np.shape(o)), vjp(c.f, *args)[0])
    pullback = lambda *a: vjp(c.f, *a)[1](u)
    duals = tuple(dual(a, rng.standard_normal((2,) + np.shape(a))) if isinstance(a, np.ndarray) else a
                  for a in args)
    return args, pullback, duals


@pytest.mark.parametrize("c", ALL)
def test_replay_equals_direct_run(c):
    args, pullback, duals = sweep_inputs(c)
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


# -- in-place writes, value-dependent shapes, slice bounds, the cache bound --------------------
import warnings  # noqa: E402


def _check_calls(f, inputs, j=None):
    """jit(f) equals f on each input in turn (the recording, then replays or re-recordings)."""
    j = j or jit(f)
    for a in inputs:
        a = a if isinstance(a, tuple) else (a,)
        expected = f(*a)
        assert_same(j(*a), expected)
    return j


def test_writes_of_recorded_values_into_plain_arrays_are_refused():
    x = np.ones(3)

    def out_into_plain(x):
        z = np.zeros(3)
        np.add(z, x, out=z)
        return z * 2.0

    refused = [
        lambda x: (lambda z: z.__iadd__(x))(np.zeros(3)) * 2.0,   # z += x on a plain z
        out_into_plain,
        lambda x: (lambda z: (np.add.at(z, [0, 0], x[:2]), z)[1])(np.zeros(3)),
        lambda x: (lambda z: (np.copyto(z, x), z)[1])(np.zeros(3)),
        lambda x: (lambda z: (np.multiply(x, 2.0, out=z), z)[1])(np.zeros(3)),
        lambda x: (lambda z: (x.sum(axis=0, out=z), z)[1])(np.zeros(())),
        lambda x: (lambda z: (np.dot(x[None], x[:, None], z), z)[1])(np.zeros((1, 1))),
    ]
    for f in refused:
        with pytest.raises(RecordError, match=r"plain numpy array.*np\.zeros_like\(x\).*z = z \+ x"):
            jit(f)(x)
    with pytest.raises(RecordError, match="np.zeros_like"):   # z[0] = x[0] on a plain z
        try:
            jit(lambda x: (lambda z: (z.__setitem__(0, x[0]), z)[1])(np.zeros(3)))(x)
        except ValueError as e:  # numpy wraps the refusal of the conversion
            raise e.__cause__


def test_writes_into_recorded_arrays_replay():
    def f(x):
        z = np.zeros_like(x)
        z += x                          # z = z + x (a Rec has no __iadd__)
        np.add(z, x, out=z)             # out= a recorded array
        np.add.at(z, np.array([0, 0, 2]), x[:3])
        np.copyto(z[1:3], x[:2] * 3.0)
        c = np.zeros(4)                 # plain values into a plain array: a constant
        c[1] = 2.0
        return z * 2.0 + c

    _check_calls(f, [np.arange(4.0) + i for i in range(4)])


def test_write_through_a_view_is_kept_and_seen_by_later_reads():
    def into_view(x):
        z = np.zeros_like(x)
        v = z[1:]
        np.add(v, x[1:], out=v)         # its result is unused: z shows the write
        return z

    def read_after_write(x):
        z = x * 1.0
        v = z.reshape(3)
        a = v * 2.0
        z[0] = 5.0
        return a + v * 2.0              # v * 2.0 again: not the value from before the write

    for f in (into_view, read_after_write):
        _check_calls(f, [np.arange(3.0) + i for i in range(3)])


def test_the_recording_call_applies_writes_into_inputs_once():
    def f(x):
        x[0] = x[0] + 1.0
        return x * 1.0

    j = jit(f)
    for _ in range(3):  # the recording, then replays
        x = np.zeros(3)
        out = j(x)
        assert x[0] == 1.0 and out[0] == 1.0


def _masked_mean(x):
    return x[x > 0].sum() / x[x > 0].shape[0]


_MASK_INPUTS = [np.array(v) for v in ([1., 2, -1, -1], [1., 2, 3, 4], [1., 2, 3, 4], [-1., 5, -3, 7],
                                      [5., -2, -3, -4], [1., 2, -1, -1])]


def test_value_dependent_shapes_are_guarded_and_recorded_again():
    j = _check_calls(_masked_mean, _MASK_INPUTS)   # counts of positives 2, 4, 4, 2, 1, 2
    # a new count of positives records again (one program replaces the last); the same count replays
    assert j.n_recordings == 5 and len(j.programs) == 1
    assert j(np.array([3., 2, -3, 4])) == 3.0
    assert j.n_recordings == 6
    assert "raise _Stale" in next(iter(j.programs.values())).replay.source


def test_value_dependent_shapes_under_grad():
    g = grad(_masked_mean)
    j = _check_calls(g, _MASK_INPUTS)
    np.testing.assert_array_equal(j(np.array([1., 2, 3, 4])), np.full(4, 0.25))
    np.testing.assert_array_equal(j(np.array([1., -2, 3, -4])), [0.5, 0, 0.5, 0])
    _check_calls(lambda x: vjp(_masked_mean, x)[1](np.asarray(1.0)), _MASK_INPUTS)
    _check_calls(lambda x: jvp(_masked_mean, (x,), (np.ones(4),)), _MASK_INPUTS)


@pytest.mark.parametrize("part", [
    lambda x: np.nonzero(x > 0)[0],
    lambda x: (x > 0).nonzero()[0],
    lambda x: np.argwhere(x > 0),
    lambda x: np.flatnonzero(x > 0),
    lambda x: np.where(x > 0)[0],
    lambda x: np.unique(np.round(x)),
    lambda x: np.unique(np.round(x), return_counts=True)[1],
    lambda x: np.extract(x > 0, x),
    lambda x: np.compress(x > 0, x),
    lambda x: np.repeat(x, (x > 0).astype(np.int64)),
    lambda x: np.bincount((np.abs(x) * 2).astype(np.int64)),
    lambda x: x[x < 0],
], ids=["nonzero", "method-nonzero", "argwhere", "flatnonzero", "where-1", "unique", "unique-counts",
        "extract", "compress", "repeat", "bincount", "mask"])
def test_value_dependent_functions_are_guarded(part):
    # a temporary of that shape (a buffer of the program) and the shape read in Python
    _check_calls(lambda x: np.sum(np.exp(part(x) * 0.5)) + len(part(x)), _MASK_INPUTS)


def test_guard_after_a_write_into_an_input_refuses_to_record_again():
    def f(x):
        x[0] = 1.0                      # an in-place write into the caller's array
        return x[x > 0].sum()

    j = jit(f)
    j(np.array([3.0, 2.0, -1.0]))
    x = np.array([-3.0, 2.0, -5.0])
    assert j(x) == f(x.copy())          # same count: the replay runs
    with pytest.raises(RecordError, match="applied twice"):
        j(np.array([3.0, -2.0, -1.0]))


def test_guard_after_a_write_into_a_new_array_records_again():
    def f(x):
        z = np.zeros_like(x)
        z[0] = 1.0
        z = z + x
        return z[z > 1].sum()

    _check_calls(f, _MASK_INPUTS)


def test_numpy_integer_slice_bounds_are_guarded():
    x = np.arange(5.0)
    f = lambda x, n: x[:n].sum()
    j = _check_calls(f, [(x, np.int64(n)) for n in (2, 3, 3, 2, 4)])
    assert j.n_recordings == 4 and len(j.programs) == 1
    g = lambda x, n: x[1:n + 1] * 2.0 + x[n - 1]          # a recorded bound (n + 1)
    _check_calls(g, [(x, np.int64(n)) for n in (1, 3, 3, 2)])
    _check_calls(grad(lambda x, n: np.sum(x[n:] ** 2)), [(x, np.int64(n)) for n in (2, 3, 3, 1)])
    with pytest.raises(RecordError, match="slice bound"):
        jit(lambda x, s: x[:s])(x, np.float64(2.0))


def test_the_cache_is_bounded_and_warns_about_a_changing_python_scalar():
    def step(params, lr, x):
        return {k: v - lr * x for k, v in params.items()}

    p, x = {"w": np.ones(3)}, np.ones(3)
    j = jit(step)
    with pytest.warns(UserWarning, match=r"static argument args\[1\] \(parameter 'lr'\).*numpy scalar"):
        for t in range(100):
            p = j(p, 0.1 / (t + 1), x)
    assert len(j.programs) <= 32 and j.n_recordings == 100
    np.testing.assert_allclose(p["w"], 1.0 - sum(0.1 / (t + 1) for t in range(100)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # once per jit-ed function
        j(p, 0.5, x)
    small = jit(lambda cfg, x: x * cfg["a"][1], max_programs=4)
    with pytest.warns(UserWarning, match=r"args\[0\]\['a'\]\[1\] \(parameter 'cfg'\)"):
        for t in range(20):
            np.testing.assert_array_equal(small({"a": (1, float(t))}, x), x * t)
    assert len(small.programs) == 4
    with pytest.raises(ValueError, match="max_programs"):
        jit(step, max_programs=0)


def test_warns_when_guards_keep_failing_but_not_for_new_shapes():
    j = jit(lambda x: x[x > 0].sum())
    with pytest.warns(UserWarning, match="value-dependent shapes / slice bounds"):
        for t in range(10):
            j(np.arange(10.0) - t)
    f = jit(lambda x, n: x[:n] * 2.0)
    with pytest.warns(UserWarning, match="slice bound was"):
        for n in range(10):
            f(np.arange(10.0), np.int64(n))
    shapes = jit(lambda x: x * 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(1, 12):          # new shapes: new programs, not churn
            shapes(np.ones(n))
    assert shapes.n_recordings == 11


def test_python_values_computed_from_arrays_are_guarded():
    f = lambda x: x * 2.0 if np.allclose(x, 0.0) else x - 1.0
    j = _check_calls(f, [np.zeros(2), np.zeros(2), np.ones(2), np.ones(2), np.zeros(2)])
    assert j.n_recordings == 3
    g = lambda x: x[:np.count_nonzero(x > 0)] * 2.0   # a numpy integer as a slice bound
    _check_calls(g, [np.array(v) for v in ([1., 2, -1], [1., 2, 3], [4., 5, 6], [1., -2, 3])])
