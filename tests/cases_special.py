"""Sweep cases of the scipy.special family (autodiff/families/special.py).

Inputs stay inside each function's domain and away from its kinks (i0e and
i1e at 0) and poles (gamma at 0, -1, ...), so central differences are valid.
Nothing is added when scipy is missing (the family then registers nothing).
"""
from __future__ import annotations

import numpy as np

SHAPES = [(), (2,), (3, 2), (1, 2)]


def add_cases(case, comp, makers):
    try:
        import scipy.special as sc
    except ImportError:
        return
    from autodiff.families import special as S

    normal, uniform, positive, unit = makers["normal"], makers["uniform"], makers["positive"], makers["unit"]
    away0, fixed, sid = makers["away0"], makers["fixed"], makers["sid"]

    def neg_noninteger(shape):  # in (-3, 0), at least 0.2 from the poles of gamma
        def make():
            return -np.random.randint(0, 3, shape) - np.random.uniform(0.2, 0.8, shape)
        return make

    unary = {  # primitive: (scipy ufunc, inputs)
        "gammaln": (sc.gammaln, lambda s: uniform(s, 0.3, 6.0)),
        "gamma": (sc.gamma, lambda s: uniform(s, 0.3, 4.0)),
        "erf": (sc.erf, normal),
        "erfc": (sc.erfc, normal),
        "erfinv": (sc.erfinv, unit),
        "i0e": (sc.i0e, lambda s: away0(s, 0.2, 4.0)),
        "i1e": (sc.i1e, lambda s: away0(s, 0.2, 4.0)),
    }
    for name, (fn, gen) in unary.items():
        for s in SHAPES:
            case(name, sid(s), fn, gen(s))
        case(name, "bcast1x2*3x2", lambda x, y, fn=fn: fn(x) * y, gen((1, 2)), normal((3, 2)))
        case(name, "direct", getattr(S, name), gen((3, 2)))
    case("gammaln", "negative-noninteger", sc.gammaln, neg_noninteger((3, 2)))
    case("gammaln", "python-float", sc.gammaln, 2.7)
    case("gamma", "negative-noninteger", sc.gamma, neg_noninteger((3, 2)))
    case("erf", "python-float", sc.erf, -0.4)
    case("erfc", "tail", sc.erfc, lambda: np.array([2.5, 3.0, 4.0]) + np.random.uniform(0, 0.1, 3))
    case("erfinv", "near-one", sc.erfinv, lambda: np.array([-0.99, 0.97, 0.995]))
    case("i1e", "small", sc.i1e, fixed([-0.05, 0.03, 1e-3]))
    case("i0e", "large", sc.i0e, fixed([-30.0, 12.0, 50.0]))

    # polygamma (digamma is order 0): through scipy.special.psi / digamma and directly
    for s in SHAPES:
        case("polygamma", f"digamma-{sid(s)}", sc.digamma, positive(s))
    case("polygamma", "psi-bcast1x2*3x2", lambda x, y: sc.psi(x) * y, positive((1, 2)), normal((3, 2)))
    case("polygamma", "digamma-negative", sc.psi, neg_noninteger((3, 2)))
    case("polygamma", "digamma-python-float", sc.psi, 1.7)
    for n in (1, 2, 3):
        for s in [(), (3, 2)]:
            case("polygamma", f"n{n}-{sid(s)}", lambda x, n=n: S.polygamma(n, x), positive(s))
        # the primitive itself keeps float32 (the numpy-style function follows scipy: float64)
        case("polygamma", f"primitive-n{n}", lambda x, n=n: S.polygamma_p(x, n=n), positive((3, 2)))
    case("polygamma", "n1-negative", lambda x: S.polygamma(1, x), neg_noninteger((3, 2)))
    case("polygamma", "order-array", lambda x: S.polygamma(np.array([[0], [1], [2]]), x), positive((1, 2)))
    case("polygamma", "order-list-0d-x", lambda x: S.polygamma([3, 0], x), positive(()))

    # composites: expit, logit, xlogy, xlog1py
    for s in SHAPES:
        comp(f"expit-{sid(s)}", sc.expit, normal(s))
        comp(f"logit-{sid(s)}", sc.logit, lambda s=s: uniform(s, 0.05, 0.95)())
    comp("expit-tails", sc.expit, fixed([-1000.0, -40.0, -0.3, 0.0, 0.3, 40.0, 1000.0]))
    comp("expit-direct", S.expit, normal((3, 2)))
    comp("logit-middle", sc.logit, fixed([0.3, 0.45, 0.5, 0.55, 0.65]))
    comp("logit-edges", sc.logit, fixed([0.01, 0.29, 0.66, 0.99]))
    comp("logit(expit)", lambda x: sc.logit(sc.expit(x)), normal((3, 2)))
    pairs = [((), ()), ((2,), (2,)), ((3, 2), (3, 2)), ((3, 2), (1, 2)), ((1, 2), (3, 2)),
             ((2,), (3, 2)), ((), (3, 2))]
    for sx, sy in pairs:
        comp(f"xlogy-{sid(sx)},{sid(sy)}", sc.xlogy, normal(sx), positive(sy))
        comp(f"xlog1py-{sid(sx)},{sid(sy)}", sc.xlog1py, normal(sx), uniform(sy, -0.5, 2.0))
    # x == 0 exactly: d/dx = log(y), d/dy = 0 (smooth there: x log y is linear in x)
    comp("xlogy-x-zero", sc.xlogy, fixed([0.0, 0.0, 1.5, 0.0]), positive((4,)))
    comp("xlog1py-x-zero", sc.xlog1py, fixed([0.0, -0.5, 0.0]), uniform((3,), -0.5, 2.0))
    comp("xlogy-python-scalars", lambda x, y: sc.xlogy(x, 2.5) + sc.xlogy(0.5, y), normal((3, 2)), positive((2,)))
    comp("xlog1py-python-scalars", lambda x, y: sc.xlog1py(x, 0.5) + sc.xlog1py(2.0, y), normal((2,)),
         positive((3, 2)))
    comp("xlogy-direct", S.xlogy, normal((3, 2)), positive((3, 2)))
    comp("xlogy-entropy", lambda p: -np.sum(sc.xlogy(p, p)), uniform((4,), 0.05, 1.0))
    comp("gammaln-digamma-chain", lambda x: sc.gammaln(sc.expit(x) + 1.0) * sc.erf(x), normal((3, 2)))
