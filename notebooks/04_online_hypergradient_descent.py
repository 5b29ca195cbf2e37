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
# # 04 · Online hypergradient descent: tuning the learning rate while training
#
# Notebook 03 computed the derivative of the **final** loss with respect to the
# learning rate, through a whole training run. That is exact, but it gives one
# number per training run: to use it you train, adjust $\alpha$, and train again.
#
# Baydin et al. ("Online Learning Rate Adaptation with Hypergradient Descent",
# ICLR 2018) take a much shorter view. At every step, ask: *how would the loss
# I am looking at now have changed if the previous step had used a slightly
# different learning rate?* That derivative, the **one-step hypergradient**,
# turns out to cost one dot product, and gradient descent on $\alpha$ with it
# adapts the learning rate during a single run.
#
# In this notebook: the hypergradient derived by hand, then checked against the
# autodiff engine and a finite difference; then SGD, SGD-HD, Adam and Adam-HD
# on the digits data from several initial learning rates, **including
# $\alpha = 0$**, and how sensitive each is to that choice.

# %%
import time
import warnings

import numpy as np
import matplotlib.pyplot as plt

from autodiff import grad, jvp, value_and_grad
from hyperopt.data import Batcher, digits
from hyperopt.hd import AdamHD, SGDHD
from hyperopt.models import MLP
from hyperopt.optim import SGD, Adam

notebook_start = time.perf_counter()

# %% [markdown]
# ## 1. The hypergradient of one SGD step
#
# Write $f_t$ for the loss on the minibatch of step $t$ and
# $g_t = \nabla f_t(\theta_{t-1})$ for its gradient at the current parameters.
# SGD with learning rate $\alpha$ steps
#
# $$\theta_t = \theta_{t-1} - \alpha\, g_t .$$
#
# Look at step $t$ from the point of view of the *previous* step. The current
# parameters came from $\theta_{t-1} = \theta_{t-2} - \alpha\, g_{t-1}$, and
# $g_{t-1} = \nabla f_{t-1}(\theta_{t-2})$ was computed *before* $\alpha$ was
# used, so it does not depend on $\alpha$. Hence
# $\partial \theta_{t-1} / \partial \alpha = -g_{t-1}$, and by the chain rule
#
# $$h_t \;=\; \frac{\partial f_t(\theta_{t-1})}{\partial \alpha}
#   \;=\; \nabla f_t(\theta_{t-1}) \cdot \frac{\partial \theta_{t-1}}{\partial \alpha}
#   \;=\; -\,g_t \cdot g_{t-1}.$$
#
# Both gradients are already at hand (the current one, and the one kept from
# the previous step), so the hypergradient costs one dot product: no extra
# forward or backward pass. **SGD-HD** takes a gradient step on $\alpha$ with
# its own step size $\beta$ (the *hypergradient learning rate*) before each
# ordinary step:
#
# $$\alpha_t = \alpha_{t-1} - \beta\, h_t = \alpha_{t-1} + \beta\, g_t \cdot g_{t-1},
# \qquad \theta_t = \theta_{t-1} - \alpha_t\, g_t .$$
#
# Read it as: if two successive gradients point the same way, the last step
# was too timid, so take bigger steps; if they point in opposite directions,
# the last step overshot, so take smaller ones. On the very first step there
# is no previous gradient ($g_0 = 0$), so $\alpha$ does not change.
#
# Note what happens from $\alpha_0 = 0$. Plain SGD never moves. SGD-HD does
# not move on its first step either, but its second step compares two
# gradients taken at the *same* point $\theta_0$ on two different minibatches.
# Those mostly agree, so $g_2 \cdot g_1 > 0$ and $\alpha$ becomes positive:
# the additive rule can leave zero.

# %% [markdown]
# ## 2. Checking $h_t = -g_t \cdot g_{t-1}$ numerically
#
# The data: scikit-learn's 8×8 handwritten digits, split into train / val /
# test; the model: an MLP 64 → 32 → 10 with tanh, trained on minibatches of
# 64. `Batcher` makes the minibatch of every step a fixed function of the step
# number, so every method below sees the same batches.

# %%
train, val, test = digits(seed=0)
model = MLP(sizes=(64, 32, 10))
params0 = model.init(seed=0)
batcher = Batcher(len(train.x), batch_size=64, seed=0)
print(f"train {train.x.shape}, val {val.x.shape}, test {test.x.shape}; "
      f"{model.n_params(params0)} parameters")

# %% [markdown]
# Take one step with learning rate $a$ from $\theta_0$ on batch 1, and look
# at the loss on batch 2 afterwards:
#
# $$\varphi(a) = f_2(\theta_0 - a\, g_1).$$
#
# $\varphi'(\alpha)$ is the hypergradient $h_2$ at learning rate $\alpha$. We
# compute it four ways: the autodiff engine in reverse mode (`grad` of
# $\varphi$, whose body calls nothing special), in forward mode (`jvp`), the
# closed form $-g_2 \cdot g_1$, and a central finite difference. `SGDHD`'s own
# record of the hypergradient after its second step is a fifth.

# %%
batch1, batch2 = batcher.batch(train, 0), batcher.batch(train, 1)
g1 = grad(model.loss)(params0, batch1.x, batch1.y)


def step(params, lr, g):
    return {k: params[k] - lr * g[k] for k in params}


def phi(a):
    """Loss on batch 2 after one SGD step with learning rate a on batch 1."""
    return model.loss(step(params0, a, g1), batch2.x, batch2.y)


alpha = 0.5
h_reverse = grad(phi)(alpha)
_, h_forward = jvp(phi, (alpha,), (1.0,))

g2 = grad(model.loss)(step(params0, alpha, g1), batch2.x, batch2.y)
h_closed = -sum(np.vdot(g2[k], g1[k]) for k in params0)  # -g_2 . g_1, over every tensor

eps = 1e-5
h_fd = (phi(alpha + eps) - phi(alpha - eps)) / (2 * eps)

opt = SGDHD(params0, lr=alpha, hypergrad_lr=0.0)  # beta = 0: alpha stays put, h is still recorded
opt.step(g1)
opt.step(g2)
h_sgdhd = opt.hypergrad

for name, value in [("reverse mode (grad)", h_reverse), ("forward mode (jvp)", h_forward),
                    ("closed form -g2.g1", h_closed), ("finite difference", h_fd),
                    ("SGDHD.hypergrad", h_sgdhd)]:
    print(f"{name:22s} {value:+.12f}")
assert np.isclose(h_reverse, h_closed, rtol=1e-10, atol=0)
assert np.isclose(h_forward, h_closed, rtol=1e-10, atol=0)
assert np.isclose(h_sgdhd, h_closed, rtol=1e-10, atol=0)
assert np.isclose(h_fd, h_closed, rtol=1e-6, atol=0)
assert h_closed < 0  # the two gradients agree: HD would raise alpha here

# %% [markdown]
# The engine, which knows nothing about learning rates, agrees with the
# closed form to about 12 digits; the finite difference to about 7 (notebook
# 02 explained why it cannot do better). Here is $\varphi$ over a range of
# learning rates, with the tangent whose slope is $h_2$:

# %%
a_grid = np.linspace(0.0, 3.0, 31)
phi_grid = np.array([phi(a) for a in a_grid])

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(a_grid, phi_grid, "k-", label="φ(a) = loss on batch 2 after a step of size a")
ax.plot(a_grid, phi(alpha) + h_closed * (a_grid - alpha), "C1--",
        label=f"tangent at a = {alpha}: slope h = {h_closed:.3f}")
ax.plot([alpha], [phi(alpha)], "o", color="C1")
ax.set_ylim(phi_grid.min() - 0.1, phi_grid.max() + 0.1)
ax.set_xlabel("learning rate a of the previous step")
ax.set_ylabel("loss")
ax.legend(fontsize=8)
ax.set_title("The one-step hypergradient is the slope of φ")
fig.tight_layout()

# %% [markdown]
# The slope is negative, so a larger step would have done better on the next
# batch; hypergradient descent raises $\alpha$. Past the minimum of $\varphi$
# the slope turns positive and HD would lower it.
#
# ### The same idea for any optimizer
#
# Nothing in the derivation used the form of the SGD step, only that the update
# is $-\alpha\, d_{t-1}$ with a direction $d_{t-1}$ that does not depend on
# $\alpha$. So in general $h_t = -g_t \cdot d_{t-1}$. For Adam the direction is
# $\hat m / (\sqrt{\hat v} + \epsilon)$, and **Adam-HD** uses exactly that. The
# engine confirms it by differentiating through one step of the pure `Adam`
# optimizer of `hyperopt.optim`, whose learning rate is an input
# (`hyperopt.hd_auto.HD` does exactly this to give hypergradient descent to any
# optimizer).

# %%
adam_lr = 0.01
adam = Adam(adam_lr)
adam_state0 = adam.init(params0)


def phi_adam(a):
    """Loss on batch 2 after one Adam step with learning rate a on batch 1."""
    params1, _ = adam.update(g1, adam_state0, params0, {"lr": a})
    return model.loss(params1, batch2.x, batch2.y)


_, h_adam_engine = jvp(phi_adam, (adam_lr,), (1.0,))

adam_hd = AdamHD(params0, lr=adam_lr, hypergrad_lr=0.0)
params1 = adam_hd.step(g1)
adam_hd.step(grad(model.loss)(params1, batch2.x, batch2.y))
print(f"engine through Adam.update: {h_adam_engine:+.12f}")
print(f"AdamHD.hypergrad:           {adam_hd.hypergrad:+.12f}")
assert np.isclose(h_adam_engine, adam_hd.hypergrad, rtol=1e-10, atol=0)

# %% [markdown]
# ## 3. Training on digits from many initial learning rates
#
# Four methods, each for 200 steps, from five initial learning rates including
# 0. SGD's range reaches 1 and Adam's stops at 0.1, because Adam's steps are
# about $\alpha$ per coordinate whatever the size of the gradient, so its
# useful learning rates are smaller.
#
# The hypergradient learning rates $\beta$ are new hyperparameters. The paper
# recommends $\beta = 10^{-3}$ for SGD-HD and $10^{-7}$ to $10^{-8}$ for Adam-HD,
# for runs of many thousands of steps. Our runs are 200 steps long, so we use
# larger values, $10^{-2}$ and $3 \cdot 10^{-5}$: with the paper's values
# $\alpha$ moves slowly in 200 steps (below, SGD-HD with $\beta = 10^{-3}$ from
# $\alpha_0 = 0$ climbs too, but ends less than half as high). Adam-HD's
# $\beta$ is much smaller than SGD-HD's because its hypergradient
# $-g_t \cdot d_{t-1}$ is much larger: $d$ has entries of
# size about 1, not the size of a gradient.
#
# For each run we record the minibatch loss and the learning rate at every
# step (both come for free), and at the end the loss on the whole training set.

# %%
T = 200
BETA_SGD, BETA_ADAM = 1e-2, 3e-5
SGD_LRS = [0.0, 1e-3, 1e-2, 1e-1, 1.0]
ADAM_LRS = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
loss_and_grad = value_and_grad(model.loss)
batches = [batcher.batch(train, t) for t in range(T)]


class Fixed:
    """A pure hyperopt.optim optimizer behind the same small interface."""

    def __init__(self, opt, lr):
        self.opt, self.lr = opt, lr
        self.params, self.state = params0, opt.init(params0)

    def step(self, grads):
        self.params, self.state = self.opt.update(grads, self.state, self.params)
        return self.params


def make(method, lr, beta):
    """An object with .step(grads) -> params and .lr, for each method."""
    if method == "SGD-HD":
        return SGDHD(params0, lr=lr, hypergrad_lr=beta)
    if method == "Adam-HD":
        return AdamHD(params0, lr=lr, hypergrad_lr=beta)
    return Fixed(SGD(lr) if method == "SGD" else Adam(lr), lr)


def train_run(method, lr, beta=None):
    opt, params = make(method, lr, beta), params0
    losses, lrs = [], []
    for batch in batches:
        loss, g = loss_and_grad(params, batch.x, batch.y)
        params = opt.step(g)
        losses.append(float(loss))
        lrs.append(opt.lr)  # the learning rate this step used
    final = float(model.loss(params, train.x, train.y))
    return {"loss": np.array(losses), "lr": np.array(lrs), "final": final,
            "val_acc": model.accuracy(params, val.x, val.y)}


start = time.perf_counter()
runs = {}
with warnings.catch_warnings():
    warnings.simplefilter("error")  # a negative or non-finite lr would be an error here
    for method, grid, beta in [("SGD", SGD_LRS, None), ("SGD-HD", SGD_LRS, BETA_SGD),
                               ("Adam", ADAM_LRS, None), ("Adam-HD", ADAM_LRS, BETA_ADAM)]:
        for lr in grid:
            runs[method, lr] = train_run(method, lr, beta)
    paper_beta = train_run("SGD-HD", 0.0, 1e-3)
print(f"{len(runs) + 1} runs of {T} steps in {time.perf_counter() - start:.1f} s\n")

print(f"{'method':8s} {'initial lr':>10s} {'final lr':>9s} {'train loss':>10s} {'val acc':>8s}")
for (method, lr), r in runs.items():
    print(f"{method:8s} {lr:10g} {r['lr'][-1]:9.4f} {r['final']:10.3f} {r['val_acc']:8.3f}")

# %% [markdown]
# ## 4. Starting from $\alpha = 0$
#
# Plain SGD at $\alpha = 0$ cannot move: its final loss is the loss of the
# initial parameters, to the last digit. SGD-HD starts at the same place, and
# its learning rate rises within a few steps.

# %%
initial_loss = float(model.loss(params0, train.x, train.y))
sgd0, hd0, adamhd0 = runs["SGD", 0.0], runs["SGD-HD", 0.0], runs["Adam-HD", 0.0]
print(f"initial loss {initial_loss:.4f}; after {T} steps from lr = 0: SGD {sgd0['final']:.4f}, "
      f"SGD-HD {hd0['final']:.4f} (lr now {hd0['lr'][-1]:.4f}), "
      f"Adam-HD {adamhd0['final']:.4f} (lr now {adamhd0['lr'][-1]:.4f})")

assert sgd0["final"] == initial_loss              # SGD at lr = 0 never moved
assert hd0["lr"][0] == 0.0 and hd0["lr"][1] > 0   # first step keeps alpha, the second raises it
assert hd0["lr"][-1] > 0.05                       # and it keeps rising, well away from 0
assert hd0["final"] < 0.5 * sgd0["final"]         # so SGD-HD from 0 learns; SGD from 0 cannot
assert adamhd0["lr"][-1] > 0 and adamhd0["final"] < 0.5 * runs["Adam", 0.0]["final"]
# the paper's beta = 1e-3 also leaves 0, only more slowly
assert 0 < paper_beta["lr"][-1] < 0.5 * hd0["lr"][-1]

# %%
def smooth(x, k=10):
    return np.convolve(x, np.ones(k) / k, mode="valid")


steps = np.arange(1, T + 1)
fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
for col, (method, hd_method, grid) in enumerate([("SGD", "SGD-HD", SGD_LRS),
                                                 ("Adam", "Adam-HD", ADAM_LRS)]):
    ax_loss, ax_lr = axes[0, col], axes[1, col]
    for i, lr in enumerate(grid):
        color = plt.cm.viridis(i / (len(grid) - 1))
        ax_loss.plot(steps[9:], smooth(runs[method, lr]["loss"]), ":", color=color)
        ax_loss.plot(steps[9:], smooth(runs[hd_method, lr]["loss"]), "-", color=color,
                     label=f"initial lr {lr:g}")
        ax_lr.plot(steps, runs[hd_method, lr]["lr"], "-", color=color, label=f"initial lr {lr:g}")
    if method == "SGD":
        ax_lr.plot(steps, paper_beta["lr"], "k--", lw=1, label="SGD-HD, β = 1e-3, from 0")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("minibatch loss (10-step average)")
    ax_loss.set_title(f"{method} (dotted) vs {hd_method} (solid)")
    ax_lr.set_yscale("symlog", linthresh=1e-4 if method == "Adam" else 1e-3)
    ax_lr.set_ylabel("learning rate α_t (symlog scale)")
    ax_lr.set_title(f"{hd_method}: learning-rate trajectories")
    for ax in (ax_loss, ax_lr):
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# The learning-rate panels show HD at work. From every small start, including
# 0, SGD-HD's $\alpha$ climbs to the same value, about 0.18, over the first hundred or so
# steps, and the loss curves (top) follow it: the solid curves bunch together
# while the dotted ones (fixed $\alpha$) spread out. From $\alpha_0 = 1$, HD
# lowers $\alpha$. Adam-HD behaves the same way on its own scale.
#
# Where the runs started no longer matters much: the final learning rates from
# $\alpha_0 \in \{0, 10^{-3}, 10^{-2}\}$ agree to within 1%.

# %%
finals = np.array([runs["SGD-HD", lr]["lr"][-1] for lr in (0.0, 1e-3, 1e-2)])
print("SGD-HD final lr from 0, 1e-3, 1e-2:", np.round(finals, 5))
assert finals.max() / finals.min() < 1.01
assert runs["SGD-HD", 1.0]["lr"][-1] < 0.9  # from 1, HD lowered the learning rate

# %% [markdown]
# ## 5. Sensitivity to the initial learning rate
#
# One number per method: the standard deviation, over the five initial
# learning rates, of $\log(\text{final training loss})$. A method that does
# equally well from every start scores 0.

# %%
def spread(method, grid):
    return float(np.std(np.log([runs[method, lr]["final"] for lr in grid])))


spreads = {m: spread(m, SGD_LRS if m.startswith("SGD") else ADAM_LRS)
           for m in ("SGD", "SGD-HD", "Adam", "Adam-HD")}
for m, s in spreads.items():
    print(f"{m:8s} std of log final loss over initial lrs: {s:.2f}")
assert spreads["SGD-HD"] < 0.6 * spreads["SGD"]
assert spreads["Adam-HD"] < 0.6 * spreads["Adam"]

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, (method, hd_method, grid, thresh) in zip(
        axes, [("SGD", "SGD-HD", SGD_LRS, 1e-3), ("Adam", "Adam-HD", ADAM_LRS, 1e-4)]):
    for m, style in [(method, "o:"), (hd_method, "s-")]:
        ax.plot(grid, [runs[m, lr]["final"] for lr in grid], style,
                label=f"{m} (spread {spreads[m]:.2f})")
    ax.set_xscale("symlog", linthresh=thresh)
    ax.set_yscale("log")
    ax.set_xlabel("initial learning rate (symlog scale: 0 on the left)")
    ax.set_ylabel(f"training loss after {T} steps")
    ax.legend(fontsize=8)
fig.suptitle("Sensitivity to the initial learning rate")
fig.tight_layout()

# %% [markdown]
# HD flattens the curve: a poor initial learning rate costs much less. It does
# not make the choice irrelevant, and it does not find the *best* learning
# rate. SGD with a fixed $\alpha = 1$ ends lower than SGD-HD from any small
# start, whose $\alpha$ settles near 0.18. The one-step hypergradient is
# greedy: it asks what would have helped the *next* minibatch, and the best
# step for the next batch is shorter than the best constant step over 200 steps
# (the "short-horizon bias" of such greedy rules; notebook 03's whole-run
# hypergradient does not have it, but costs a training run per update).

# %%
best_sgd = min(runs["SGD", lr]["final"] for lr in SGD_LRS)
print(f"best fixed-lr SGD: {best_sgd:.3f}; SGD-HD from 0: {hd0['final']:.3f} "
      f"(its lr settles at {hd0['lr'][-1]:.3f})")
assert best_sgd < 0.5 * hd0["final"]
assert hd0["lr"][-1] < 0.5  # well below the better fixed value 1.0

print(f"notebook ran in {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# **Takeaways**
#
# * The one-step hypergradient $h_t = -g_t \cdot d_{t-1}$ (for SGD,
#   $-g_t \cdot g_{t-1}$) is the derivative of the current loss with respect to
#   the previous step's learning rate. It costs one dot product; the engine
#   computes the same number by differentiating through one optimizer step.
# * Hypergradient descent on $\alpha$ lets training start anywhere, even at
#   $\alpha = 0$, and makes the result far less sensitive to where it started.
# * It trades one hyperparameter for another, $\beta$, which is less sensitive
#   but not free to choose, and its greedy view of one step ahead can settle
#   on a learning rate below the best one for the whole run.
# * Next: notebook 05 lets $\beta$ be tuned by yet another optimizer, and so
#   on up: hyperoptimizer towers.
