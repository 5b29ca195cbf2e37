"""hyperopt.optim: the published update equations, torch.optim, derivatives in
every hyperparameter, per-parameter hyperparameters, argument validation.

The reference sequences below are written from the equations with plain numpy
loops, one array at a time, independently of hyperopt.optim.
"""
import math

import numpy as np
import pytest

from autodiff import dual, grad, jvp
from hyperopt import optim
from hyperopt.optim import SGD, Adagrad, Adam, AdamW, RAdam, RMSprop

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

STEPS = 8  # RAdam with beta2 = 0.9 switches to the rectified step at t = 6


def _problem():
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((2, 3)), "b": rng.standard_normal(4)}
    scales = [1.0, 3.0, 0.2, 2.0, 0.1, 1.5, 0.05, 1.0]  # moments rise and fall (amsgrad's max matters)
    grads = [{k: s * rng.standard_normal(v.shape) for k, v in params.items()} for s in scales]
    grads[2]["b"][1] = 0.0  # an exact zero gradient entry
    return params, grads


# -- references from the equations ------------------------------------------------

def ref_sgd(p, gs, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    out, buf = [], None
    for g in gs:
        g = g + weight_decay * p
        if momentum != 0:
            buf = g if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p)
    return out


def ref_adam(p, gs, lr, betas, eps, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    m = v = vmax = np.zeros_like(p)
    out = []
    for t, g in enumerate(gs, 1):
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1 ** t)
        v_hat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def ref_adamw(p, gs, lr, betas, eps, weight_decay, amsgrad=False):
    return ref_adam(p, gs, lr, betas, eps, weight_decay, amsgrad, decoupled=True)


def ref_radam(p, gs, lr, betas, eps, weight_decay=0.0, degenerated_to_sgd=True):
    # Liu et al., Algorithm 2, with the reference code's eps and rho_t >= 5 test
    b1, b2 = betas
    m = v = np.zeros_like(p)
    rho_inf = 2 / (1 - b2) - 1
    out = []
    for t, g in enumerate(gs, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t >= 5:
            r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            l_t = math.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps)
            p = p - lr * weight_decay * p - lr * r_t * m_hat * l_t
        elif degenerated_to_sgd:
            p = p - lr * weight_decay * p - lr * m_hat
        out.append(p)
    return out


def ref_rmsprop(p, gs, lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False):
    v = a = buf = np.zeros_like(p)
    out = []
    for g in gs:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g ** 2
        if centered:
            a = alpha * a + (1 - alpha) * g
            denom = np.sqrt(v - a ** 2) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
        out.append(p)
    return out


def ref_adagrad(p, gs, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    s = np.full_like(p, initial_accumulator_value)
    out = []
    for t, g in enumerate(gs, 1):
        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g ** 2
        p = p - clr * g / (np.sqrt(s) + eps)
        out.append(p)
    return out


REFS = {"SGD": ref_sgd, "Adam": ref_adam, "AdamW": ref_adamw, "RAdam": ref_radam,
        "RMSprop": ref_rmsprop, "Adagrad": ref_adagrad}

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.0, dampening=0.5, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.02)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.02, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05, degenerated_to_sgd=False)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.7)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.7, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.2, eps=1e-8)),
    ("Adagrad", dict(lr=0.1)),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CONFIGS]


def _run_ours(opt, params, grads):
    state = opt.init(params)
    out = []
    for g in grads:
        params, state = opt.update(g, state, params)
        out.append(params)
    assert state.step == len(grads)
    return out


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_published_equations(name, kwargs):
    params, grads = _problem()
    ours = _run_ours(getattr(optim, name)(**kwargs), params, grads)
    for k in params:
        ref = REFS[name](params[k], [g[k] for g in grads], **kwargs)
        for t in range(STEPS):
            np.testing.assert_allclose(ours[t][k], ref[t], rtol=1e-12, atol=1e-14,
                                       err_msg=f"{k} step {t + 1}")


def test_radam_uses_both_branches():
    _, grads = _problem()
    b2 = 0.9
    rho = [2 / (1 - b2) - 1 - 2 * t * b2 ** t / (1 - b2 ** t) for t in range(1, STEPS + 1)]
    assert min(rho) < 5 <= max(rho)
    # with degenerated_to_sgd off, parameters do not move before rho_t >= 5
    params, grads = _problem()
    ours = _run_ours(RAdam(0.01, betas=(0.8, b2), degenerated_to_sgd=False), params, grads)
    first = next(t for t, r in enumerate(rho) if r >= 5)
    assert all(np.array_equal(ours[t]["w"], params["w"]) for t in range(first))
    assert not np.array_equal(ours[first]["w"], params["w"])


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch(name, kwargs):
    kwargs = dict(kwargs)
    if name == "RAdam":
        if not kwargs.pop("degenerated_to_sgd", True):
            pytest.skip("torch.optim.RAdam always falls back to the momentum step")
        kwargs["decoupled_weight_decay"] = True
    params, grads = _problem()
    ours = _run_ours(getattr(optim, name)(**{k: v for k, v in kwargs.items()
                                             if k != "decoupled_weight_decay"}), params, grads)
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    topt = getattr(torch.optim, name)(list(tp.values()), **kwargs)
    for t, g in enumerate(grads):
        for k, p in tp.items():
            p.grad = torch.tensor(g[k], dtype=torch.float64)
        topt.step()
        for k, p in tp.items():
            np.testing.assert_allclose(ours[t][k], p.detach().numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{k} step {t + 1}")


# -- derivatives in every continuous hyperparameter -------------------------------------

DIFF_CONFIGS = [
    SGD(0.1, momentum=0.9, dampening=0.2, weight_decay=0.05),
    SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
    Adam(0.05, betas=(0.8, 0.95), eps=1e-2, weight_decay=0.05),
    Adam(0.05, betas=(0.8, 0.95), eps=1e-2, weight_decay=0.05, amsgrad=True),
    AdamW(0.05, betas=(0.8, 0.95), eps=1e-2, weight_decay=0.05, amsgrad=True),
    RAdam(0.05, betas=(0.8, 0.9), eps=1e-2, weight_decay=0.05),
    RAdam(0.05, betas=(0.8, 0.9), eps=1e-2, weight_decay=0.05, degenerated_to_sgd=False),
    RMSprop(0.02, alpha=0.9, eps=1e-2, momentum=0.5, weight_decay=0.05),
    RMSprop(0.02, alpha=0.9, eps=1e-2, momentum=0.5, centered=True, weight_decay=0.05),
    Adagrad(0.1, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-2),
]
DIFF_CASES = [(opt, k) for opt in DIFF_CONFIGS for k in opt.defaults]

_RNG = np.random.default_rng(1)
P0 = {"w": _RNG.standard_normal((2, 3)), "b": _RNG.standard_normal(3),
      "z": _RNG.standard_normal(2)}  # "z" is not in the loss: its gradient is exactly 0
A = _RNG.standard_normal((3, 3))
COT = {k: _RNG.standard_normal(v.shape) for k, v in P0.items()}


def loss(p):
    h = np.tanh(p["w"] @ A + p["b"])
    return np.sum(h ** 2) + 0.5 * np.sum(p["w"] ** 2) + np.sum(np.sin(p["b"]))


def unroll(opt, hparams, T):
    params, state = P0, opt.init(P0)
    for _ in range(T):
        params, state = opt.update(grad(loss)(params), state, params, hparams)
    return params


def _horizon(opt):
    return 7 if isinstance(opt, RAdam) else 5  # RAdam's rectified step starts at t = 6


@pytest.mark.parametrize("opt,name", DIFF_CASES,
                         ids=[f"{o.describe()}-{k}-{i}" for i, (o, k) in enumerate(DIFF_CASES)])
def test_hypergradient_forward_fd_reverse(opt, name):
    x0, T = opt.defaults[name], _horizon(opt)
    _, tangent = jvp(lambda x: unroll(opt, {name: x}, T), (x0,), (1.0,))
    h = 1e-5 * (min(x0, 1 - x0) if opt.constraints[name] == "unit_closed_open" else x0)
    h = h or 1e-5  # a hyperparameter at 0 (dampening under nesterov)
    up, down = unroll(opt, {name: x0 + h}, T), unroll(opt, {name: x0 - h}, T)
    for k in P0:
        assert np.all(np.isfinite(tangent[k])), k
        fd = (up[k] - down[k]) / (2 * h)
        scale = np.max(np.abs(fd)) + 1e-300
        np.testing.assert_allclose(tangent[k], fd, rtol=1e-6, atol=1e-7 * scale, err_msg=k)
    assert np.max(np.abs(tangent["w"])) > 0
    # reverse mode over the same unrolled run (reverse-over-reverse through each step's grad)
    scalar = lambda x: sum(np.sum(COT[k] * v) for k, v in unroll(opt, {name: x}, T).items())
    rev = grad(scalar)(x0)
    fwd = sum(np.sum(COT[k] * tangent[k]) for k in P0)
    np.testing.assert_allclose(rev, fwd, rtol=1e-10, atol=1e-14)


def test_zero_gradient_leaf_keeps_hypergradients_finite():
    # a weight with an always-zero gradient has v == 0; its sqrt must not give nan tangents
    for opt in [Adam(0.05), AdamW(0.05), RMSprop(0.02, centered=True), Adagrad(0.1),
                RAdam(0.05, betas=(0.8, 0.9))]:
        _, t = jvp(lambda lr: unroll(opt, {"lr": lr}, 7), (opt.defaults["lr"],), (1.0,))
        assert all(np.all(np.isfinite(v)) for v in t.values()), opt
        rev = grad(lambda lr: np.sum(unroll(opt, {"lr": lr}, 3)["z"]))(opt.defaults["lr"])
        assert np.isfinite(rev), opt


# -- per-parameter hyperparameters -------------------------------------------------------

def test_per_parameter_lr_pytree():
    params, grads = _problem()
    lr = {"w": 0.1, "b": np.array([0.05, 0.1, 0.2, 0.4])}
    ours = _run_ours(SGD(lr, momentum=0.9), params, grads)
    for k in params:
        ref = ref_sgd(params[k], [g[k] for g in grads], lr=lr[k], momentum=0.9)
        np.testing.assert_allclose(ours[-1][k], ref[-1], rtol=1e-12)
    # and as an override, with a tangent on one leaf's lr array only
    opt = Adam(0.05)
    lr_tree = {"w": 0.05, "b": np.array([0.01, 0.02, 0.03]), "z": 0.05}
    v = {"w": 0.0, "b": np.array([0.0, 1.0, 0.0]), "z": 0.0}
    _, t = jvp(lambda l: unroll(opt, {"lr": l}, 4), (lr_tree,), (v,))
    h = 1e-6
    bump = lambda s: {**lr_tree, "b": lr_tree["b"] + s * h * v["b"]}
    fd = (unroll(opt, {"lr": bump(1)}, 4)["b"] - unroll(opt, {"lr": bump(-1)}, 4)["b"]) / (2 * h)
    np.testing.assert_allclose(t["b"], fd, rtol=1e-6, atol=1e-12)
    assert t["b"][1] != 0
    # one step: only the perturbed element moves
    _, t1 = jvp(lambda l: unroll(opt, {"lr": l}, 1), (lr_tree,), (v,))
    assert t1["b"][1] != 0 and t1["b"][0] == t1["b"][2] == 0 and np.all(t1["w"] == 0)


def test_per_parameter_radam_beta2_mixes_branches():
    # beta2 per element: at t = 6 one element is still un-adapted, the others rectified
    params, grads = _problem()
    params = {"b": params["b"][:3]}
    grads = [{"b": g["b"][:3]} for g in grads]
    b2 = np.array([0.8, 0.9, 0.999])
    opt = RAdam(0.01, betas=(0.8, 0.9), weight_decay=0.05)
    state, p = opt.init(params), params
    for g in grads:
        p, state = opt.update(g, state, p, {"beta2": {"b": b2}})
    for i in range(3):
        ref = ref_radam(params["b"][i:i + 1], [g["b"][i:i + 1] for g in grads], 0.01, (0.8, b2[i]),
                        1e-8, 0.05)
        np.testing.assert_allclose(p["b"][i], ref[-1][0], rtol=1e-12)
    # derivatives through the elementwise branch, both modes, all finite
    f = lambda beta2: np.sum(unroll_b(opt, grads, params, beta2) * np.array([1.0, 2.0, 3.0]))
    g_rev = grad(f)(b2)
    _, g_fwd = jvp(f, (b2,), (np.array([1.0, 1.0, 1.0]),))
    assert np.all(np.isfinite(g_rev))
    np.testing.assert_allclose(np.sum(g_rev), g_fwd, rtol=1e-10)


def unroll_b(opt, grads, params, beta2):
    state, p = opt.init(params), params
    for g in grads:
        p, state = opt.update(g, state, p, {"beta2": {"b": beta2}})
    return p["b"]


def test_hparams_override_and_unknown_names():
    params, grads = _problem()
    opt = SGD(0.1, momentum=0.9)
    a = opt.update(grads[0], opt.init(params), params, {"lr": 0.2})[0]
    b = SGD(0.2, momentum=0.9).update(grads[0], opt.init(params), params)[0]
    np.testing.assert_array_equal(a["w"], b["w"])
    with pytest.raises(ValueError, match="'beta1'"):
        opt.update(grads[0], opt.init(params), params, {"beta1": 0.5})
    with pytest.raises(ValueError, match="structure"):
        opt.update(grads[0], opt.init(params), params, {"lr": {"w": 0.1}})


def test_dual_hyperparameter_by_hand_and_python_float_step():
    params, grads = _problem()
    opt = RMSprop(0.01, momentum=0.5)
    p, s = opt.update(grads[0], opt.init(params), params, {"lr": dual(0.01, 1.0)})
    assert isinstance(s.step, int) and s.step == 1
    np.testing.assert_allclose(p["w"].tangent, -grads[0]["w"] / (np.sqrt(0.01 * grads[0]["w"] ** 2) + 1e-8))


def test_float32_stays_float32():
    params = {"w": np.ones(3, np.float32)}
    g = {"w": np.full(3, 0.5, np.float32)}
    for opt in [SGD(0.1, momentum=0.9), Adam(), AdamW(), RAdam(), RMSprop(centered=True), Adagrad()]:
        state, p = opt.init(params), params
        for _ in range(7):
            p, state = opt.update(g, state, p)
        assert p["w"].dtype == np.float32, opt


FLOAT32_OPTIMIZERS = [lambda: SGD(0.1, momentum=0.9, dampening=0.2, weight_decay=1e-3),
                      lambda: SGD(0.1, momentum=0.9, nesterov=True), lambda: Adam(),
                      lambda: AdamW(amsgrad=True), lambda: RAdam(),
                      lambda: RAdam(degenerated_to_sgd=False), lambda: RMSprop(centered=True),
                      lambda: Adagrad(lr_decay=0.1)]


@pytest.mark.parametrize("make", FLOAT32_OPTIMIZERS,
                         ids=["sgd", "sgd-nesterov", "adam", "adamw-amsgrad", "radam",
                              "radam-no-sgd", "rmsprop-centered", "adagrad"])
def test_float32_stays_float32_with_an_array_step_and_float64_hyperparameters(make):
    """Under NEP 50 a 0-d float64 array is strongly typed: an int-array step counter
    (what hypergrad.Setup passes, for jit) makes bias corrections 0-d float64, and
    a hyperparameter may be one.  The update casts them to the parameters' dtype."""
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4)).astype(np.float32)}
    grads = [{"w": rng.standard_normal((3, 4)).astype(np.float32)} for _ in range(7)]
    opt = make()
    h64 = {k: np.asarray(v, dtype=np.float64) for k, v in opt.defaults.items()}
    state = opt.init(params)
    p, s = params, state._replace(step=np.asarray(0))
    p_ref, s_ref = params, state
    for g in grads:
        p, s = opt.update(g, s, p, h64)
        p_ref, s_ref = opt.update(g, s_ref, p_ref)  # Python int step, Python floats
    for x in [p["w"]] + [b["w"] for b in s[1:] if b is not None]:
        assert x.dtype == np.float32, opt
    assert isinstance(s.step, (np.ndarray, np.integer)) and s.step == 7
    np.testing.assert_allclose(p["w"], p_ref["w"], rtol=1e-5, atol=1e-7)
    # a Dual of a float64 value: cast differentiably, tangents float32 too
    p_d, _ = opt.update(grads[0], state._replace(step=np.asarray(10)), params,
                        {**h64, "lr": dual(h64["lr"], 1.0)})
    assert p_d["w"].primal.dtype == np.float32 and p_d["w"].tangents.dtype == np.float32
    # float64 parameters are not narrowed by float32 hyperparameters
    p64 = {"w": params["w"].astype(np.float64)}
    out, _ = opt.update({"w": grads[0]["w"].astype(np.float64)},
                        opt.init(p64)._replace(step=np.asarray(0)), p64,
                        {k: np.float32(v) for k, v in opt.defaults.items()})
    assert out["w"].dtype == np.float64


def test_keep_dtype_and_to_dtype():
    x32 = np.ones(3, np.float32)
    assert optim.keep_dtype(0.5, x32) == 0.5 and type(optim.keep_dtype(0.5, x32)) is float
    assert optim.keep_dtype(np.float64(0.5), x32).dtype == np.float32
    assert optim.keep_dtype(np.asarray(3), x32).dtype == np.float32   # an int array too
    assert optim.keep_dtype(np.asarray(True), x32).dtype == bool       # does not promote
    assert optim.keep_dtype(np.float32(0.5), np.ones(3)).dtype == np.float32
    y = np.asarray(0.5)
    assert optim.keep_dtype(y, np.ones(3)) is y and optim.to_dtype(y, np.float64) is y
    d = optim.to_dtype(dual(np.asarray(0.5), np.ones(2)), np.float32)
    assert d.primal.dtype == np.float32 and d.tangents.dtype == np.float32
    assert optim.to_dtype("name", np.float32) == "name"


# -- names and validation ------------------------------------------------------------

def test_repr_describe_and_constraints():
    assert repr(SGD(lr=0.1, momentum=0.9)) == "SGD(lr=0.1, momentum=0.9)"
    assert repr(Adam()) == "Adam(lr=0.001)"
    assert repr(Adam(betas=(0.5, 0.9), amsgrad=True)) == "Adam(lr=0.001, betas=(0.5, 0.9), amsgrad=True)"
    assert repr(AdamW(weight_decay=0.1)) == "AdamW(lr=0.001, weight_decay=0.1)"
    tower = Adam(optimizer=SGD(1e-5))
    assert tower.optimizer is not None and tower.describe() == "adam / sgd"
    assert repr(tower) == "Adam(lr=0.001, optimizer=SGD(lr=1e-05))"
    for cls in [SGD, Adam, AdamW, RAdam, RMSprop, Adagrad]:
        opt = cls()
        assert opt.describe() == cls.__name__.lower() and opt.optimizer is None
        assert set(opt.constraints) == set(opt.defaults)
        assert set(opt.constraints.values()) <= set(optim.CONSTRAINTS)
    assert Adam(betas=(0.8, 0.9)).defaults == {"lr": 1e-3, "beta1": 0.8, "beta2": 0.9, "eps": 1e-8,
                                               "weight_decay": 0.0}


BAD = [
    (lambda: SGD(lr=-0.1), "lr"),
    (lambda: SGD(0.1, momentum=-0.5), "momentum"),
    (lambda: SGD(0.1, weight_decay=-1e-4), "weight_decay"),
    (lambda: SGD(0.1, momentum=0.0, nesterov=True), "nesterov"),
    (lambda: SGD(float("nan")), "lr"),
    (lambda: Adam(lr=-1e-3), "lr"),
    (lambda: Adam(eps=-1e-8), "eps"),
    (lambda: Adam(betas=(1.0, 0.999)), "betas"),
    (lambda: Adam(betas=(0.9, -0.1)), "betas"),
    (lambda: Adam(betas=(0.9, float("nan"))), "betas"),
    (lambda: Adam(weight_decay=float("inf")), "weight_decay"),
    (lambda: AdamW(weight_decay=-0.01), "weight_decay"),
    (lambda: RAdam(betas=(0.9, 1.5)), "betas"),
    (lambda: RAdam(eps=float("nan")), "eps"),
    (lambda: RMSprop(lr=-0.01), "lr"),
    (lambda: RMSprop(alpha=-0.5), "alpha"),
    (lambda: RMSprop(momentum=-0.1), "momentum"),
    (lambda: RMSprop(eps=-1.0), "eps"),
    (lambda: Adagrad(lr_decay=-0.1), "lr_decay"),
    (lambda: Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: Adagrad(weight_decay=-1.0), "weight_decay"),
    (lambda: SGD({"w": 0.1, "b": -0.1}), "lr"),
]


@pytest.mark.parametrize("make,arg", BAD, ids=[f"{i}-{a}" for i, (_, a) in enumerate(BAD)])
def test_bad_arguments_raise_naming_the_argument(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_bad_argument_message():
    with pytest.raises(ValueError, match=r"lr must be >= 0, got -0\.1"):
        SGD(lr=-0.1)
    with pytest.raises(ValueError, match=r"betas\[0\] must be in \[0, 1\), got 1\.0"):
        Adam(betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="eps must be finite, got nan"):
        Adam(eps=float("nan"))
