"""hyperopt: hypergradient-based hyperparameter optimization on `autodiff`.

The optimizers, online hypergradient descent, hyperoptimizer towers and
long-horizon tuning are being built (see docs/design.md).  What is here now:
`hyperopt.demo`, a forward hypergradient through a whole training run, which
is also what ``python -m hyperopt`` runs.
"""
