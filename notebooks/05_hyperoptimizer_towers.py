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
# # 05 · Hyperoptimizer towers
#
# Notebook 04 tuned the learning rate $\alpha$ online with hypergradient descent,
# and in exchange introduced a new hyperparameter: the step size $\beta$ of
# the optimizer that updates $\alpha$. Chandra, Xie, Ragan-Kelley and Meijer
# ("Gradient Descent: The Ultimate Optimizer", NeurIPS 2022) make the obvious
# next move, and keep making it:
#
# * the thing that updates $\alpha$ is itself an **optimizer** (SGD, Adam, ...)
#   with hyperparameters of its own;
# * so *its* hyperparameters can be tuned online by a third optimizer, whose
#   hyperparameters can be tuned by a fourth, and so on: a **tower** of
#   hyperoptimizers. Only the top level's hyperparameters stay fixed.
#
# Their claim: the taller the tower, the less the result depends on the
# hyperparameters you start from. In this notebook: the tower API of
# `hyperopt.towers`, a check that a height-1 tower is exactly notebook 04's
# SGD-HD, and then the claim tested on the digits data, twice: sensitivity to
# the initial learning rate against tower height (0 to 3), and sensitivity to
# the step size of the first hyper-level.

# %%
import time
import warnings

import numpy as np
import matplotlib.pyplot as plt

from autodiff import grad
from hyperopt.data import Batcher, digits
from hyperopt.hd import SGDHD
from hyperopt.models import MLP
from hyperopt.optim import SGD, Adam
from hyperopt.towers import Tower, describe

notebook_start = time.perf_counter()

# %% [markdown]
# ## 1. Levels, and what each one tunes
#
# Number the levels from the bottom. Level 0 is the model's optimizer, with
# parameters $\theta$ (the model's weights) and hyperparameters $u_0$ (here its
# learning rate $\alpha$). Level 1 is an optimizer whose *parameters* are
# $u_0$; its hyperparameters $u_1$ are the parameters of level 2; and so on up
# to the top, level $n$ (the tower's **height**), whose hyperparameters are
# fixed. Height 0 is a plain optimizer.
#
# At every training step each level needs the gradient of the loss with
# respect to its parameters. For level 1 this is notebook 04's hypergradient
# $h = g_t \cdot \partial\theta_{t-1}/\partial\alpha$. For level 2 the chain
# is one link longer: the current loss depends on $\theta_{t-1}$, which
# depends on the learning rate $\alpha_{t-1}$ the last step used, which
# depends on the step size $\kappa$ of the last update of $\alpha$:
#
# $$\frac{\partial f_t}{\partial \kappa}
#   = g_t \cdot \frac{\partial \theta_{t-1}}{\partial \alpha}\,
#     \frac{\partial \alpha_{t-1}}{\partial \kappa}.$$
#
# As in Chandra et al., each link is through *one* step only (older history is
# treated as constant), so the cost does not grow with the number of steps.
# `hyperopt.towers` computes all these derivatives in forward mode: every tuned
# hyperparameter of every level is a direction of one dual number, and the
# tower carries $\partial\theta/\partial(\text{all tuned hyperparameters})$
# from one step to the next. The levels are then updated top down.
#
# A stack is written with the `optimizer=` argument of the optimizers in
# `hyperopt.optim`; `describe` reads it bottom first, "sgd / adam" being SGD
# optimized by Adam.

# %%
train, val, test = digits(seed=0)
model = MLP(sizes=(64, 32, 10))
params0 = model.init(seed=0)
batcher = Batcher(len(train.x), batch_size=64, seed=0)
T = 200
batches = [batcher.batch(train, t) for t in range(T)]

tower = Tower(SGD(0.01, optimizer=Adam(0.03, optimizer=Adam(0.01))), params0, wrt="lr")
print("stack:", describe(tower), "  height", tower.height)
for batch in batches[:20]:
    tower.step(model.loss, batch.x, batch.y)  # loss and gradient, then one step of every level
print("after 20 steps:", describe(tower, values=True))
print("last hypergradients (unconstrained space):", tower.hypergrads)
assert tower.height == 2 and describe(tower) == "sgd / adam / adam"
assert len(tower.history[0]["lr"]) == 20 and tower.hparams[0]["lr"] != 0.01

# %% [markdown]
# `wrt="lr"` makes every level tune only the learning rate of the level
# below, so each level has one number, easy to plot. (The default, Chandra's
# choice, also tunes momentum and Adam's betas.)
#
# **Log space.** By default a tower tunes $\log\alpha$ rather than $\alpha$
# (`space="unconstrained"`; momenta and betas go through a logit). A
# learning rate then can never become negative, and a step of Adam on
# $\log\alpha$ multiplies $\alpha$ by about $e^{\pm\kappa}$, whatever the
# scale of $\alpha$: that is how a tower gets from $10^{-4}$ to $10^{-1}$ in a
# couple of hundred steps. The price is that $\alpha = 0$ is
# $\log\alpha = -\infty$, where nothing can move, and the tower says so:

# %%
try:
    Tower(SGD(0.0, optimizer=Adam(0.03)), params0)
    raise AssertionError("a zero learning rate should be refused in log space")
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## 2. Height 1 in the raw space is SGD-HD
#
# With `space="raw"` a tower tunes $\alpha$ itself, and SGD on $\alpha$ with
# step size $\beta$ is $\alpha_t = \alpha_{t-1} - \beta h_t$: notebook 04's
# SGD-HD rule. The two implementations share no code for it, so agreement is a
# real check. (In raw space a start at $\alpha = 0$ is allowed.)

# %%
for lr0 in (0.0, 0.05):
    raw = Tower(SGD(lr0, optimizer=SGD(1e-2)), params0, space="raw")
    hd = SGDHD(params0, lr=lr0, hypergrad_lr=1e-2)
    for batch in batches[:30]:
        raw.step(model.loss, batch.x, batch.y)
        hd.step(grad(model.loss)(hd.params, batch.x, batch.y))
    gap = max(np.max(np.abs(raw.params[k] - hd.params[k])) for k in params0)
    print(f"from lr {lr0}: tower lr {raw.hparams[0]['lr']:.10f}, SGDHD lr {hd.lr:.10f}, "
          f"largest parameter difference {gap:.1e}")
    assert np.isclose(raw.hparams[0]["lr"], hd.lr, rtol=1e-12, atol=0) and hd.lr > 0
    assert gap < 1e-12

# %% [markdown]
# ## 3. Sensitivity to the initial learning rate, against height
#
# The experiment of notebook 04 again, now with towers. Model, data and batches
# are the same (an MLP 64 → 32 → 10 on digits, 200 steps of batch 64). Level 0
# is SGD from five initial learning rates, $10^{-4}$ to $1$, each ten times the
# last. On top of it:
#
# | height | stack |
# |---|---|
# | 0 | SGD($\alpha_0$) |
# | 1 | SGD($\alpha_0$) / Adam(0.03) |
# | 2 | SGD($\alpha_0$) / Adam(0.03) / Adam(0.01) |
# | 3 | SGD($\alpha_0$) / Adam(0.03) / Adam(0.01) / Adam(0.003) |
#
# Each level up takes smaller steps: it steers the level below, which should
# change more slowly than what that level itself steers. The values are round
# numbers, not tuned; section 4 varies the first.

# %%
LRS = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
KAPPAS = [0.03, 0.01, 0.003]  # the initial step sizes of levels 1, 2, 3
HEIGHTS = [0, 1, 2, 3]


def stack(lr, kappas):
    """SGD(lr), optimized by Adam(kappas[0]), optimized by Adam(kappas[1]), ..."""
    hyper = None
    for kappa in reversed(kappas):
        hyper = Adam(kappa, optimizer=hyper)
    return SGD(lr, optimizer=hyper)


def train_tower(lr, kappas):
    tower = Tower(stack(lr, kappas), params0, wrt="lr")
    for batch in batches:
        tower.step(model.loss, batch.x, batch.y)
    lr_path = np.array(tower.history[0]["lr"]) if tower.height else np.full(T, lr)
    return {"final": float(model.loss(tower.params, train.x, train.y)),
            "val_acc": model.accuracy(tower.params, val.x, val.y),
            "lr": lr_path}


start = time.perf_counter()
runs = {}
with warnings.catch_warnings():
    warnings.simplefilter("error")  # a hyperparameter leaving its range would be an error here
    for height in HEIGHTS:
        for lr in LRS:
            runs[height, lr] = train_tower(lr, KAPPAS[:height])
print(f"{len(runs)} runs of {T} steps in {time.perf_counter() - start:.1f} s\n")

print(f"{'height':>6s} {'initial lr':>10s} {'final lr':>9s} {'train loss':>10s} {'val acc':>8s}")
for (height, lr), r in runs.items():
    print(f"{height:6d} {lr:10g} {r['lr'][-1]:9.4f} {r['final']:10.3f} {r['val_acc']:8.3f}")

# %% [markdown]
# As in notebook 04, one number per height: the standard deviation over the
# initial learning rates of $\log(\text{final training loss})$ (0 = the start
# does not matter at all).

# %%
spread = {h: float(np.std(np.log([runs[h, lr]["final"] for lr in LRS]))) for h in HEIGHTS}
for h in HEIGHTS:
    print(f"height {h}: std of log final loss over initial lrs = {spread[h]:.2f}")
for h in (1, 2, 3):
    assert spread[h] < 0.5 * spread[0], (h, spread)

# the tuned learning rates forget where they started: the initial ones span a
# factor 10,000, the final ones a factor below 10 at every height >= 1
for h in (1, 2, 3):
    final_lrs = np.array([runs[h, lr]["lr"][-1] for lr in LRS])
    print(f"height {h}: final lrs {np.round(final_lrs, 3)}")
    assert final_lrs.max() / final_lrs.min() < 10

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 4), gridspec_kw={"width_ratios": [1.4, 1, 1, 1]})
ax = axes[0]
for h in HEIGHTS:
    ax.plot(LRS, [runs[h, lr]["final"] for lr in LRS], "o-", color=f"C{h}",
            label=f"height {h} (spread {spread[h]:.2f})")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("initial learning rate α₀")
ax.set_ylabel(f"training loss after {T} steps")
ax.set_title("Final loss against the initial lr")
ax.legend(fontsize=8)
steps = np.arange(1, T + 1)
for ax, h in zip(axes[1:], (1, 2, 3)):
    for i, lr in enumerate(LRS):
        ax.plot(steps, runs[h, lr]["lr"], color=plt.cm.viridis(i / (len(LRS) - 1)),
                label=f"α₀ = {lr:g}")
    ax.set_yscale("log")
    ax.set_ylim(5e-5, 3)
    ax.set_xlabel("step")
    ax.set_title(f"height {h}: learning rate α_t")
axes[1].set_ylabel("learning rate (log scale)")
axes[1].legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# Height 0 is plain SGD: its final loss changes by a factor of more than 30
# across the grid. From height 1 on the curve is nearly flat. The panels on the
# right show why. From every small start the learning rate climbs by a
# roughly constant factor per step (a straight line on the log scale: Adam
# moves $\log\alpha$ by about $\kappa_1$ per step), overshoots, carried by
# Adam's momentum, and comes back down; from $\alpha_0 = 1$ it comes down
# directly. After 200 steps the five learning rates are within a factor of 10
# of each other, where they started a factor of 10,000 apart.
#
# Taller towers climb faster: while the hypergradient of $\alpha$ keeps its
# sign, level 2 raises level 1's step size $\kappa_1$. But here the final
# spread of heights 2 and 3 is about that of height 1, not clearly smaller:
# the faster climb also overshoots further (at height 3 the run from
# $10^{-4}$ peaks above 1 and settles lower than the others). Most of the gain
# comes from the first level.
#
# The one-step hypergradient is greedy, as in notebook 04, so a tower too
# settles on a learning rate below the best constant one for these 200 steps
# (SGD at $\alpha = 1$).

# %%
def first_step_above(path, level=0.1):
    return int(np.argmax(path > level)) + 1


climb = {h: first_step_above(runs[h, LRS[0]]["lr"]) for h in (1, 2, 3)}
print(f"from lr {LRS[0]:g}, the step at which lr first exceeds 0.1, per height: {climb}")
assert runs[0, LRS[0]]["final"] > 30 * runs[0, LRS[-1]]["final"]
assert climb[2] < 0.8 * climb[1] and climb[3] < 0.8 * climb[1]

# %%
print(f"SGD at lr = 1: {runs[0, 1.0]['final']:.3f}; best tower started from lr <= 0.1: "
      f"{min(runs[h, lr]['final'] for h in (1, 2, 3) for lr in LRS[:-1]):.3f}")
assert runs[0, 1.0]["final"] < min(runs[h, lr]["final"] for h in (1, 2, 3) for lr in LRS[:-1])

# %% [markdown]
# ## 4. Sensitivity to the step size of the first hyper-level
#
# Height 1 replaced the choice of $\alpha_0$ by the choice of level 1's step
# size $\kappa_1$. Is *that* choice delicate? Start SGD at the poor
# $\alpha_0 = 10^{-3}$ and vary $\kappa_1$ over $\{0.003, 0.01, 0.03, 0.1\}$.
# At height 1, $\kappa_1$ is fixed; at heights 2 and 3 it is tuned in turn, by
# Adam(0.01) (and that by Adam(0.003)), the same upper levels as above. The
# runs with $\kappa_1 = 0.03$ are the ones from section 3.

# %%
K1S = [0.003, 0.01, 0.03, 0.1]
LR0 = 1e-3
start = time.perf_counter()
k_runs = {}
with warnings.catch_warnings():
    warnings.simplefilter("error")
    for h in (1, 2, 3):
        for k1 in K1S:
            k_runs[h, k1] = (runs[h, LR0] if k1 == KAPPAS[0]
                             else train_tower(LR0, [k1] + KAPPAS[1:h]))
print(f"{len(k_runs) - 3} more runs in {time.perf_counter() - start:.1f} s\n")

k_spread = {h: float(np.std(np.log([k_runs[h, k1]["final"] for k1 in K1S]))) for h in (1, 2, 3)}
for h in (1, 2, 3):
    losses = [k_runs[h, k1]["final"] for k1 in K1S]
    print(f"height {h}: final losses {np.round(losses, 3)}, spread over κ1 {k_spread[h]:.2f}")
assert k_spread[2] < 0.7 * k_spread[1]
assert k_spread[3] < k_spread[2]

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
for h in (1, 2, 3):
    ax.plot(K1S, [k_runs[h, k1]["final"] for k1 in K1S], "o-", color=f"C{h}",
            label=f"height {h} (spread {k_spread[h]:.2f})")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("initial step size κ₁ of level 1 (Adam on log α)")
ax.set_ylabel(f"training loss after {T} steps")
ax.set_title(f"SGD from α₀ = {LR0:g}: sensitivity to κ₁")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# At height 1 a too small $\kappa_1$ is as bad as a too small $\alpha_0$ was
# at height 0: in 200 steps $\alpha$ stays below 0.02, far from the values
# near 0.2 that the other runs find. With a level above to tune $\kappa_1$,
# small values are rescued, and a third level helps further. This is Chandra
# et al.'s observation in miniature: each level makes the result less
# sensitive to the initial hyperparameters of the levels below it, and what
# remains to choose is the top, whose influence is smaller (which is why we let
# the step sizes shrink going up).

# %%
for k1 in (0.003, 0.01):
    print(f"height 1, κ1 = {k1}: largest lr reached {k_runs[1, k1]['lr'].max():.4f}")
    assert k_runs[1, k1]["lr"].max() < 0.02

# %%
print(f"notebook ran in {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# **Takeaways**
#
# * A hyperoptimizer tower is a stack of ordinary optimizers, each tuning the
#   hyperparameters of the one below from one-step hypergradients, computed
#   here in forward mode at a cost that grows with the number of tuned
#   hyperparameters, not with the length of training.
# * A height-1 tower in the raw space is exactly hypergradient descent
#   (notebook 04); in log space the learning rate stays positive and moves by
#   factors, so it can cross orders of magnitude quickly.
# * On digits, going from height 0 to height 1 removes most of the sensitivity
#   to the initial learning rate; taller towers make the result less
#   sensitive to the first hyper-level's own step size.
# * Towers do not remove the greedy, one-step view of the hypergradient: the
#   learning rate they settle on is good, but not the best for the whole run.
