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
# # 01 · Dual numbers: forward-mode differentiation from scratch
#
# Forward mode computes a derivative *alongside* the value, in the same pass.
# The trick is a number system with an extra symbol $\varepsilon$ such that
# $\varepsilon^2 = 0$ (but $\varepsilon \neq 0$). A **dual number** is
# $a + b\,\varepsilon$. Taylor's formula stops after one term:
#
# $$f(a + b\,\varepsilon) = f(a) + f'(a)\, b\,\varepsilon .$$
#
# So if we evaluate $f$ at $x + 1\cdot\varepsilon$, the coefficient of
# $\varepsilon$ in the answer is exactly $f'(x)$: no finite-difference step,
# no symbolic algebra, no rounding beyond ordinary floating point.
#
# In this notebook:
#
# 1. a scalar dual number in about 40 lines, checked against a derivative
#    worked out by hand;
# 2. the library's `Dual`, which carries **K tangent directions** at once, so a
#    whole Jacobian comes out of one pass;
# 3. *perturbation confusion*: the bug that naive dual numbers have when
#    derivatives are nested, and how tags fix it.

# %%
import numpy as np
import matplotlib.pyplot as plt

# %% [markdown]
# ## 1. A dual number in 40 lines
#
# Each arithmetic rule below is the product rule, quotient rule, ... written
# for the $\varepsilon$ part. `val` is $a$, `der` is $b$. The same class works
# when `val` and `der` are numpy arrays: then it differentiates elementwise.
#
# `__array_ufunc__ = None` tells numpy "don't handle me": without it,
# `np_array * dual` would be computed by numpy as an array of Python objects
# instead of calling our `__rmul__`.

# %%
class ScratchDual:
    """a + b·ε with ε² = 0.  `val` is a, `der` is b."""

    __array_ufunc__ = None  # let numpy arrays defer to our reflected operators

    def __init__(self, val, der=0.0):
        self.val, self.der = val, der

    def __add__(self, other):
        o = lift(other)
        return ScratchDual(self.val + o.val, self.der + o.der)

    __radd__ = __add__

    def __neg__(self):
        return ScratchDual(-self.val, -self.der)

    def __sub__(self, other):
        return self + (-lift(other))

    def __rsub__(self, other):
        return lift(other) + (-self)

    def __mul__(self, other):  # (a + bε)(c + dε) = ac + (ad + bc)ε
        o = lift(other)
        return ScratchDual(self.val * o.val, self.der * o.val + self.val * o.der)

    __rmul__ = __mul__

    def __truediv__(self, other):
        o = lift(other)
        return ScratchDual(self.val / o.val, (self.der * o.val - self.val * o.der) / o.val**2)

    def __rtruediv__(self, other):
        return lift(other) / self

    def __pow__(self, n):  # n: a plain number
        return ScratchDual(self.val**n, n * self.val ** (n - 1) * self.der)


def lift(x):
    """A plain number is a dual number with zero ε part."""
    return x if isinstance(x, ScratchDual) else ScratchDual(x, 0.0)


def sin(x):
    x = lift(x)
    return ScratchDual(np.sin(x.val), np.cos(x.val) * x.der)


def exp(x):
    x = lift(x)
    e = np.exp(x.val)
    return ScratchDual(e, e * x.der)


def derivative(f):
    """f'(x), by evaluating f at x + 1·ε and reading off the ε part."""
    return lambda x: f(ScratchDual(x, 1.0)).der


# %% [markdown]
# A test function, and its derivative worked out by hand:
#
# $$f(x) = x\sin x + \frac{e^{x/2}}{1 + x^2}, \qquad
# f'(x) = \sin x + x\cos x + \frac{\tfrac12 e^{x/2}(1 + x^2) - 2x\,e^{x/2}}{(1 + x^2)^2}.$$

# %%
def f(x):
    return x * sin(x) + exp(x / 2) / (1 + x**2)


def f_prime_by_hand(x):
    e = np.exp(x / 2)
    return np.sin(x) + x * np.cos(x) + (0.5 * e * (1 + x**2) - 2 * x * e) / (1 + x**2) ** 2


xs = np.linspace(-4, 4, 401)
df_dual = derivative(f)(xs)  # all 401 points at once: val and der are arrays
df_hand = f_prime_by_hand(xs)

print("max |dual - by hand| =", np.max(np.abs(df_dual - df_hand)))
assert np.allclose(df_dual, df_hand, rtol=1e-13, atol=1e-13)
assert np.isclose(derivative(f)(1.3), f_prime_by_hand(1.3), rtol=1e-13)  # scalars work too

# %% [markdown]
# The dual-number derivative agrees with the hand-derived formula to rounding
# error (here the two even round the same way). A finite difference could not
# do that: notebook 02 shows why.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(xs, f(ScratchDual(xs)).val, label="f(x)")
ax.plot(xs, df_dual, label="f'(x) from dual numbers")
ax.plot(xs[::25], df_hand[::25], "o", mfc="none", label="f'(x) by hand")
ax.axhline(0, color="gray", lw=0.5)
ax.set_xlabel("x")
ax.legend()
ax.set_title("A function and its derivative, computed in one pass")
fig.tight_layout()

# %% [markdown]
# Notice the one annoyance: `f` had to call *our* `sin` and `exp`. A user's
# ordinary numpy code calls `np.sin`. The library solves that with numpy's
# dispatch protocols (`__array_ufunc__`, `__array_function__`): its values
# are boxes that plain numpy calls hand back to the library.
#
# ## 2. The library's `Dual`: K directions at once
#
# `autodiff.dual(primal, tangent)` makes a dual array. Its tangent may have
# shape `primal.shape` (one direction) or `(K,) + primal.shape`: **K directions
# share every primal computation**. Feeding the K = n identity matrix as the
# tangents of an n-vector gives every column of the Jacobian in one pass.

# %%
from autodiff import Dual, dual, grad, jacfwd, jvp


def f_np(x):  # the same f, in plain numpy
    return x * np.sin(x) + np.exp(x / 2) / (1 + x**2)


d = f_np(dual(xs, np.ones_like(xs)))  # one direction: d/dx elementwise
print(type(d).__name__, "K =", d.K)
assert isinstance(d, Dual) and d.K == 1
assert np.allclose(d.tangent, df_hand, rtol=1e-13, atol=1e-13)
assert np.allclose(d.primal, f(ScratchDual(xs)).val, rtol=1e-15)

# %% [markdown]
# Now a function from $\mathbb{R}^3$ to $\mathbb{R}^3$ whose outputs mix all inputs:
#
# $$g(x) = \sin(x)\,\lVert x\rVert^2, \qquad
# J_{ij} = \frac{\partial g_i}{\partial x_j} = \cos(x_i)\,\lVert x\rVert^2\,\delta_{ij} + \sin(x_i)\,2x_j .$$

# %%
def g(x):
    return np.sin(x) * np.sum(x**2)


def jacobian_by_hand(x):
    return np.diag(np.cos(x) * np.sum(x**2)) + np.outer(np.sin(x), 2 * x)


x = np.array([0.5, -1.0, 2.0])
out = g(dual(x, np.eye(3)))  # K = 3 tangents: e_1, e_2, e_3
print("K =", out.K, " tangents shape:", out.tangents.shape)
J_dual = out.tangents.T  # tangent k is J e_k, the k-th column
J_hand = jacobian_by_hand(x)
J_fwd = jacfwd(g)(x)  # the same thing, packaged

print(J_dual)
assert np.allclose(J_dual, J_hand, rtol=1e-13, atol=1e-13)
assert np.allclose(J_fwd, J_hand, rtol=1e-13, atol=1e-13)

# jvp: one direction v gives the Jacobian-vector product J v.
v = np.array([1.0, 2.0, -0.5])
y, Jv = jvp(g, (x,), (v,))
assert np.allclose(y, g(x)) and np.allclose(Jv, J_hand @ v, rtol=1e-13)

# %% [markdown]
# One pass with K = 3 did the work of three single-direction passes, but
# computed `sin(x)`, `x**2` and the sum only once. That is why forward mode
# is the right tool when there are **few inputs** (a learning rate, a physical
# constant) and many outputs or a long computation in between.
#
# ## 3. Perturbation confusion
#
# Nest one derivative inside another:
#
# $$\frac{d}{dx}\Big[\, x \cdot \frac{d}{dy}(x + y)\Big|_{y=1} \Big]_{x=2}.$$
#
# The inner derivative is 1 (for any $x$), so the whole thing is
# $\frac{d}{dx}[x] = 1$. With our naive dual numbers:

# %%
naive = derivative(lambda x: x * derivative(lambda y: x + y)(1.0))(2.0)
print("naive nested derivative:", naive)
assert naive == 2.0  # wrong! the right answer is 1

# %% [markdown]
# What went wrong: the outer call made $x = 2 + 1\varepsilon$, the inner call
# made $y = 1 + 1\varepsilon$, with **the same** $\varepsilon$. So
# $x + y = 3 + 2\varepsilon$ and the inner "derivative" read off 2: it counted
# the outer perturbation of $x$ as if it were a change in $y$.
#
# The fix is to give each derivative its own infinitesimal, $\varepsilon_1$
# for the outer one and $\varepsilon_2$ for the inner one: a **tag**. An
# operation is handled by the innermost (highest) tag among its arguments;
# values with other tags are constants to it. Their parts may themselves be
# dual numbers of a lower tag, and the arithmetic on those recurses. Here
# is that rule for `+` and `*`, enough for the example:

# %%
import itertools

_next_tag = itertools.count(1)


class TaggedDual:
    __array_ufunc__ = None

    def __init__(self, val, der, tag):
        self.val, self.der, self.tag = val, der, tag

    def __add__(self, other):
        t, (a, da), (b, db) = split(self, other)
        return TaggedDual(a + b, da + db, t)

    def __mul__(self, other):
        t, (a, da), (b, db) = split(self, other)
        return TaggedDual(a * b, da * b + a * db, t)

    __radd__, __rmul__ = __add__, __mul__


def parts(x, tag):
    """(value, ε_tag part) of x: anything not carrying this tag is a constant."""
    return (x.val, x.der) if isinstance(x, TaggedDual) and x.tag == tag else (x, 0.0)


def split(a, b):
    tag = max(z.tag for z in (a, b) if isinstance(z, TaggedDual))  # the innermost tag
    return tag, parts(a, tag), parts(b, tag)


def tagged_derivative(f):
    def df(x):
        tag = next(_next_tag)  # a fresh ε for this derivative
        return parts(f(TaggedDual(x, 1.0, tag)), tag)[1]

    return df


tagged = tagged_derivative(lambda x: x * tagged_derivative(lambda y: x + y)(1.0))(2.0)
print("tagged nested derivative:", tagged)
assert tagged == 1.0

# %% [markdown]
# The library does exactly this. Every `grad`, `jvp`, `jacfwd` call opens a
# *trace* with a fresh, increasing level (see `autodiff/core.py`,
# `Primitive.__call__`: "the box with the highest level picks the trace").
# It gives 1 in all four combinations of forward mode (`jvp`) and reverse mode
# (`grad`, the tape of notebook 02):

# %%
def d_jvp(f):
    return lambda x: jvp(f, (x,), (1.0,))[1]


combos = {
    "grad of grad": grad(lambda x: x * grad(lambda y: x + y)(1.0))(2.0),
    "jvp of jvp": d_jvp(lambda x: x * d_jvp(lambda y: x + y)(1.0))(2.0),
    "jvp of grad": d_jvp(lambda x: x * grad(lambda y: x + y)(1.0))(2.0),
    "grad of jvp": grad(lambda x: x * d_jvp(lambda y: x + y)(1.0))(2.0),
}
for name, value in combos.items():
    print(f"{name:13s} -> {float(value)}")
    assert value == 1.0
assert grad(lambda x: x * grad(lambda y: x + y)(1.0))(2.0) == 1.0

# %% [markdown]
# A less contrived check: $\frac{d}{dx}\big[x\,\frac{d}{dy}(x y^2)\big|_{y=x}\big]
# = \frac{d}{dx}[2x^3] = 6x^2$, which is 24 at $x = 2$. The naive version
# again mixes up the two perturbations.

# %%
nested = lambda D: D(lambda x: x * D(lambda y: x * y * y)(x))(2.0)
print("naive:", nested(derivative), " tagged:", nested(tagged_derivative),
      " library:", float(nested(d_jvp)), " exact:", 6 * 2.0**2)
assert nested(tagged_derivative) == 24.0 and nested(d_jvp) == 24.0
assert nested(derivative) != 24.0

# %% [markdown]
# **Takeaways**
#
# * A dual number $a + b\varepsilon$ carries a value and a derivative; each
#   operation applies its own derivative rule, so the chain rule happens one
#   operation at a time, in the same order as the computation.
# * Carrying K tangents at once gives K directional derivatives (a Jacobian's
#   columns) for one shared primal computation.
# * Nested derivatives need distinct infinitesimals. Tags (levels) make nesting
#   safe, which is what lets notebook 03 run a reverse-mode tape *on* dual
#   numbers.
