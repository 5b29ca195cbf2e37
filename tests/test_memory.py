"""Forward-over-reverse through a training loop keeps memory flat in the number of steps."""
import gc
import tracemalloc

import numpy as np

from autodiff import grad, jvp


def _loss(params, x, y):
    h = np.tanh(x @ params["w1"] + params["b1"])
    out = h @ params["w2"] + params["b2"]
    return np.mean((out - y) ** 2)


def _hypergradient(steps, lr=0.1, momentum=0.9):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 8)), rng.standard_normal((16, 4))
    params0 = {"w1": rng.standard_normal((8, 16)) * 0.3, "b1": np.zeros(16),
               "w2": rng.standard_normal((16, 4)) * 0.3, "b2": np.zeros(4)}

    def run(lr):
        params = params0
        vel = {k: np.zeros_like(v) for k, v in params.items()}
        for _ in range(steps):
            g = grad(_loss)(params, x, y)
            vel = {k: momentum * vel[k] + g[k] for k in vel}
            params = {k: params[k] - lr * vel[k] for k in params}
        return _loss(params, x, y)

    return jvp(run, (np.asarray(lr),), (np.asarray(1.0),))


def _peak(steps):
    """Peak traced memory of a second run, measured from the memory in use before it.

    The first run, traced too, fills CPython's free lists (up to 2,000 spare
    objects per size class, emptied by a full garbage collection) with traced
    blocks; otherwise their filling, which is bounded but takes a couple of
    thousand steps, would read as growth.
    """
    gc.collect()
    tracemalloc.start()
    try:
        _hypergradient(1000)  # no gc.collect() after it: a full collection empties the free lists
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        _, dval = _hypergradient(steps)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert np.isfinite(dval)
    return peak


def test_forward_over_reverse_memory_is_flat_in_steps():
    short, long = _peak(10), _peak(1000)
    assert long <= short + 300_000, f"peak grew from {short} B (10 steps) to {long} B (1000 steps)"


def test_tape_grows_when_the_run_is_recorded():
    """The contrast: reverse mode over the unrolled run stores every step."""
    from autodiff import grad as rgrad

    def peak_reverse(steps):
        gc.collect()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            rgrad(lambda lr: _hypergradient_value(steps, lr))(np.asarray(0.1))
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    assert peak_reverse(40) > 2 * peak_reverse(10)


def _hypergradient_value(steps, lr):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 8)), rng.standard_normal((16, 4))
    params = {"w1": rng.standard_normal((8, 16)) * 0.3, "b1": np.zeros(16),
              "w2": rng.standard_normal((16, 4)) * 0.3, "b2": np.zeros(4)}
    for _ in range(steps):
        g = grad(_loss)(params, x, y)
        params = {k: params[k] - lr * g[k] for k in params}
    return _loss(params, x, y)
