"""The workloads of benchmarks/compare_peers.py, one implementation per library.

Every library runs the same computation on the same numbers (made here with
numpy's seeded generator and converted):

* an MLP (``small`` = 64-128-10, ``large`` = 784-512-512-10), tanh hidden
  layers, softmax cross-entropy, batch 128, random data;
* ``plain``: one training step, the gradient of the loss and an SGD-with-momentum
  update (``v = mu*v + g; p = p - lr*v``, lr and mu Python scalars);
* ``k1``: the same step with the parameters and the momentum buffer carrying 1
  tangent direction (forward-over-reverse: the tangent of the updated
  parameters);
* ``k4``: the same with 4 tangent directions in one batched pass;
* ``hyper``: d(training loss after T steps)/d(lr), by forward mode over the
  whole unrolled loop (reported per step);
* ``gemm_plain`` / ``gemm_k1`` / ``gemm_k4`` (numpy only, a diagnostic): just the
  GEMMs of those steps, back to back, with the K tangent GEMMs that share an
  operand merged into one (the layout an ideal stacked-tangent engine would use).

The per-library functions import their library lazily: each runs in its own
process (see compare_peers.py).  Nothing here touches the engine's internals:
the autodiff code uses only its public API.
"""
from __future__ import annotations

import time

import numpy as np

MODELS = {"small": (64, 128, 10), "large": (784, 512, 512, 10)}
BATCH = 128
LR = 0.05
MOMENTUM = 0.9
SEED = 0
STEP_WORKLOADS = ("plain", "k1", "k4")


# -- the problem: data, parameters, tangents ---------------------------------------------
def make_problem(model: str, dtype: str, k4: int = 4) -> dict:
    """Data, parameters [W1, b1, W2, b2, ...], a momentum buffer and tangents."""
    sizes = MODELS[model]
    dt = np.dtype(dtype)
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((BATCH, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], BATCH)]
    params = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        params.append(rng.standard_normal((m, n)) / np.sqrt(m))
        params.append(0.1 * rng.standard_normal(n))
    vel = [0.01 * rng.standard_normal(p.shape) for p in params]
    t1p = [rng.standard_normal((1,) + p.shape) for p in params]
    t1v = [rng.standard_normal((1,) + p.shape) for p in params]
    t4p = [rng.standard_normal((k4,) + p.shape) for p in params]
    t4v = [rng.standard_normal((k4,) + p.shape) for p in params]
    cast = lambda arrs: [a.astype(dt) for a in arrs]
    return {"sizes": sizes, "x": x.astype(dt), "y": y.astype(dt), "params": cast(params),
            "vel": cast(vel), "t1p": cast(t1p), "t1v": cast(t1v), "t4p": cast(t4p), "t4v": cast(t4v)}


# -- FLOP counts (multiply-adds of the GEMMs only, 2 FLOPs each) -------------------------
def step_flops(sizes, batch: int = BATCH, k: int = 0) -> int:
    """GEMM FLOPs of one training step with k tangent directions (k=0: plain).

    Plain: per layer the forward GEMM and dW; dX for every layer but the first
    (its input is data).  With k directions a GEMM whose two operands both carry
    tangents becomes 1 + 2k GEMMs (primal, dA@B, A@dB); one with a data operand
    (the first layer's forward and dW) becomes 1 + k.
    """
    total = 0
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        unit = 2 * batch * m * n
        per = 1 + (k if i == 0 else 2 * k)
        total += unit * per          # forward  X @ W
        total += unit * per          # backward dW = X^T dZ
        if i > 0:
            total += unit * (1 + 2 * k)  # backward dX = dZ W^T
    return total


def forward_flops(sizes, batch: int = BATCH, k: int = 0) -> int:
    return sum(2 * batch * m * n * (1 + (k if i == 0 else 2 * k))
               for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])))


def hyper_flops(sizes, steps: int, batch: int = BATCH) -> int:
    """GEMM FLOPs of a forward hypergradient d(loss after T steps)/d(lr).

    Step 1 starts from parameters without a tangent, so its gradient is a plain
    one (the update gives them the tangent -v); steps 2..T are K=1 steps; the
    final loss is a forward pass with one tangent.
    """
    return step_flops(sizes, batch, 0) + (steps - 1) * step_flops(sizes, batch, 1) + forward_flops(sizes, batch, 1)


# -- timing ----------------------------------------------------------------------------------
def _timed(fn):
    """(wall seconds, CPU seconds of this process) of one call.  On a shared machine the
    CPU time of a single-threaded run leaves out the time it spent descheduled."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, c1 - c0


def bench_interleaved(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Samples {name: {"wall": [...], "cpu": [...]}}: every repeat runs each function once, in turn."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = _timed(fn)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def bench_hyper(run, steps: int, repeats: int, warmup) -> dict:
    """Seconds per training step of ``run()`` (a whole T-step hypergradient)."""
    warmup()
    out = {"wall": [], "cpu": []}
    for _ in range(repeats):
        wall, cpu = _timed(run)
        out["wall"].append(wall / steps)
        out["cpu"].append(cpu / steps)
    return out


def _flat(prefix, arrs):
    return {f"{prefix}{i}": np.asarray(a) for i, a in enumerate(arrs)}


# ============================================================================================
# autodiff: the user's code, plain numpy with grad / dual / jvp
# ============================================================================================
def autodiff_loss(params, x, y):
    """The MLP's loss, as a user of the engine writes it (plain numpy)."""
    from autodiff.ops import logsumexp
    h = x
    for i in range(0, len(params) - 2, 2):
        h = np.tanh(h @ params[i] + params[i + 1])
    logits = h @ params[-2] + params[-1]
    return np.mean(logsumexp(logits, axis=1) - np.sum(logits * y, axis=1))


def autodiff_step(params, vel, x, y):
    """One training step: `grad` of the loss, then SGD with momentum."""
    from autodiff import grad
    return _sgd_step(grad(autodiff_loss), LR, MOMENTUM, params, vel, x, y)


def run_autodiff(prob, cfg, use_jit=False):
    from autodiff import dual, grad, jit, jvp

    x, y = prob["x"], prob["y"]
    mu = MOMENTUM
    loss, step = autodiff_loss, autodiff_step

    def train(lr, params, vel, steps):
        for _ in range(steps):
            params, vel = _sgd_step(grad(loss), lr, mu, params, vel, x, y)
        return loss(params, x, y)

    if use_jit:  # the same user code, each step recorded once and replayed
        step = jit(step)
        jstep = jit(lambda lr, params, vel, x, y: _sgd_step(grad(loss), lr, mu, params, vel, x, y))

        def train(lr, params, vel, steps):  # noqa: F811
            for _ in range(steps):
                params, vel = jstep(lr, params, vel, x, y)
            return loss(params, x, y)

    p, v = prob["params"], prob["vel"]
    p1 = [dual(a, t[0]) for a, t in zip(p, prob["t1p"])]       # one direction: tangent shaped like p
    v1 = [dual(a, t[0]) for a, t in zip(v, prob["t1v"])]
    p4 = [dual(a, t) for a, t in zip(p, prob["t4p"])]          # K=4: tangent of shape (4,) + p.shape
    v4 = [dual(a, t) for a, t in zip(v, prob["t4v"])]
    fns = {"plain": lambda: step(p, v, x, y),
           "k1": lambda: step(p1, v1, x, y),
           "k4": lambda: step(p4, v4, x, y)}
    fns = {k: f for k, f in fns.items() if k in cfg["only"]}

    check = {}
    if cfg["check"]:
        if "plain" in fns:
            check.update(_flat("plain_p", step(p, v, x, y)[0]))
        if "k1" in fns:
            out = step(p1, v1, x, y)[0]
            check.update(_flat("k1_p", [o.primal for o in out]))
            check.update(_flat("k1_t", [o.tangents for o in out]))
        if "k4" in fns:
            check.update(_flat("k4_t", [o.tangents for o in step(p4, v4, x, y)[0]]))
    times = bench_interleaved(fns, cfg["repeats"]) if fns else {}
    if "hyper" in cfg["only"] and cfg["T"] > 0:
        v0 = [np.zeros_like(a) for a in p]
        run = lambda steps=cfg["T"]: jvp(lambda lr: train(lr, p, v0, steps), (LR,), (1.0,))
        times["hyper"] = bench_hyper(run, cfg["T"], cfg["hyper_repeats"], warmup=lambda: run(3))
        if cfg["check"]:
            val, d = run()
            check.update({"hyper_val": np.asarray(val), "hyper_d": np.asarray(d)})
    return times, check


def _sgd_step(grad_loss, lr, mu, params, vel, x, y):
    g = grad_loss(params, x, y)
    vel = [mu * v + gi for v, gi in zip(vel, g)]
    return [p - lr * v for p, v in zip(params, vel)], vel


def run_autodiff_jit(prob, cfg):
    return run_autodiff(prob, cfg, use_jit=True)


# ============================================================================================
# numpy, by hand: the gradient and its tangent (the dual-number backprop) written out
# ============================================================================================
def np_grad(params, x, y):
    L = len(params) // 2
    acts, h = [x], x
    for i in range(L):
        z = h @ params[2 * i] + params[2 * i + 1]
        if i < L - 1:
            h = np.tanh(z)
            acts.append(h)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    g = (p - y) / x.shape[0]
    grads = [None] * len(params)
    for i in reversed(range(L)):
        a = acts[i]
        grads[2 * i] = a.T @ g
        grads[2 * i + 1] = g.sum(axis=0)
        if i > 0:
            g = (g @ params[2 * i].T) * (1.0 - a * a)
    return grads


def np_dual_forward(params, tparams, x):
    """Forward pass with K tangents: activations, their tangents, logits and tangent."""
    L = len(params) // 2
    K = tparams[0].shape[0]
    acts, tacts, h, th = [x], [None], x, None
    for i in range(L):
        W, b, tW, tb = params[2 * i], params[2 * i + 1], tparams[2 * i], tparams[2 * i + 1]
        m, n = W.shape
        z = h @ W + b
        tz = np.matmul(h, tW)                                   # (K, B, n): A @ dW
        tz += tb[:, None, :]
        if th is not None:
            tz += (th.reshape(K * x.shape[0], m) @ W).reshape(K, x.shape[0], n)   # dA @ W, one GEMM
        if i < L - 1:
            h = np.tanh(z)
            th = (1.0 - h * h) * tz
            acts.append(h)
            tacts.append(th)
    return acts, tacts, z, tz


def np_dual_grad(params, tparams, x, y):
    """The gradient and its K tangents (forward-over-reverse, by hand)."""
    L = len(params) // 2
    K = tparams[0].shape[0]
    B = x.shape[0]
    acts, tacts, z, tz = np_dual_forward(params, tparams, x)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    tp = p * (tz - np.sum(p * tz, axis=-1, keepdims=True))     # tangent of softmax
    g, tg = (p - y) / B, tp / B
    grads, tgrads = [None] * len(params), [None] * len(params)
    for i in reversed(range(L)):
        a, ta = acts[i], tacts[i]
        W, tW = params[2 * i], tparams[2 * i]
        m, n = W.shape
        grads[2 * i] = a.T @ g
        tgw = np.matmul(a.T, tg)                               # A^T dG
        if ta is not None:
            tgw += np.matmul(ta.transpose(0, 2, 1), g)         # dA^T G
        tgrads[2 * i] = tgw
        grads[2 * i + 1] = g.sum(axis=0)
        tgrads[2 * i + 1] = tg.sum(axis=1)
        if i > 0:
            ga = g @ W.T
            tga = (tg.reshape(K * B, n) @ W.T).reshape(K, B, m) + np.matmul(g, tW.transpose(0, 2, 1))
            d = 1.0 - a * a
            tg = tga * d - 2.0 * (ga * a) * ta
            g = ga * d
    return grads, tgrads


def np_loss(params, x, y):
    L = len(params) // 2
    h = x
    for i in range(L):
        z = h @ params[2 * i] + params[2 * i + 1]
        if i < L - 1:
            h = np.tanh(z)
    m = z.max(axis=1, keepdims=True)
    return np.mean(np.log(np.exp(z - m).sum(axis=1)) + m[:, 0] - np.sum(z * y, axis=1))


def np_dual_loss(params, tparams, x, y):
    _, _, z, tz = np_dual_forward(params, tparams, x)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    val = np.mean(np.log(s[:, 0]) + m[:, 0] - np.sum(z * y, axis=1))
    tval = np.mean(np.sum((e / s - y) * tz, axis=-1), axis=-1)   # (K,)
    return val, tval


def gemm_operands(sizes, k: int, dtype, batch: int = BATCH):
    """(a, b, out) for each GEMM of a step with k directions, K-merged (see module doc)."""
    rng = np.random.default_rng(1)
    r = lambda *s: rng.standard_normal(s).astype(dtype)
    ops = []

    def add(M, Kd, N):
        ops.append((r(M, Kd), r(Kd, N), np.empty((M, N), dtype)))

    B = batch
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        add(B, m, n)                          # forward X @ W
        add(m, B, n)                          # dW = X^T dZ
        if i > 0:
            add(B, n, m)                      # dX = dZ W^T
        if k:
            add(B, m, k * n)                  # X @ dW (all k at once)
            add(m, B, k * n)                  # X^T d(dZ)
            if i > 0:
                add(k * B, m, n)              # dX @ W
                add(k * m, B, n)              # dX^T dZ
                add(B, n, k * m)              # dZ dW^T
                add(k * B, n, m)              # d(dZ) W^T
    return ops


def run_numpy(prob, cfg):
    x, y = prob["x"], prob["y"]
    lr, mu = LR, MOMENTUM

    def step(params, vel):
        g = np_grad(params, x, y)
        vel = [mu * v + gi for v, gi in zip(vel, g)]
        return [p - lr * v for p, v in zip(params, vel)], vel

    def dual_step(params, tparams, vel, tvel, tlr=None):
        g, tg = np_dual_grad(params, tparams, x, y)
        vel2 = [mu * v + gi for v, gi in zip(vel, g)]
        tvel2 = [mu * tv + tgi for tv, tgi in zip(tvel, tg)]
        params2 = [p - lr * v for p, v in zip(params, vel2)]
        tparams2 = [tp - lr * tv for tp, tv in zip(tparams, tvel2)]
        if tlr is not None:                                # d/dlr of  p - lr*v  picks up -v
            tparams2 = [tp - tlr * v for tp, v in zip(tparams2, vel2)]
        return params2, tparams2, vel2, tvel2

    def hyper(steps):
        params, vel = prob["params"], [np.zeros_like(a) for a in prob["params"]]
        tparams = [np.zeros((1,) + a.shape, a.dtype) for a in params]
        tvel = [np.zeros((1,) + a.shape, a.dtype) for a in params]
        for _ in range(steps):
            params, tparams, vel, tvel = dual_step(params, tparams, vel, tvel, tlr=1.0)
        val, tval = np_dual_loss(params, tparams, x, y)
        return val, tval[0]

    p, v = prob["params"], prob["vel"]
    sizes = prob["sizes"]
    gemms = {k: gemm_operands(sizes, k, x.dtype) for k in (0, 1, 4)}

    def run_gemms(ops):
        def run():
            for a, b, out in ops:
                np.matmul(a, b, out=out)
        return run

    fns = {"plain": lambda: step(p, v),
           "k1": lambda: dual_step(p, prob["t1p"], v, prob["t1v"]),
           "k4": lambda: dual_step(p, prob["t4p"], v, prob["t4v"]),
           "gemm_plain": run_gemms(gemms[0]), "gemm_k1": run_gemms(gemms[1]),
           "gemm_k4": run_gemms(gemms[4])}
    keep = set(cfg["only"]) | {"gemm_" + w for w in cfg["only"] if w in STEP_WORKLOADS}
    fns = {k: f for k, f in fns.items() if k in keep}
    check = {}
    if cfg["check"]:
        check.update(_flat("plain_p", step(p, v)[0]))
        out = dual_step(p, prob["t1p"], v, prob["t1v"])
        check.update(_flat("k1_p", out[0]))
        check.update(_flat("k1_t", out[1]))
        check.update(_flat("k4_t", dual_step(p, prob["t4p"], v, prob["t4v"])[1]))
    times = bench_interleaved(fns, cfg["repeats"]) if fns else {}
    if "hyper" in cfg["only"] and cfg["T"] > 0:
        times["hyper"] = bench_hyper(lambda: hyper(cfg["T"]), cfg["T"], cfg["hyper_repeats"],
                                     warmup=lambda: hyper(3))
        if cfg["check"]:
            val, d = hyper(cfg["T"])
            check.update({"hyper_val": np.asarray(val), "hyper_d": np.asarray(d)})
    return times, check


# ============================================================================================
# JAX: jit of jvp-of-grad; vmap of it for K=4; jvp of a fori_loop for the hypergradient
# ============================================================================================
def run_jax(prob, cfg):
    import os

    n = int(os.environ.get("BENCH_THREADS") or 0)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if n and len(cpus) > n:     # XLA sizes its thread pools by the CPUs it may run on at start-up
        os.sched_setaffinity(0, cpus[:n])
    import jax

    jax.config.update("jax_enable_x64", True)   # float64 needs it; float32 inputs stay float32
    import jax.numpy as jnp
    from jax import lax

    lr, mu = LR, MOMENTUM
    put = lambda arrs: [jnp.asarray(a) for a in arrs]
    x, y = jnp.asarray(prob["x"]), jnp.asarray(prob["y"])
    jax.block_until_ready(jax.jit(lambda a: jnp.tanh(a @ a.T).sum())(x))   # start the CPU client and its pools
    if n and len(cpus) > n:
        os.sched_setaffinity(0, cpus)                                          # then run unpinned, like the others
    p, v = put(prob["params"]), put(prob["vel"])
    t1p, t1v = [a[0] for a in put(prob["t1p"])], [a[0] for a in put(prob["t1v"])]
    t4p, t4v = put(prob["t4p"]), put(prob["t4v"])

    def loss(params, x, y):
        h = x
        for i in range(0, len(params) - 2, 2):
            h = jnp.tanh(h @ params[i] + params[i + 1])
        logits = h @ params[-2] + params[-1]
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.sum(logits * y, axis=1))

    def step(params, vel, x, y, lr=lr):
        g = jax.grad(loss)(params, x, y)
        vel = [mu * a + b for a, b in zip(vel, g)]
        return [a - lr * b for a, b in zip(params, vel)], vel

    plain = jax.jit(step)
    k1 = jax.jit(lambda p, v, tp, tv, x, y: jax.jvp(lambda p, v: step(p, v, x, y), (p, v), (tp, tv)))
    k4 = jax.jit(jax.vmap(lambda p, v, tp, tv, x, y: jax.jvp(lambda p, v: step(p, v, x, y), (p, v), (tp, tv))[1],
                          in_axes=(None, None, 0, 0, None, None)))

    def train(lr, params, vel, x, y, steps):
        body = lambda _, c: step(c[0], c[1], x, y, lr)
        params, vel = lax.fori_loop(0, steps, body, (params, vel))
        return loss(params, x, y)

    dt = prob["x"].dtype

    def make_hyper(steps):
        f = jax.jit(lambda lr, p, v, x, y: jax.jvp(lambda l: train(l, p, v, x, y, steps), (lr,), (jnp.ones((), dt),)))
        return lambda: jax.block_until_ready(f(jnp.asarray(LR, dt), p, [jnp.zeros_like(a) for a in p], x, y))

    block = jax.block_until_ready
    fns = {"plain": lambda: block(plain(p, v, x, y)),
           "k1": lambda: block(k1(p, v, t1p, t1v, x, y)),
           "k4": lambda: block(k4(p, v, t4p, t4v, x, y))}
    fns = {k: f for k, f in fns.items() if k in cfg["only"]}
    check = {}
    if cfg["check"]:
        check.update(_flat("plain_p", plain(p, v, x, y)[0]))
        (pp, _), (tp, _) = k1(p, v, t1p, t1v, x, y)
        check.update(_flat("k1_p", pp))
        check.update(_flat("k1_t", [np.asarray(a)[None] for a in tp]))
        check.update(_flat("k4_t", k4(p, v, t4p, t4v, x, y)[0]))
    times = bench_interleaved(fns, cfg["repeats"]) if fns else {}
    if "hyper" in cfg["only"] and cfg["T"] > 0:
        run = make_hyper(cfg["T"])
        times["hyper"] = bench_hyper(run, cfg["T"], cfg["hyper_repeats"], warmup=run)  # warm-up compiles
        if cfg["check"]:
            val, d = run()
            check.update({"hyper_val": np.asarray(val), "hyper_d": np.asarray(d)})
    return times, check


# ============================================================================================
# PyTorch: torch.func.jvp over a step that uses torch.func.grad; vmap of it for K=4
# ============================================================================================
def run_torch(prob, cfg):
    import torch
    from torch.func import grad, jvp, vmap

    lr, mu = LR, MOMENTUM
    put = lambda arrs: tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrs)
    x, y = torch.from_numpy(prob["x"]), torch.from_numpy(prob["y"])
    p, v = put(prob["params"]), put(prob["vel"])
    t1p, t1v = tuple(a[0] for a in put(prob["t1p"])), tuple(a[0] for a in put(prob["t1v"]))
    t4p, t4v = put(prob["t4p"]), put(prob["t4v"])

    def loss(params, x, y):
        h = x
        for i in range(0, len(params) - 2, 2):
            h = torch.tanh(h @ params[i] + params[i + 1])
        logits = h @ params[-2] + params[-1]
        return torch.mean(torch.logsumexp(logits, dim=1) - torch.sum(logits * y, dim=1))

    def step(params, vel, lr=lr):
        g = grad(loss)(params, x, y)
        vel = tuple(mu * a + b for a, b in zip(vel, g))
        return tuple(a - lr * b for a, b in zip(params, vel)), vel

    def train(lr, steps):
        params, vel = p, tuple(torch.zeros_like(a) for a in p)
        for _ in range(steps):
            params, vel = step(params, vel, lr)
        return loss(params, x, y)

    k4 = vmap(lambda tp, tv: jvp(step, (p, v), (tp, tv))[1])
    fns = {"plain": lambda: step(p, v),
           "k1": lambda: jvp(step, (p, v), (t1p, t1v)),
           "k4": lambda: k4(t4p, t4v)}
    fns = {k: f for k, f in fns.items() if k in cfg["only"]}
    lr_t = torch.tensor(LR, dtype=x.dtype)
    one = torch.ones((), dtype=x.dtype)
    run = lambda steps=cfg["T"]: jvp(lambda l: train(l, steps), (lr_t,), (one,))
    check = {}
    if cfg["check"]:
        check.update(_flat("plain_p", [a.numpy() for a in step(p, v)[0]]))
        (pp, _), (tp, _) = jvp(step, (p, v), (t1p, t1v))
        check.update(_flat("k1_p", [a.numpy() for a in pp]))
        check.update(_flat("k1_t", [a.numpy()[None] for a in tp]))
        check.update(_flat("k4_t", [a.numpy() for a in k4(t4p, t4v)[0]]))
    times = bench_interleaved(fns, cfg["repeats"]) if fns else {}
    if "hyper" in cfg["only"] and cfg["T"] > 0:
        times["hyper"] = bench_hyper(run, cfg["T"], cfg["hyper_repeats"], warmup=lambda: run(3))
        if cfg["check"]:
            val, d = run()
            check.update({"hyper_val": val.numpy(), "hyper_d": d.numpy()})
    return times, check


RUNNERS = {"autodiff": run_autodiff, "autodiff-jit": run_autodiff_jit, "numpy": run_numpy,
           "jax": run_jax, "torch": run_torch}
IMPORT_NAMES = {"autodiff": "autodiff", "autodiff-jit": "autodiff", "numpy": "numpy", "jax": "jax",
                "torch": "torch"}


def library_version(lib: str) -> str:
    if lib == "jax":
        import jax
        return jax.__version__
    if lib == "torch":
        import torch
        return f"{torch.__version__} ({torch.get_num_threads()} threads)"
    if lib in ("autodiff", "autodiff-jit"):
        import autodiff
        return autodiff.__version__
    return np.__version__
