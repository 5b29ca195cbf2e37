"""hyperopt: hypergradient-based hyperparameter optimization on `autodiff`.

Part 1: differentiable optimizers (`optim`), range transforms, schedules,
online hypergradient descent (`hd`, `hd_auto`) and hyperoptimizer towers
(`towers`).  Part 2: embedded data (`data`) and models (`models`), whole-run
forward and reverse hypergradients (`hypergrad`), the outer tuning loop
(`tune`), the mode planner (`planner`), RTHO and MARTHE (`online`), and the
command line (`python -m hyperopt tune`, see `cli`).  Scale-out on Dask:
tangent chunks and tuning populations on workers (`distributed`,
`population`; dask is imported only when they are used).
"""
