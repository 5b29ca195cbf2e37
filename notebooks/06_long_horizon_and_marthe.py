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
# # 06 · Long horizons: whole-run hypergradients, learned schedules and MARTHE
#
# Two ways to get a hypergradient have appeared so far:
#
# * **notebook 03**: the derivative of the loss at the *end* of a training run
#   with respect to the learning rate, through every step of the run. Exact,
#   but one number per training run.
# * **notebook 04**: the derivative of the *next* loss with respect to the
#   *last* step's learning rate. Almost free, available at every step, so the
#   learning rate can adapt during a single run; but it only looks one step
#   ahead, and notebook 04 ended with a hint that this makes it settle on too
#   small a learning rate.
#
# This notebook is about the space between the two, on a real (small) model:
#
# 1. the whole-run hypergradient of a neural network with respect to several
#    hyperparameters at once, in forward mode (memory flat in the number of
#    steps), checked against reverse mode and finite differences;
# 2. using it to **learn a learning-rate schedule**, and comparing the schedule
#    it finds with step decay and cosine annealing;
# 3. **MARTHE** (Donini et al., 2020), an online method with a knob $\mu$ that
#    slides from the one-step hypergradient ($\mu = 0$) to the whole run so far
#    ($\mu = 1$, RTHO);
# 4. the **short-horizon bias** (Wu et al., 2018): why greedy, one-step
#    hypergradients shrink the learning rate too early, and what it costs.
#
# The task throughout: scikit-learn's 8×8 digits (1,077 training images, 360
# for validation, 360 for test), an MLP 64-32-10, plain SGD with minibatches of
# 16 examples for 300 steps. Small batches make the gradients noisy, which is
# what makes the learning rate interesting.

# %%
import gc
import time
import tracemalloc

import numpy as np
import matplotlib.pyplot as plt

from hyperopt import transforms
from hyperopt.data import digits
from hyperopt.hypergrad import Setup, hypergradient
from hyperopt.models import MLP
from hyperopt.online import MARTHE, RTHO
from hyperopt.optim import SGD, Adam
from hyperopt.schedules import CosineWarmRestarts, Schedule, StepDecay, scheduled
from hyperopt.tune import Tuner

notebook_start = time.perf_counter()

data = digits()
MODEL = MLP((64, 32, 10))
print(data)

# %% [markdown]
# ## 1. The whole-run hypergradient, K directions at once
#
# A `Setup` is one training run written as a function of its hyperparameters:
# model, data, optimizer, number of steps, batch size and seeds (the minibatch
# of step $t$ is a fixed function of $t$, so the same hyperparameters always
# give the same run, bit for bit). `hypergradient` returns the validation loss
# at the end of the run and its derivative with respect to the hyperparameters
# we name.
#
# With `mode="forward"`, each of the $K$ hyperparameters becomes one tangent
# direction of a dual number (notebook 01). The parameters *and the optimizer's
# momentum buffers* carry $K$ tangents from step to step, and each step's
# gradient is a reverse sweep over that step's small tape running on those
# duals (notebook 03). The tape is freed when the step ends, so memory does not
# grow with the number of steps $T$; time is about $(1 + K)$ plain runs.
# `mode="reverse"` records all $T$ steps on one tape and sweeps it back once:
# one sweep whatever $K$ is, but memory grows with $T$.
#
# Hyperparameters are differentiated in the coordinates a tuner steps in:
# $\log \eta$ for the learning rate, $\mathrm{logit}\,m$ for the momentum (so a
# step can never make either leave its range).
#
# Here: SGD with momentum, $T = 100$ steps, $K = 2$ (learning rate and momentum).

# %%
h_check = {"lr": 0.3, "momentum": 0.5}
setup_check = Setup(MODEL, data, SGD(**h_check), steps=100, batch_size=16)

fwd = hypergradient(setup_check, h_check, mode="forward")  # K = 2 tangents, one pass
rev = hypergradient(setup_check, h_check, mode="reverse")  # one tape of all 100 steps
print(f"validation loss after the run: {fwd.value:.6f}")
for k in h_check:
    print(f"d loss / d {'log lr' if k == 'lr' else 'logit momentum':15s} "
          f"forward {float(fwd.grads[k]):+.12f}   reverse {float(rev.grads[k]):+.12f}")

# %% [markdown]
# An independent check: central finite differences. Move one hyperparameter's
# unconstrained value by $\pm\varepsilon$, train twice more from scratch, and
# compare $\bigl(L(u + \varepsilon) - L(u - \varepsilon)\bigr) / 2\varepsilon$
# with the hypergradient. `hyperopt.transforms` maps between a value and its
# unconstrained coordinate ("positive": log and exp; "unit" intervals: logit
# and sigmoid).


# %%
def val_loss(setup, hparams=None):
    """Train ``setup`` from scratch with ``hparams``; the final validation loss."""
    return float(setup.evaluate(setup.train(hparams))[0])


eps = 1e-4
fd = {}
for k, value in h_check.items():
    c = setup_check.constraints[k]  # "positive" for lr, "unit_closed_open" for momentum
    u = transforms.forward(c, value)
    up = val_loss(setup_check, {**h_check, k: float(transforms.inverse(c, u + eps))})
    down = val_loss(setup_check, {**h_check, k: float(transforms.inverse(c, u - eps))})
    fd[k] = (up - down) / (2 * eps)
    print(f"{k:9s} forward {float(fwd.grads[k]):+.10f}   central difference {fd[k]:+.10f}")

for k in h_check:
    assert np.isclose(fwd.grads[k], rev.grads[k], rtol=1e-8, atol=0)  # same number, two modes
    assert np.isclose(fwd.grads[k], fd[k], rtol=1e-4, atol=1e-9)      # and the finite difference
assert np.isclose(fwd.value, val_loss(setup_check, h_check), rtol=1e-12)  # forward's value is the run's

# %% [markdown]
# **Memory.** Python's `tracemalloc` records the peak memory allocated while
# the hypergradient is computed, for runs of 25 and 100 steps. (The forward
# mode's step is recorded once by `jit` and replayed; the warm-up call below
# records it before measuring, so both rows measure the hypergradient alone.)


# %%
def peak_megabytes(steps, mode):
    setup = Setup(MODEL, data, SGD(**h_check), steps=steps, batch_size=16)
    if mode == "forward":
        hypergradient(setup, h_check, mode=mode)  # warm-up: jit records the step
    gc.collect()
    tracemalloc.start()
    hypergradient(setup, h_check, mode=mode)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


peaks = {(T, mode): peak_megabytes(T, mode) for T in (25, 100) for mode in ("forward", "reverse")}
print(f"{'steps':>6s} {'forward MB':>11s} {'reverse MB':>11s}")
for T in (25, 100):
    print(f"{T:6d} {peaks[T, 'forward']:11.2f} {peaks[T, 'reverse']:11.2f}")

assert peaks[100, "forward"] < 1.3 * peaks[25, "forward"]   # flat in T
assert peaks[100, "reverse"] > 2.5 * peaks[25, "reverse"]   # ~linear in T (4x the steps)
assert peaks[100, "reverse"] > 5 * peaks[100, "forward"]

# %% [markdown]
# Four times the steps: the forward-mode peak hardly moves, the reverse-mode
# tape grows about fourfold. For the long runs below (300 steps, and up to 6
# hyperparameters) forward mode is the natural choice; reverse mode wins when
# $K$ is large and $T$ short (one weight per training example, say).
#
# ## 2. Learning a learning-rate schedule
#
# The whole-run hypergradient can differentiate through anything the run does
# with a hyperparameter, including a schedule. `hyperopt.schedules` has
# the usual ones (`StepDecay`, `CosineWarmRestarts`, ...); their continuous
# parameters become hyperparameters of the setup. Instead of picking a shape,
# let us make the shape itself the hyperparameter: a **piecewise-constant**
# schedule, with the run cut into 6 phases of 50 steps and one factor per
# phase,
#
# $$\eta_t = \eta_0 \, f_{\lfloor t / 50 \rfloor}, \qquad f_0, \dots, f_5 > 0 .$$
#
# A schedule only needs `defaults` and `constraints` (its continuous
# parameters and their ranges) and `_lr(t, base_lr, h)`. `t` is a Python int
# when the step runs eagerly, and an integer array when `jit` records the step
# (notebook 03's replay), so the array branch selects the phase with
# `np.where`, which passes the chosen factor's tangent through.


# %%
class PiecewiseConstant(Schedule):
    """``base_lr * f_i`` during phase ``i``: ``phases`` equal phases over ``total`` steps."""

    def __init__(self, total: int, phases: int):
        self.length = -(-total // phases)  # steps per phase, rounded up
        self.phases = phases
        self.defaults = {f"f{i}": 1.0 for i in range(phases)}
        self.constraints = {f"f{i}": "positive" for i in range(phases)}  # tuned as log f_i

    def phase(self, t: int) -> int:
        return min(t // self.length, self.phases - 1)

    def _lr(self, t, base_lr, h):
        if isinstance(t, (int, np.integer)):          # eager: pick the factor in Python
            return base_lr * h[f"f{self.phase(int(t))}"]
        factor = h["f0"]                              # jit: t is an array, select with np.where
        for i in range(1, self.phases):
            factor = np.where(t >= i * self.length, h[f"f{i}"], factor)
        return base_lr * factor


T, BATCH, LR0, PHASES = 300, 16, 0.3, 6
schedule = PiecewiseConstant(T, PHASES)
setup_sched = Setup(MODEL, data, scheduled(SGD(lr=LR0), schedule), steps=T, batch_size=BATCH)
print(setup_sched.optimizer)
print(f"lr at steps 0, 50, 299 with f = 1, 2, ..., 6:",
      [schedule(t, LR0, {f"f{i}": i + 1.0 for i in range(PHASES)}) for t in (0, 50, 299)])

# %% [markdown]
# All factors start at 1: a constant learning rate $\eta_0 = 0.3$ (about the
# best constant value for this run). A `Tuner` then repeats: train from
# scratch carrying $K = 6$ tangents, take the hypergradient of the final
# validation loss with respect to $\log f_0, \dots, \log f_5$, and step Adam
# on those. Twelve hyper-iterations, each a full forward-mode run.

# %%
t0 = time.perf_counter()
tuner = Tuner(setup_sched, {f"f{i}": 1.0 for i in range(PHASES)}, mode="forward",
              hyper_optimizer=Adam(lr=0.1))
tuned = tuner.run(12)
tune_seconds = time.perf_counter() - t0
for row in tuned.history:
    print(f"iteration {row['iteration']:2d}  lr per phase "
          + " ".join(f"{LR0 * row[f'f{i}']:.3f}" for i in range(PHASES))
          + f"   val loss {row['val_loss']:.4f}")
print(f"{len(tuned.history)} hyper-iterations in {tune_seconds:.1f} s; "
      f"best: iteration {tuned.best_iteration}")
tuned_f = {k: tuned.tuned[k] for k in schedule.defaults}  # the schedule's own parameters
tuned_lrs = np.array([LR0 * tuned_f[f"f{i}"] for i in range(PHASES)])

# %% [markdown]
# Now the hand-designed baselines, each from the same initial learning rate
# $\eta_0 = 0.3$: constant, step decay (×0.3 every 100 steps) and cosine
# annealing to 0 over the run. The test loss is reported too: the tuner only
# ever saw the validation set, so the test set tells us whether the tuned
# schedule merely fits the validation examples.


# %%
def schedule_setup(sched, lr):
    return Setup(MODEL, data, scheduled(SGD(lr=lr), sched), steps=T, batch_size=BATCH)


def final_losses(setup, hparams=None):
    params = setup.train(hparams)
    return float(setup.evaluate(params, "val")[0]), float(setup.evaluate(params, "test")[0])


BASELINES = {
    "constant": lambda: StepDecay(T, 1.0),        # gamma = 1: never decays
    "step decay": lambda: StepDecay(100, 0.3),    # x0.3 at steps 100 and 200
    "cosine": lambda: CosineWarmRestarts(T),      # one cosine from lr down to 0
}
results = {f"{name} (lr {LR0})": final_losses(schedule_setup(make(), LR0))
           for name, make in BASELINES.items()}
results["tuned piecewise"] = (tuned.tuned_eval["val_loss"], tuned.tuned_eval["test_loss"])
# the same shapes, started instead from the highest learning rate the tuner chose
peak = float(tuned_lrs.max())
for name in ("step decay", "cosine"):
    results[f"{name} (lr {peak:.2f})"] = final_losses(schedule_setup(BASELINES[name](), peak))

print(f"{'schedule':26s} {'val loss':>9s} {'test loss':>9s}")
for name, (v, te) in results.items():
    print(f"{name:26s} {v:9.4f} {te:9.4f}")

# %%
steps = np.arange(T)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
ax = axes[0]
for name, make in BASELINES.items():
    sched = make()
    ax.plot(steps, [sched(int(t), LR0) for t in steps], label=f"{name}, lr {LR0}")
ax.plot(steps, [schedule(int(t), LR0, tuned_f) for t in steps], "k", lw=2.5,
        label="tuned piecewise")
ax.plot(steps, [CosineWarmRestarts(T)(int(t), peak) for t in steps], ":", color="C2",
        label=f"cosine, lr {peak:.2f}")
ax.set_xlabel("training step")
ax.set_ylabel("learning rate")
ax.set_title("schedules")
ax.legend(fontsize=8)
ax = axes[1]
ax.plot([r["val_loss"] for r in tuned.history], "ko-", label="tuned piecewise (per hyper-iteration)")
for i, name in enumerate(BASELINES):
    ax.axhline(results[f"{name} (lr {LR0})"][0], color=f"C{i}", ls="--", label=f"{name}, lr {LR0}")
ax.axhline(results[f"cosine (lr {peak:.2f})"][0], color="C2", ls=":", label=f"cosine, lr {peak:.2f}")
ax.set_xlabel("hyper-iteration")
ax.set_ylabel("validation loss after 300 steps")
ax.set_title("final validation loss")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# What the hypergradient found, in two parts:
#
# * **a higher level.** Every phase but the last moved well above
#   $\eta_0 = 0.3$: the constant starting point was too timid for a 300-step run.
# * **an anneal at the end.** The last phase dropped far below the others.
#   A large learning rate makes fast progress but leaves the parameters
#   bouncing around in the minibatch noise; a short low-lr phase at the end
#   settles them, and the validation loss is measured right after it.
#
# Both are well-known rules of thumb (warm/high then anneal), here derived from
# the data by differentiation. Started from the same $\eta_0$, step decay and
# cosine are *worse* than the constant schedule: they lower a learning rate
# that was already too low. Given the tuner's peak learning rate instead, they
# close most of the gap to the tuned schedule: most of what the tuner learned
# is the level and the late anneal, not the exact shape.

# %%
const_val, const_test = results[f"constant (lr {LR0})"]
best_baseline_val = min(results[f"{n} (lr {LR0})"][0] for n in BASELINES)
best_baseline_test = min(results[f"{n} (lr {LR0})"][1] for n in BASELINES)
tuned_val, tuned_test = results["tuned piecewise"]
assert tuned_val < 0.9 * best_baseline_val      # the tuned schedule beats all three baselines
assert tuned_test < best_baseline_test          # on held-out test data too
assert tuned_lrs[:-1].mean() > 1.5 * LR0        # it raised the level ...
assert tuned_lrs[-1] < 0.5 * tuned_lrs[:-1].min()  # ... and annealed in the last phase
for name in ("step decay", "cosine"):             # the level it found helps the baselines too
    assert results[f"{name} (lr {peak:.2f})"][0] < results[f"{name} (lr {LR0})"][0] - 0.03

# %% [markdown]
# ## 3. MARTHE: online, with a discounted memory
#
# The tuner above trained the model 12 times. Can the learning rate instead be
# adapted *during* one run, using more than one step of hindsight?
#
# Write one training step as $s_t = \Phi_t(s_{t-1}, \lambda)$, where the state
# $s$ holds the parameters and the optimizer's buffers and $\lambda$ the
# hyperparameters (here $\log \eta$). The tangent $Z_t = ds_t / d\lambda$ obeys
# the chain rule
#
# $$Z_t = A_t Z_{t-1} + B_t, \qquad A_t = \frac{\partial \Phi_t}{\partial s},
# \quad B_t = \frac{\partial \Phi_t}{\partial \lambda},$$
#
# which is exactly what the forward mode of section 1 computes, and
# $\langle \nabla E_{\text{val}}(w_t), Z_t \rangle$ is the derivative of the
# current validation loss with respect to $\lambda$, through the run so far.
# **RTHO** (Franceschi et al., 2017) takes a hypergradient step on $\lambda$
# with it at every step, while training continues. **MARTHE** discounts the
# past:
#
# $$Z_t = \mu\, A_t Z_{t-1} + B_t, \qquad 0 \le \mu \le 1 .$$
#
# $\mu = 1$ is RTHO; $\mu = 0$ leaves $Z_t = B_t$, the one-step hypergradient
# of notebook 04 (with the validation loss instead of the next minibatch's);
# in between, an influence $k$ steps back is weighted by $\mu^k$: a horizon of
# about $1 / (1 - \mu)$ steps. `mu="adaptive"` follows the paper's heuristic,
# which picks $\mu$ at each step from how well the validation and training
# gradients agree. In the library, nothing of this is derived by hand: each
# step runs the ordinary training step on dual numbers whose tangents are
# $\mu Z_{t-1}$ and the identity.
#
# First a consistency check that ties this to section 1: with the
# hyper-learning rate set to 0 (nothing moves), RTHO's hypergradient at the
# last step is the whole-run hypergradient computed there, through the
# momentum buffers too.

# %%
frozen = RTHO(setup_check, h_check, wrt=("lr", "momentum"), hypergrad_lr=0.0).run()
last = frozen.history[-1]
print(f"RTHO after 100 steps: {last['h0']:+.12f} {last['h1']:+.12f}")
print(f"whole-run forward:    {float(fwd.grads['lr']):+.12f} {float(fwd.grads['momentum']):+.12f}")
assert np.isclose(last["h0"], fwd.grads["lr"], rtol=1e-8, atol=0)
assert np.isclose(last["h1"], fwd.grads["momentum"], rtol=1e-8, atol=0)

# %% [markdown]
# Now let the learning rate move. Plain SGD, the same 300 steps of batch 16,
# every run starting from $\eta = 0.3$ with the same hyper-learning rate
# $\beta = 0.1$ on $\log \eta$ (one hyper-step per training step); only $\mu$
# differs.
#
# (The online methods change the learning rate at every step; the `jit`-ed
# training step takes it as an input, so one recorded program serves every
# step.)

# %%
setup_online = Setup(MODEL, data, SGD(lr=LR0), steps=T, batch_size=BATCH)
HYPER_LR = 0.1
MUS = [0.0, 0.9, 1.0, "adaptive"]
online = {}
for mu in MUS:
    t0 = time.perf_counter()
    online[mu] = MARTHE(setup_online, {"lr": LR0}, mu=mu, hypergrad_lr=HYPER_LR).run()
    lrs = [r["lr"] for r in online[mu].history]
    print(f"mu = {str(mu):8s}  lr: start {LR0}, end {lrs[-1]:.3f}   final val loss "
          f"{online[mu].val_loss:.4f}   ({time.perf_counter() - t0:.1f} s)")


def lr_path(run):
    return np.array([r["lr"] for r in run.history])


LABEL = {0.0: "mu = 0 (one-step, HD-val)", 0.9: "mu = 0.9", 1.0: "mu = 1 (RTHO)",
         "adaptive": "mu adaptive"}

# %%
tuned_path = np.array([schedule(int(t), LR0, tuned_f) for t in steps])
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
ax = axes[0]
for i, mu in enumerate(MUS):
    ax.plot(steps + 1, lr_path(online[mu]), color=f"C{i}", label=LABEL[mu])
ax.plot(steps, tuned_path, "k--", lw=1.5, label="tuned schedule (section 2)")
ax.axhline(LR0, color="grey", lw=0.8)
ax.set_xlabel("training step")
ax.set_ylabel("learning rate")
ax.set_ylim(0, 1.9)
ax.set_title(f"learning rate during the run (beta = {HYPER_LR})")
ax.legend(fontsize=8, loc="upper right")
ax = axes[1]
for i, mu in enumerate(MUS):
    v = np.array([r["val_loss"] for r in online[mu].history])
    ax.plot(steps[9:] + 1, np.convolve(v, np.ones(10) / 10, mode="valid"), color=f"C{i}",
            label=LABEL[mu])
ax.set_yscale("log")
ax.set_ylim(0.1, 3)
ax.set_xlabel("training step")
ax.set_ylabel("validation loss (average of the last 10 steps)")
ax.set_title("validation loss during the run")
ax.legend(fontsize=8)
ax = axes[2]
mu_path = np.array([r["mu"] for r in online["adaptive"].history])
ax.plot(steps + 1, mu_path, ".", ms=3, color="C3")
ax.set_xlabel("training step")
ax.set_ylabel("mu")
ax.set_title("adaptive mu")
plt.tight_layout()
plt.show()
print(f"adaptive mu: 0 at {np.mean(mu_path == 0):.0%} of steps, 1 at {np.mean(mu_path == 1):.0%}")

# %%
first = slice(0, T // 3)
early = {mu: lr_path(online[mu])[first].mean() for mu in MUS}
for mu in MUS:
    print(f"{LABEL[mu]:26s} mean lr over the first 100 steps {early[mu]:.3f}")
assert lr_path(online[0.0])[-1] < 0.8 * LR0       # the one-step hypergradient lowers the lr
assert lr_path(online[1.0])[-1] > 1.3 * LR0       # the whole-history one raises it
assert early[0.0] < 0.8 * early[0.9] and early[0.9] < 0.8 * early[1.0]  # ordered by mu

# %% [markdown]
# The longer the memory, the higher the learning rate goes: $\mu = 0$ pulls it
# down from the start, $\mu = 1$ pushes it up towards the level the whole-run
# tuner found, and $\mu = 0.9$ (a horizon of about 10 steps) sits in between.
# The adaptive heuristic, in this setup, mostly jumps between the two ends
# ($z = \eta / \langle\nabla E_{\text{val}}, g_t\rangle$ is clipped to
# $[0, 1]$, and here it is rarely strictly inside), and spends most steps at
# $\mu = 0$, so its learning rate follows the greedy one closely.
#
# ## 4. The short-horizon bias
#
# Why does the one-step hypergradient pull the learning rate down? Expand the
# validation loss one SGD step ahead, with minibatch gradient $g$:
#
# $$E_{\text{val}}(w - \eta g) \approx E_{\text{val}}(w)
#   - \eta\, \nabla E_{\text{val}} \cdot g + \tfrac12 \eta^2\, g^\top H g ,$$
#
# minimized by $\eta^\star = \nabla E_{\text{val}} \cdot g \,/\, g^\top H g$.
# The minibatch noise in $g$ does not help the numerator (it is uncorrelated
# with $\nabla E_{\text{val}}$ on average) but adds to the denominator, in the
# directions of high curvature most of all. As training goes on the signal
# shrinks and the noise does not, so the greedy $\eta^\star$ keeps falling.
# Wu, Ren, Liao and Grosse ("Understanding Short-Horizon Bias in Stochastic
# Meta-Optimization", ICLR 2018) showed on a noisy quadratic that this is
# systematic: a learning rate tuned for a short horizon decays too early, and
# the long-run loss suffers. Over a long horizon, a large step is worth its
# noise: it makes progress along the low-curvature directions that pays off
# many steps later, and the noise can be removed by annealing at the end, which
# is exactly the schedule of section 2.
#
# If this is a property of the greedy *signal* rather than of the step size
# $\beta$, following that signal more closely (a larger $\beta$) should lower
# the learning rate sooner and hurt more. Two more greedy runs:

# %%
greedy = {HYPER_LR: online[0.0]}
for beta in (0.3, 1.0):
    greedy[beta] = MARTHE(setup_online, {"lr": LR0}, mu=0.0, hypergrad_lr=beta).run()
for beta, run in greedy.items():
    p = lr_path(run)
    print(f"mu = 0, beta = {beta:3}: mean lr over the first 100 steps {p[first].mean():.3f}, "
          f"at the end {p[-1]:.3f}, final val loss {run.val_loss:.4f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
ax = axes[0]
for j, (beta, run) in enumerate(greedy.items()):
    ax.plot(steps + 1, lr_path(run), color=plt.cm.Blues(0.45 + 0.25 * j),
            label=f"mu = 0, beta = {beta}")
ax.plot(steps + 1, lr_path(online[1.0]), color="C2", label=f"mu = 1 (RTHO), beta = {HYPER_LR}")
ax.plot(steps, tuned_path, "k--", lw=1.5, label="whole-run tuned schedule")
ax.axhline(LR0, color="grey", lw=0.8)
ax.set_yscale("log")
ax.set_xlabel("training step")
ax.set_ylabel("learning rate")
ax.set_title("greedy learning rates decay early")
ax.legend(fontsize=8)
ax = axes[1]
bars = {"tuned schedule (12 runs)": tuned_val, f"constant lr {LR0}": const_val}
bars.update({f"mu = 0, beta = {b}": r.val_loss for b, r in greedy.items()})
bars.update({f"mu = 0.9, beta = {HYPER_LR}": online[0.9].val_loss,
             f"mu = 1 (RTHO), beta = {HYPER_LR}": online[1.0].val_loss,
             f"mu adaptive, beta = {HYPER_LR}": online["adaptive"].val_loss})
colors = ["k", "grey"] + [plt.cm.Blues(0.45 + 0.25 * j) for j in range(3)] + ["C1", "C2", "C3"]
ax.barh(range(len(bars)), list(bars.values()), color=colors)
ax.set_yticks(range(len(bars)))
ax.set_yticklabels(list(bars), fontsize=8)
ax.invert_yaxis()
ax.set_xlabel("validation loss after 300 steps")
ax.set_title("final validation loss")
plt.tight_layout()
plt.show()

# %%
g_early = {b: lr_path(r)[first].mean() for b, r in greedy.items()}
g_end = [lr_path(r)[-1] for r in greedy.values()]
tuned_early = tuned_path[first].mean()
print(f"mean lr over the first 100 steps: greedy {g_early[HYPER_LR]:.3f}, "
      f"RTHO {early[1.0]:.3f}, tuned schedule {tuned_early:.3f}")
print(f"final val loss: greedy {greedy[HYPER_LR].val_loss:.4f} / {greedy[0.3].val_loss:.4f} / "
      f"{greedy[1.0].val_loss:.4f} (beta 0.1 / 0.3 / 1), mu = 0.9 {online[0.9].val_loss:.4f}, "
      f"constant {const_val:.4f}, tuned schedule {tuned_val:.4f}")

# the greedy learning rate is low early, compared with the long-horizon ones
assert early[0.0] < 0.6 * early[1.0]
assert early[0.0] < 0.5 * tuned_early
# a larger beta follows the greedy signal further down
assert g_end[0] > g_end[1] > g_end[2] and g_end[2] < 0.5 * LR0
# and it costs: the long-horizon schedule ends far lower than greedy adaptation ...
assert tuned_val < greedy[HYPER_LR].val_loss - 0.03
# ... following the greedy signal closely is worse than not adapting at all ...
assert greedy[1.0].val_loss > const_val + 0.02
# ... and a longer memory (mu = 0.9) beats the one-step version online
assert online[0.9].val_loss < greedy[HYPER_LR].val_loss - 0.01

print(f"notebook ran in {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# What the numbers say, and what they do not:
#
# * The greedy rule ($\mu = 0$) lowers the learning rate from the first steps,
#   and the harder it follows its signal the lower it goes and the worse the
#   model ends up: with $\beta = 1$ it is worse than leaving the learning rate
#   alone. The whole-run optimum (section 2) does the opposite for most of the
#   run: a learning rate around three times higher, lowered only at the end.
#   That is the short-horizon bias.
# * A longer memory helps online: $\mu = 0.9$ ends below $\mu = 0$. But the
#   full memory is not automatically best: RTHO ($\mu = 1$) raises the
#   learning rate and keeps it high to the last step, since an online method
#   has no notion that the run is about to end and that an anneal would pay
#   off; its final loss is no better than $\mu = 0.9$'s here (and varies with
#   the seed). MARTHE's discount is a way to choose between these two failure
#   modes without a second run.
# * None of the online methods reaches the tuned schedule. It had 12 full
#   training runs and the exact hypergradient of the quantity that was
#   measured; the online methods had one run and a hypergradient of the
#   *current* validation loss.
#
# This is one small model on one data set, with one seed for the batches and
# the initial weights. The assertions check the qualitative picture with
# margins (greedy learning rates lowest early, the tuned schedule lowest at the
# end), not the exact numbers; when this notebook was written they also held
# with seeds 1, 2 and 3 for both (`Setup(..., seed=s, init_seed=s)`), which
# you can try by editing the `Setup` calls.
#
# **Takeaways**
#
# * Forward mode carries $K$ hyperparameter directions through a whole run in
#   memory that does not grow with the run's length, and agrees with reverse
#   mode and finite differences.
# * A whole-run hypergradient can learn the *shape* of a schedule. Here it
#   found "higher, then anneal": the level matters most, and the final anneal
#   exists because the loss is measured at the end.
# * Online methods trade exactness for a single run. The length of their
#   memory ($\mu$ in MARTHE) decides how far ahead they see; one-step methods
#   (HD, $\mu = 0$) are biased towards learning rates that are too small.

# %% [markdown]
# ## 5. Your own model on your own arrays
#
# Everything above used the library's reference models. A model of your own is
# any object with `init(seed, scale, dtype)` and `loss(params, x, y)` written
# in numpy (`accuracy` is optional; see the `hyperopt.models.Model` protocol),
# and your own data is a pair of arrays. Here: a linear regression
# written from scratch, on arrays made with numpy (they could come from
# `np.load` or a CSV file just as well), split with `Split.from_arrays`.

# %%
from hyperopt.data import Split



class LinearRegression:
    """y ~ x @ w + b, mean squared error: plain numpy, nothing from the library."""

    def __init__(self, n_features):
        self.n_features = n_features

    def init(self, seed, scale, dtype):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal(self.n_features) / np.sqrt(self.n_features)
        return {"w": w.astype(dtype) * scale, "b": np.zeros((), dtype)}

    def loss(self, params, x, y):
        r = x @ params["w"] + params["b"] - y
        return np.mean(r * r)


rng = np.random.default_rng(0)
X_user = rng.standard_normal((400, 8))
y_user = X_user @ rng.standard_normal(8) + 0.3 * rng.standard_normal(400)
user_data = Split.from_arrays(X_user, y_user, val=0.25, test=0.25, seed=0)

user_setup = Setup(LinearRegression(8), user_data, SGD(lr=0.005, momentum=0.5), steps=200,
                   batch_size=32)
h_user = {"lr": 0.005, "momentum": 0.5}
fwd_user = hypergradient(user_setup, h_user, mode="forward")
rev_user = hypergradient(user_setup, h_user, mode="reverse")
for k in h_user:
    assert np.isclose(fwd_user.grads[k], rev_user.grads[k], rtol=1e-8)
print("d(val loss)/d(log lr), d(val loss)/d(logit momentum):",
      fwd_user.grads["lr"], fwd_user.grads["momentum"])

tuner_user = Tuner(user_setup, h_user, hyper_optimizer=Adam(lr=0.3), mode="forward")
res_user = tuner_user.run(8)
print(f"val loss {res_user.initial_eval['val_loss']:.4f} -> {res_user.tuned_eval['val_loss']:.4f} "
      f"with lr {res_user.tuned['lr']:.4f}, momentum {res_user.tuned['momentum']:.3f}")
assert res_user.tuned_eval["val_loss"] < res_user.initial_eval["val_loss"]
assert np.isnan(res_user.tuned_eval["val_acc"])  # no accuracy method: reported as nan
