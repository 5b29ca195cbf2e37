# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Reverse mode: a tape, swept backward
#
# Forward mode (notebook 01) pushes one derivative direction *through* the
# computation: a gradient of a function of n inputs needs n passes (or K = n
# tangents). Reverse mode gets the whole gradient of a scalar in **one
# backward sweep**, at the price of remembering the computation:
#
# 1. run the function, recording every operation and its inputs on a **tape**;
# 2. walk the tape backward from the output, applying the chain rule:
#    each value's adjoint $\bar v = \partial L / \partial v$ is the sum over the
#    operations that used $v$ of (their adjoint) × (local derivative).
#
# In this notebook: a scalar tape from scratch (the size of Karpathy's
# micrograd), then the library's `grad`, `value_and_grad` and `vjp`, then how to
# *check* gradients: reverse vs forward vs finite differences, `check_grads`,
# and why finite differences are only good to about half the digits.

# %%
import math

import numpy as np
import matplotlib.pyplot as plt

# %% [markdown]
# ## 1. A tape from scratch
#
# Each `Value` remembers its parents together with the local derivative
# $\partial(\text{this})/\partial(\text{parent})$, computed while the forward
# value is computed. `backward` orders the graph so that every value comes after
# its parents (a topological sort: that ordering *is* the tape), then sweeps it
# in reverse, so a value's adjoint is complete before it is passed on.

# %%
class Value:
    """A scalar on the tape: value, parents with local derivatives, adjoint."""

    def __init__(self, data, parents=(), op=""):
        self.data, self.parents, self.op, self.grad = data, parents, op, 0.0

    def __add__(self, other):
        o = as_value(other)
        return Value(self.data + o.data, ((self, 1.0), (o, 1.0)), "+")

    def __mul__(self, other):
        o = as_value(other)
        return Value(self.data * o.data, ((self, o.data), (o, self.data)), "*")

    def __pow__(self, n):  # n: a plain number
        return Value(self.data**n, ((self, n * self.data ** (n - 1)),), f"**{n}")

    __radd__, __rmul__ = __add__, __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-as_value(other))

    def __rsub__(self, other):
        return as_value(other) + (-self)

    def __truediv__(self, other):
        return self * as_value(other) ** -1

    def __repr__(self):
        return f"Value({self.op or 'input'}: data={self.data:.4g}, grad={self.grad:.4g})"


def as_value(x):
    return x if isinstance(x, Value) else Value(float(x))


def tanh(x):
    t = math.tanh(x.data)
    return Value(t, ((x, 1 - t * t),), "tanh")


def exp(x):
    e = math.exp(x.data)
    return Value(e, ((x, e),), "exp")


def backward(out):
    """Fill in .grad = d out / d v for every v the output depends on."""
    order, seen = [], set()

    def visit(v):  # depth first: parents are appended before their children
        if v not in seen:
            seen.add(v)
            for parent, _ in v.parents:
                visit(parent)
            order.append(v)

    visit(out)
    for v in order:
        v.grad = 0.0
    out.grad = 1.0
    for v in reversed(order):  # the backward sweep
        for parent, local in v.parents:
            parent.grad += local * v.grad  # += : a value used twice gets both contributions
    return order


# %% [markdown]
# A single neuron with a squared-error loss,
# $L = (\tanh(w_1x_1 + w_2x_2 + b) - t)^2$, and its gradient by hand:
# with $o = \tanh(u)$, $\;\partial L/\partial w_i = 2(o - t)(1 - o^2)\,x_i$ and
# $\partial L/\partial b = 2(o - t)(1 - o^2)$.

# %%
x1, x2, t = 0.5, -1.5, 0.25
w1, w2, b = Value(0.8), Value(-0.3), Value(0.1)
o = tanh(w1 * x1 + w2 * x2 + b)
L = (o - t) ** 2
tape = backward(L)

for v in tape:
    print(v)

common = 2 * (o.data - t) * (1 - o.data**2)
by_hand = {"w1": common * x1, "w2": common * x2, "b": common}
print("by hand:", by_hand)
assert len(tape) == 15
assert np.allclose([w1.grad, w2.grad, b.grad], list(by_hand.values()), rtol=1e-14)

# %% [markdown]
# The tape has 15 entries (constants such as $t$ and the $-1$ of the subtraction
# show up as inputs too), and one backward sweep filled in the
# adjoint of *every* input. Why the `+=`: in $f(x) = x\cdot x + e^x$ the value
# $x$ feeds three operations, and its adjoint is the sum of the three
# contributions, $f'(x) = 2x + e^x$.

# %%
x = Value(1.5)
fx = x * x + exp(x)
backward(fx)
assert math.isclose(x.grad, 2 * 1.5 + math.exp(1.5), rel_tol=1e-14)

# and against a central finite difference, which knows nothing about tapes
h = 1e-6
f_plain = lambda s: s * s + math.exp(s)
fd = (f_plain(1.5 + h) - f_plain(1.5 - h)) / (2 * h)
print(f"tape: {x.grad:.12f}   finite difference: {fd:.12f}")
assert math.isclose(x.grad, fd, rel_tol=1e-8)

# %% [markdown]
# ## 2. The library's tape: `grad`, `value_and_grad`, `vjp`
#
# `autodiff` does the same thing for numpy arrays: every numpy call on a
# traced value is recorded as one node, and each primitive (matmul, exp, sum,
# ...) has a **vector-Jacobian product** rule instead of a scalar local
# derivative. You write plain numpy.
#
# L2-regularized logistic regression, whose gradient is known in closed form:
#
# $$L(w) = \frac1n\sum_i \log\!\big(1 + e^{-y_i x_i^\top w}\big) + \frac{\lambda}{2}\lVert w\rVert^2,
# \qquad \nabla L = -\frac1n X^\top\big(y \odot \sigma(-y \odot Xw)\big) + \lambda w .$$

# %%
from autodiff import check_grads, grad, jacfwd, jvp, stop_gradient, value_and_grad, vjp

rng = np.random.default_rng(0)
n, d, lam = 50, 4, 0.1
X = rng.standard_normal((n, d))
y = np.sign(X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n))
w = rng.standard_normal(d)


def logistic_loss(w):
    margins = y * (X @ w)
    return np.mean(np.log1p(np.exp(-margins))) + 0.5 * lam * np.sum(w**2)


def logistic_grad_by_hand(w):
    sigma = 1 / (1 + np.exp(y * (X @ w)))  # σ(-margin)
    return -X.T @ (y * sigma) / n + lam * w


value, g = value_and_grad(logistic_loss)(w)
print("loss", value, "\ngrad", g)
assert np.isclose(value, logistic_loss(w), rtol=1e-15)
assert np.allclose(g, logistic_grad_by_hand(w), rtol=1e-12, atol=1e-14)
assert np.allclose(grad(logistic_loss)(w), g, rtol=0, atol=0)

# %% [markdown]
# `grad` needs a scalar output. For a function with an array output, `vjp`
# returns the output and a function that maps a **cotangent** $u$ (shaped
# like the output) to $u^\top J$ for each input, reusing one recorded tape:
# for $H = \tanh(XW)$, $\;\bar W = X^\top\big(u \odot (1 - H^2)\big)$ and
# $\bar X = \big(u \odot (1 - H^2)\big) W^\top$.

# %%
W = rng.standard_normal((d, 3))
H, pullback = vjp(lambda X, W: np.tanh(X @ W), X, W)
u = rng.standard_normal(H.shape)
X_bar, W_bar = pullback(u)
assert np.allclose(W_bar, X.T @ (u * (1 - H**2)), rtol=1e-12)
assert np.allclose(X_bar, (u * (1 - H**2)) @ W.T, rtol=1e-12)

u2 = rng.standard_normal(H.shape)  # the same tape, swept again with another cotangent
assert np.allclose(pullback(u2)[1], X.T @ (u2 * (1 - H**2)), rtol=1e-12)

# %% [markdown]
# ## 3. Checking gradients three ways
#
# A gradient can be computed by three methods that share nothing but the
# function itself:
#
# * **reverse**: one backward sweep (`grad`);
# * **forward**: n tangent directions pushed through (`jacfwd`, notebook 01);
# * **central finite differences**: $\big(f(x + h e_i) - f(x - h e_i)\big)/2h$,
#   in float64, knowing nothing about derivative rules.
#
# Forward and reverse should agree to rounding error; finite differences only
# to about $10^{-8}$ relative (section 4 explains). We try several random inputs.

# %%
def f(x):
    return np.sum(np.tanh(x) * np.cumsum(x**2)) + np.log(np.sum(np.exp(x)))


def central_differences(f, x, h=1e-6):
    out = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


print(f"{'input':>6} {'|rev - fwd|':>12} {'|rev - fd|':>12}")
for trial in range(5):
    x = rng.standard_normal(6)
    g_rev = grad(f)(x)
    g_fwd = jacfwd(f)(x)
    g_fd = central_differences(f, x)
    print(f"{trial:6d} {np.max(np.abs(g_rev - g_fwd)):12.1e} {np.max(np.abs(g_rev - g_fd)):12.1e}")
    assert np.allclose(g_rev, g_fwd, rtol=1e-12, atol=1e-13)
    assert np.allclose(g_rev, g_fd, rtol=1e-7, atol=1e-8)

# %% [markdown]
# `check_grads` packages this test for any function and input shapes: a random
# direction $v$ and cotangent $u$; forward mode against central differences;
# reverse mode by the dot-product test $\langle u, Jv\rangle = \langle J^\top u, v\rangle$;
# with `order=2` the same again on the derivatives themselves. It returns
# nothing when everything agrees and raises `AssertionError` otherwise.

# %%
x = rng.standard_normal(6)
check_grads(f, (x,), order=2)
check_grads(lambda X, W: np.tanh(X @ W), (X, W), order=2)
print("check_grads passed")

# %% [markdown]
# A checker is only worth something if it can fail. `stop_gradient` makes its
# argument a constant for differentiation, so `x * stop_gradient(x)` has the
# value $x^2$ but "derivative" $x$. Forward and reverse mode agree with each
# other on that wrong answer; finite differences, which only see values, do not:

# %%
wrong = lambda x: np.sum(x * stop_gradient(x))
assert np.allclose(grad(wrong)(x), x)  # not 2x
try:
    check_grads(wrong, (x,))
except AssertionError as err:
    print("caught:", str(err).splitlines()[0])
else:
    raise RuntimeError("check_grads should have rejected the wrong derivative")

# %% [markdown]
# ## 4. How good are finite differences? Truncation vs round-off
#
# For $f(x) = e^{\sin x}$ at $x_0 = 0.7$ the exact derivative is
# $\cos x_0\, e^{\sin x_0}$. Two errors pull in opposite directions as the step
# $h$ shrinks:
#
# * **truncation**: the Taylor terms a difference quotient ignores, $\sim h$
#   for the forward difference $\big(f(x+h) - f(x)\big)/h$ and $\sim h^2$ for
#   the central one;
# * **round-off**: $f$ is only known to about $\epsilon \approx 2.2\times10^{-16}$
#   relative, and dividing by $h$ magnifies that: $\sim \epsilon/h$.
#
# The sum is smallest near $h \approx \sqrt\epsilon \approx 10^{-8}$ (forward) and
# $h \approx \epsilon^{1/3} \approx 6\times10^{-6}$ (central), and no step gets
# all 16 digits. Automatic differentiation has no step at all.

# %%
fe = lambda x: np.exp(np.sin(x))
x0 = 0.7
exact = np.cos(x0) * np.exp(np.sin(x0))
assert np.isclose(grad(fe)(x0), exact, rtol=1e-15)  # autodiff: exact to rounding

hs = np.logspace(-16, 0, 81)
err_forward = np.abs((fe(x0 + hs) - fe(x0)) / hs - exact)
err_central = np.abs((fe(x0 + hs) - fe(x0 - hs)) / (2 * hs) - exact)
err_forward[err_forward == 0] = np.nan  # an exact hit by luck: nothing to draw on a log axis
err_central[err_central == 0] = np.nan

best_f, best_c = np.nanargmin(err_forward), np.nanargmin(err_central)
print(f"forward: best h = {hs[best_f]:.1e}, error {err_forward[best_f]:.1e}")
print(f"central: best h = {hs[best_c]:.1e}, error {err_central[best_c]:.1e}")
print(f"autodiff error: {abs(grad(fe)(x0) - exact):.1e}")

# %%
eps = np.finfo(float).eps
fig, ax = plt.subplots(figsize=(7, 4.2))
ax.loglog(hs, err_forward, "o-", ms=3, label="forward difference")
ax.loglog(hs, err_central, "s-", ms=3, label="central difference")
ax.loglog(hs, eps / hs, "k:", lw=1, label=r"round-off $\sim \epsilon/h$")
ax.loglog(hs, 0.5 * hs, "C0--", lw=1, label=r"truncation $\sim h$")
ax.loglog(hs, 0.1 * hs**2, "C1--", lw=1, label=r"truncation $\sim h^2$")
ax.set_ylim(1e-13, 10)
ax.set_xlabel("step h")
ax.set_ylabel("|difference quotient - exact derivative|")
ax.set_title(r"Finite-difference error for $d/dx\, e^{\sin x}$ at $x=0.7$")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The V shape, asserted against theory. On the right (large $h$), the error
# should follow the leading Taylor term: $\tfrac12|f''(x_0)|\,h$ for the forward
# difference and $\tfrac16|f'''(x_0)|\,h^2$ for the central one. We get $f''$ and
# $f'''$ by nesting `grad` (safe, thanks to the tags of notebook 01) and check them
# by hand: $f'' = (\cos^2 x - \sin x)\,e^{\sin x}$ and
# $f''' = (\cos^3 x - 3\sin x\cos x - \cos x)\,e^{\sin x}$. On the left (tiny
# $h$) round-off wins and most digits are gone.

# %%
f2 = grad(grad(fe))(x0)
f3 = grad(grad(grad(fe)))(x0)
s, c = np.sin(x0), np.cos(x0)
assert np.isclose(f2, (c**2 - s) * np.exp(s), rtol=1e-13)
assert np.isclose(f3, (c**3 - 3 * s * c - c) * np.exp(s), rtol=1e-13)

trunc_f = (hs >= 1e-5) & (hs <= 1e-3)
trunc_c = (hs >= 1e-4) & (hs <= 1e-2)
ratio_f = err_forward[trunc_f] / (0.5 * abs(f2) * hs[trunc_f])
ratio_c = err_central[trunc_c] / (abs(f3) / 6 * hs[trunc_c] ** 2)
print("forward error / (|f''| h / 2):  ", np.round(ratio_f, 3))
print("central error / (|f'''| h^2 / 6):", np.round(ratio_c, 3))
assert np.allclose(ratio_f, 1, atol=0.05) and np.allclose(ratio_c, 1, atol=0.05)

tiny = hs <= 1e-14  # round-off side of the V
assert np.nanmin(err_forward[tiny]) > 1e-4 and np.nanmin(err_central[tiny]) > 1e-4
# the bottoms of the V: about sqrt(eps) and eps^(2/3) in size, far from 16 digits
assert 1e-12 < err_forward[best_f] < 1e-7 and 1e-14 < err_central[best_c] < 1e-9
assert err_central[best_c] < err_forward[best_f]

# %% [markdown]
# **Takeaways**
#
# * A reverse-mode tape records each operation with what its derivative rule
#   needs; one backward sweep in reverse topological order gives the gradient
#   with respect to every input. Its memory grows with the length of the
#   computation: notebook 03 measures that.
# * `vjp` is the general form: any output shape, any cotangent, the tape reused.
# * Check gradients against something independent: forward vs reverse catches
#   a wrong rule in one mode; finite differences catch a rule that is wrong in
#   both. Use central differences in float64 with $h$ around $10^{-5}$–$10^{-6}$,
#   and expect agreement to 7–10 digits, never 16.
