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
# # 03 · The hybrid: a reverse tape running on dual numbers
#
# Training a model is a loop: at every step, a reverse-mode `grad` of the loss
# (notebook 02) and an update. Suppose we want the derivative of the **final**
# loss with respect to a **hyperparameter**, here the learning rate $\eta$: a
# *hypergradient*. Two ways:
#
# * **reverse over the whole run**: record all $T$ steps on one big tape and
#   sweep it backward. Memory grows linearly with $T$.
# * **forward over reverse**: make $\eta$ a dual number (notebook 01) and run the
#   loop as usual. Every step's `grad` then records and sweeps its small tape
#   *on dual numbers*: the gradient, the parameters and finally the loss carry
#   $d/d\eta$ in their tangents. Each step's tape is freed when the step ends,
#   so memory stays **flat** in $T$.
#
# The engine supports the second without any special code: its tape never looks
# at the type of the numbers it records, and tags (notebook 01) keep the inner
# `grad` from confusing its perturbation with the outer `jvp`'s.
#
# In this notebook: the hypergradient through 1,000 steps of gradient descent
# on a quadratic, checked against finite differences and a closed form; the
# loss and hypergradient as functions of $\eta$; then memory, measured.

# %%
import gc
import time
import tracemalloc

import numpy as np
import matplotlib.pyplot as plt

from autodiff import grad, jvp

# %% [markdown]
# ## 1. The problem, and its closed form
#
# $f(w) = \tfrac12 w^\top A w$ with $A$ symmetric positive definite, minimized by
# gradient descent from $w_0$: $w_{t+1} = w_t - \eta\,\nabla f(w_t) = (I - \eta A)\,w_t$, so
#
# $$w_T = (I - \eta A)^T w_0 .$$
#
# Write $A = Q\Lambda Q^\top$ and $c = Q^\top w_0$. In the eigenbasis each
# coordinate just gets multiplied by $(1 - \eta\lambda_i)$ every step, so
#
# $$L(\eta) = f(w_T) = \tfrac12\sum_i \lambda_i c_i^2 (1 - \eta\lambda_i)^{2T},
# \qquad
# \frac{dL}{d\eta} = -T\sum_i \lambda_i^2 c_i^2 (1 - \eta\lambda_i)^{2T-1}.$$
#
# We choose eigenvalues from $10^{-3}$ to $1$ in $d = 100$ dimensions. Gradient
# descent is stable for $\eta < 2/\lambda_{\max} = 2$.

# %%
rng = np.random.default_rng(0)
d, T = 100, 1000
lam = np.logspace(-3, 0, d)
Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
A = (Q * lam) @ Q.T
A = 0.5 * (A + A.T)  # exactly symmetric
w0 = rng.standard_normal(d)
c = Q.T @ w0


def closed_form(lr, steps=T):
    """L(lr) and dL/dlr from the eigen-decomposition (lr may be an array)."""
    r = 1 - np.multiply.outer(lr, lam)
    loss = 0.5 * np.sum(lam * c**2 * r ** (2 * steps), axis=-1)
    dloss = -steps * np.sum(lam**2 * c**2 * r ** (2 * steps - 1), axis=-1)
    return loss, dloss


# %% [markdown]
# ## 2. The hypergradient through 1,000 steps
#
# `train` is plain Python: a loop that calls `grad` at every step. `jvp` feeds it
# $\eta$ as a dual number with tangent 1, and the final loss comes back with
# $dL/d\eta$.

# %%
def loss(w):
    return 0.5 * w @ A @ w


def train(lr, steps=T):
    w = w0
    for _ in range(steps):
        w = w - lr * grad(loss)(w)  # each step: a small tape, run on duals, then freed
    return loss(w)


lr0 = 0.5
start = time.perf_counter()
L_ad, dL_ad = jvp(train, (lr0,), (1.0,))
print(f"jvp through {T} steps: {time.perf_counter() - start:.2f} s")

h = 1e-6
dL_fd = (train(lr0 + h) - train(lr0 - h)) / (2 * h)  # two plain runs
L_exact, dL_exact = closed_form(lr0)

print(f"final loss      autodiff {L_ad:.12e}   closed form {L_exact:.12e}")
print(f"hypergradient   autodiff {dL_ad:.12e}   closed form {dL_exact:.12e}   "
      f"finite difference {dL_fd:.12e}")
assert np.isclose(L_ad, L_exact, rtol=1e-11)
assert np.isclose(dL_ad, dL_exact, rtol=1e-11)
assert np.isclose(dL_ad, dL_fd, rtol=1e-6)
print(f"relative error vs closed form: autodiff {abs(dL_ad / dL_exact - 1):.1e}, "
      f"finite difference {abs(dL_fd / dL_exact - 1):.1e}")

# %% [markdown]
# Forward-over-reverse matches the closed form to rounding error (the loop
# rounds a little at each of its 1,000 steps, so we ask for 11 digits, not 16);
# the finite difference, limited as notebook 02 showed, gets several digits fewer.
#
# ## 3. The loss and its hypergradient as functions of $\eta$
#
# To sweep many learning rates at once we batch them: row $k$ of `W` is a
# separate run with learning rate `lrs[k]`. The summed loss has gradient
# $A w_k$ in row $k$, so every row does its own gradient descent. Run $k$ depends
# only on `lrs[k]`, so the Jacobian of the final losses with respect to `lrs`
# is diagonal, and one `jvp` along the all-ones direction returns every
# diagonal entry: all the hypergradients in one pass.

# %%
lrs = np.sort(np.concatenate([np.linspace(0.05, 1.9, 29), [lr0], np.linspace(1.93, 2.02, 10)]))


def train_batch(lrs, steps=T):
    W = np.tile(w0, (len(lrs), 1))
    total_loss = lambda W: 0.5 * np.sum((W @ A) * W)  # sum of the runs' losses
    for _ in range(steps):
        W = W - lrs[:, None] * grad(total_loss)(W)
    return 0.5 * np.sum((W @ A) * W, axis=1)


losses, hypergrads = jvp(train_batch, (lrs,), (np.ones_like(lrs),))
losses_exact, hypergrads_exact = closed_form(lrs)
assert np.allclose(losses, losses_exact, rtol=1e-9, atol=0)
assert np.allclose(hypergrads, hypergrads_exact, rtol=1e-9, atol=0)
k = np.flatnonzero(lrs == lr0)[0]
assert np.isclose(hypergrads[k], dL_ad, rtol=1e-10)  # the batched run agrees with section 2

# %%
fine = np.linspace(0.05, 2.02, 4000)
loss_fine, dloss_fine = closed_form(fine)
lr_best = fine[np.argmin(loss_fine)]
edge = 2 / lam.max()
neg, pos = hypergrads < 0, hypergrads > 0

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
ax1.semilogy(fine, loss_fine, "k-", lw=1, label="closed form")
ax1.semilogy(lrs, losses, "o", ms=4, mfc="none", label="autodiff")
ax1.set_ylim(1e-5, 1e2)
ax1.set_title(f"final loss after T = {T} steps")
ax2.semilogy(fine, np.abs(dloss_fine), "k-", lw=1, label="closed form")
ax2.semilogy(lrs[neg], -hypergrads[neg], "o", ms=4, mfc="none", label="forward-over-reverse, < 0")
ax2.semilogy(lrs[pos], hypergrads[pos], "^", ms=5, color="C3", label="forward-over-reverse, > 0")
ax2.set_ylim(1e-5, 1e6)
ax2.set_title("|hypergradient dL/dη|")
zoom, zf = lrs >= 1.9, fine >= 1.9
ax3.semilogy(fine[zf], loss_fine[zf], "k-", lw=1, label="closed form")
ax3.semilogy(lrs[zoom], losses[zoom], "o", ms=4, mfc="none", label="autodiff")
ax3.set_title("final loss, near the stability edge")
for ax in (ax1, ax2, ax3):
    ax.axvline(edge, color="C3", ls=":", label="stability edge 2/λmax")
    ax.axvline(lr_best, color="C2", ls="--", lw=1, label=f"best η ≈ {lr_best:.3f}")
    ax.set_xlabel("learning rate η")
    ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# Over most of the range the hypergradient is small, negative and smooth: a
# larger step size helps. Close to the stability edge it changes sign at the
# best $\eta$ and then explodes, because the top eigen-direction's factor
# $(1 - \eta)^{2T}$ goes from vanishing ($0.99^{2000} \approx e^{-20}$) to
# astronomically large ($1.02^{2000} \approx e^{40}$) within a few hundredths of
# $\eta$. Long horizons make the loss landscape in the hyperparameters steep and
# cliff-like; notebook 06 comes back to this. The sign of the hypergradient
# tells which side of the best $\eta$ a run is on:

# %%
below, above = lrs < lr_best - 0.002, lrs > lr_best + 0.002
print("η below the best:", below.sum(), "runs, all dL/dη < 0:", np.all(hypergrads[below] < 0))
print("η above the best:", above.sum(), "runs, all dL/dη > 0:", np.all(hypergrads[above] > 0))
assert np.all(hypergrads[below] < 0) and np.all(hypergrads[above] > 0) and above.sum() >= 2

# %% [markdown]
# ## 4. Memory: flat forward, growing reverse
#
# Both methods give the same number; what differs is memory. Reverse over the
# unrolled run is `grad(train)`: the outer tape records every step, including
# every inner `grad`'s backward sweep (reverse over reverse), and must keep it
# all until its own backward sweep. Forward over reverse is `jvp(train)`, as
# above.
#
# We measure each with `tracemalloc`, which counts every allocation Python
# and numpy make, and report the **peak** above what was in use before the run.
# Two details keep the measurement honest:
#
# * CPython keeps freed small objects on free lists for reuse (tuples, for
#   example, up to 2,000 of each length). Filling those lists while tracing
#   would look like growth. A warm-up run before tracing fills them, and the
#   cyclic garbage collector, whose full collections empty them, is paused
#   while we measure. (The engine's tapes hold no reference cycles, so pausing
#   the collector leaks nothing; we count what it finds afterwards.)
# * `tracemalloc` slows allocation down several times, so the runs are kept short.

# %%
Ts = [30, 100, 300, 1000]


def peak_bytes(run):
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    result = run()
    return tracemalloc.get_traced_memory()[1] - base, result


forward, reverse, seconds = {}, {}, {}
gc.collect()
gc.disable()
try:
    jvp(lambda lr: train(lr, 2000), (lr0,), (1.0,))  # warm-up, not traced
    tracemalloc.start()  # no printing until it stops: output is allocated too
    try:
        for steps in Ts:
            start = time.perf_counter()
            forward[steps] = peak_bytes(lambda: jvp(lambda lr: train(lr, steps), (lr0,), (1.0,))[1])
            middle = time.perf_counter()
            reverse[steps] = peak_bytes(lambda: grad(lambda lr: train(lr, steps))(lr0))
            seconds[steps] = (middle - start, time.perf_counter() - middle)
    finally:
        tracemalloc.stop()
finally:
    unreachable = gc.collect()
    gc.enable()
for steps in Ts:
    print(f"T = {steps:5d}:  forward {forward[steps][0] / 1e3:9.1f} kB ({seconds[steps][0]:.1f} s)"
          f"   reverse {reverse[steps][0] / 1e3:9.1f} kB ({seconds[steps][1]:.1f} s)")
print("objects found only through reference cycles:", unreachable)
assert unreachable < 100  # a cycle per step would leave thousands

# %% [markdown]
# First, the two methods agree on the hypergradient, and with the closed form:

# %%
for steps in Ts:
    dL_fwd, dL_rev = forward[steps][1], reverse[steps][1]
    assert np.isclose(dL_fwd, dL_rev, rtol=1e-9), (steps, dL_fwd, dL_rev)
    assert np.isclose(dL_fwd, closed_form(lr0, steps)[1], rtol=1e-9)

# %%
fwd_mb = np.array([forward[s][0] for s in Ts]) / 1e6
rev_mb = np.array([reverse[s][0] for s in Ts]) / 1e6

fig, ax = plt.subplots(figsize=(7, 4.2))
ax.loglog(Ts, rev_mb, "o-", label="reverse over the unrolled run: grad(train)")
ax.loglog(Ts, fwd_mb, "s-", label="forward over reverse: jvp(train)")
ax.loglog(Ts, rev_mb[0] * np.array(Ts) / Ts[0], "k:", lw=1, label="∝ T")
ax.set_xlabel("number of gradient-descent steps T")
ax.set_ylabel("peak traced memory (MB)")
ax.set_title("Memory of the hypergradient through T steps")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The assertions behind the picture: forward mode's peak does not depend on
# $T$ (it holds one step's small tape at a time), reverse mode's grows in
# proportion to $T$ (it holds them all).

# %%
print("forward peak, max/min over T:", fwd_mb.max() / fwd_mb.min())
print("reverse peak per step (kB):", np.round(rev_mb / np.array(Ts) * 1e3, 1))
assert fwd_mb.max() / fwd_mb.min() < 1.5
assert rev_mb[-1] > 5 * rev_mb[0]
assert rev_mb[-1] > 10 * fwd_mb[-1]
per_step = rev_mb / np.array(Ts)  # roughly constant if the growth is linear
assert per_step[1:].max() / per_step[1:].min() < 1.5

# %% [markdown]
# **Takeaways**
#
# * `jvp` of a training loop that calls `grad` gives the hypergradient of the
#   final loss in one forward pass, in memory independent of the number of
#   steps: the hybrid this library is built for.
# * Its cost is one training run in which every number also carries its
#   tangents. With K hyperparameters there are K tangent directions, so
#   forward mode is the right tool for *few* hyperparameters.
# * Reverse mode over the unrolled run gives the same number but stores the
#   whole run; for long horizons that is what runs out of memory.
# * Next: notebook 04 uses one-step hypergradients online, to tune the learning
#   rate while training.
