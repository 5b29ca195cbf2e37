"""The main job (python -m hyperopt) runs and its hypergradient is right."""
import subprocess
import sys

import numpy as np
import pytest

from hyperopt import demo


def test_demo_hypergradient_matches_finite_differences():
    train, val = demo.load_data()
    params0 = demo.init_params()
    h = np.array([np.log(0.05), 0.0])
    from autodiff import jacfwd
    run = lambda hp: demo.unroll(hp, params0, train, val, steps=30)
    g = jacfwd(run)(h)
    eps = 1e-5
    fd = np.array([(run(h + eps * e) - run(h - eps * e)) / (2 * eps) for e in np.eye(2)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


def test_demo_main_runs(capsys):
    assert demo.main(["--steps", "20", "--hyper-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "hyper-step" in out and "finite difference" in out


@pytest.mark.parametrize("args", [["--steps", "-1"], ["--lr", "nan"], ["--momentum", "1.5"]])
def test_demo_bad_arguments_exit_2(args):
    r = subprocess.run([sys.executable, "-m", "hyperopt", *args], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "error" in r.stderr
