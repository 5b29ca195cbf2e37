"""The digits workload of the learning-rate sensitivity study (Baydin et al.'s setting,
scaled down): data, models, loss, optimizers behind one ``step`` interface, and the
batch sequence.  `benchmarks/hd_sensitivity.py` and the hd and radam paper modules
run on it, so their numbers are of the same runs."""
from __future__ import annotations

import math

import numpy as np

from autodiff.ops import logsumexp

from ..hd import SGDHD, AdamHD, SGDNHD
from ..hd_auto import HD
from ..optim import SGD, Adam, RAdam
from ..towers import Tower

BATCH = 64


# -- data and models -------------------------------------------------------------------

def load_data(seed: int = 0):
    from sklearn.datasets import load_digits
    d = load_digits()
    X = d.data.astype(np.float64) / 16.0
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(X))
    n_val = len(X) // 5
    val, tr = perm[:n_val], perm[n_val:]
    Y = np.eye(10)[y]
    return X[tr], Y[tr], y[tr], X[val], Y[val], y[val]


def init_logreg(rng):
    return {"W": np.zeros((64, 10)), "b": np.zeros(10)}


def logits_logreg(p, x):
    return x @ p["W"] + p["b"]


def init_mlp(rng):
    return {"W1": rng.standard_normal((64, 32)) / 8.0, "b1": np.zeros(32),
            "W2": rng.standard_normal((32, 10)) / math.sqrt(32), "b2": np.zeros(10)}


def logits_mlp(p, x):
    return np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


MODELS = {"logreg": (init_logreg, logits_logreg), "mlp": (init_mlp, logits_mlp)}


def make_loss(logits_fn):
    def loss(p, x, y1h):
        z = logits_fn(p, x)
        return -np.mean(np.sum(y1h * (z - logsumexp(z, axis=1, keepdims=True)), axis=1))
    return loss


# -- methods ---------------------------------------------------------------------------
# each factory: (lr, params0) -> object with .step(loss_fn, grad_fn, x, y) -> params

class Stateful:
    """Wraps an object with ``.step(grads)`` returning new params (SGDHD, HD, ...)."""

    def __init__(self, opt, params):
        self.opt, self.params = opt, params

    def step(self, loss_fn, grad_fn, x, y):
        self.params = self.opt.step(grad_fn(self.params, x, y))
        return self.params


class Pure:
    """A pure `hyperopt.optim` optimizer driven by init/update."""

    def __init__(self, opt, params):
        self.opt, self.params, self.state = opt, params, opt.init(params)

    def step(self, loss_fn, grad_fn, x, y):
        self.params, self.state = self.opt.update(grad_fn(self.params, x, y), self.state, self.params)
        return self.params


class TowerRunner:
    def __init__(self, stack, params):
        self.tower = Tower(stack, params, history=False)

    def step(self, loss_fn, grad_fn, x, y):
        self.tower.step(loss_fn, x, y)
        return self.tower.params


METHODS = {
    "SGD": lambda lr, p: Pure(SGD(lr), p),
    "SGD-HD": lambda lr, p: Stateful(SGDHD(p, lr=lr, hypergrad_lr=1e-3), p),
    "SGDN": lambda lr, p: Pure(SGD(lr, momentum=0.9, nesterov=True), p),
    "SGDN-HD": lambda lr, p: Stateful(SGDNHD(p, lr=lr, hypergrad_lr=1e-3, momentum=0.9), p),
    "Adam": lambda lr, p: Pure(Adam(lr), p),
    "Adam-HD": lambda lr, p: Stateful(AdamHD(p, lr=lr, hypergrad_lr=1e-8), p),
    "RAdam": lambda lr, p: Pure(RAdam(lr), p),
    "RAdam-HD": lambda lr, p: Stateful(HD(RAdam(lr), p, hypergrad_lr=1e-8), p),
    "Tower-2 (SGD/Adam/Adam)": lambda lr, p: TowerRunner(SGD(lr, optimizer=Adam(0.01, optimizer=Adam(0.01))), p),
    "Tower-3 (SGD/Adam/Adam/Adam)": lambda lr, p: TowerRunner(
        SGD(lr, optimizer=Adam(0.01, optimizer=Adam(0.01, optimizer=Adam(0.01)))), p),
}


def batch_indices(n: int, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out, perm, pos = [], rng.permutation(n), 0
    for _ in range(steps):
        if pos + BATCH > n:
            perm, pos = rng.permutation(n), 0
        out.append(perm[pos:pos + BATCH])
        pos += BATCH
    return out
