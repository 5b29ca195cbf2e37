"""Scale-out on Dask: tangent chunks and tuning populations on a two-worker process cluster.

One LocalCluster of two single-threaded worker *processes* serves the whole
module.  Workers are separate processes: the fixture hands them the jit backend
the suite runs with (tests/conftest.py: AUTODIFF_JIT_BACKEND=python), so their
numbers can be compared with this process's bit for bit.  Tests that SIGKILL a
worker wait for the nanny to bring it back before the next test uses the cluster.
"""
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from hyperopt.cli import main                                          # noqa: E402
from hyperopt.data import digits                                       # noqa: E402
from hyperopt.distributed import (NO_DASHBOARD, ClusterError,         # noqa: E402
                                  NondeterminismError, check_primals, connect)
from hyperopt.hypergrad import Setup, hypergradient                    # noqa: E402
from hyperopt.models import MLP                                        # noqa: E402
from hyperopt.optim import SGD, Adam                                   # noqa: E402
from hyperopt.population import grid, run_population                   # noqa: E402
from hyperopt.tune import Tuner                                        # noqa: E402
from test_cli import _env, _rows  # noqa: E402  (the command-line tests' helpers)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = ("seconds", "calibration_seconds")
H = {"lr": 0.05, "momentum": 0.5, "weight_decay": 1e-4}


@pytest.fixture(scope="module")
def cluster():
    env = {"AUTODIFF_JIT_BACKEND": os.environ.get("AUTODIFF_JIT_BACKEND", "python"),
           "OMP_NUM_THREADS": "1"}
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR, env=env,
                                  scheduler_kwargs=NO_DASHBOARD)
    yield lc
    lc.close()


@pytest.fixture
def client(cluster):
    c = distributed.Client(cluster)
    c.wait_for_workers(2, timeout=60)   # a worker killed by an earlier test is back
    yield c
    c.close()


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


def small(data, steps=20, **kw):
    return Setup(MLP((64, 8, 10)), data, SGD(lr=0.05, momentum=0.5), steps=steps,
                 batch_size=16, **kw)


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _kill_worker_running(client, key_part: str, deadline: float = 60.0) -> int:
    """SIGKILL the worker process that is running a task whose key contains key_part,
    as soon as one is; its pid."""
    pids = client.run(os.getpid)
    end = time.time() + deadline
    while time.time() < end:
        for addr, keys in client.processing().items():
            if any(key_part in str(k) for k in keys) and addr in pids:
                os.kill(pids[addr], signal.SIGKILL)
                return pids[addr]
        time.sleep(0.02)
    pytest.fail(f"no worker started a task {key_part!r}")


# -- tangent chunks --------------------------------------------------------------------

def test_chunked_hypergradient_equals_the_single_process_one_bit_for_bit(data, client):
    s = small(data)
    for chunk in (1, 2):
        local = hypergradient(s, H, chunk_size=chunk)
        remote = hypergradient(s, H, chunk_size=chunk, client=client)
        assert remote.value == local.value and remote.accuracy == local.accuracy
        for k in H:
            assert np.array_equal(remote.grads[k], local.grads[k]), (chunk, k)
            assert np.array_equal(remote.natural[k], local.natural[k])
    # no chunk_size: one chunk per worker (ceil(3 / 2) = 2 directions), the same numbers
    default = hypergradient(s, H, client=client)
    assert all(np.array_equal(default.grads[k], local.grads[k]) for k in H)


def test_chunks_whose_primals_differ_raise(data, client):
    check_primals([0.5, 0.5], [(0, 1), (1, 2)])
    with pytest.raises(NondeterminismError, match="directions 1..1 give 0.5000000000000001"):
        check_primals([0.5, 0.5000000000000001], [(0, 1), (1, 2)])

    # the chunks without direction 0 compute another loss (by one ulp), wherever they run:
    # the gathered chunks must be refused
    def skew(on: bool):
        import numpy as np
        import hyperopt.hypergrad as hg
        if on:
            hg._original_val_loss_of = hg.val_loss_of

            def skewed(setup, h, **kw):
                loss, acc = hg._original_val_loss_of(setup, h, **kw)
                if not np.any(h["lr"].tangents):
                    loss = loss * (1 + 2.0 ** -52)
                return loss, acc
            hg.val_loss_of = skewed
        elif hasattr(hg, "_original_val_loss_of"):
            hg.val_loss_of = hg._original_val_loss_of
    client.run(skew, True)
    try:
        with pytest.raises(NondeterminismError, match="not a pure function"):
            hypergradient(small(data, steps=5), H, chunk_size=1, client=client)
    finally:
        client.run(skew, False)


def test_a_killed_worker_does_not_change_the_hypergradient(data, client):
    s = small(data, steps=300)
    h = {"lr": 0.05, "momentum": 0.5}
    out = {}
    t = threading.Thread(target=lambda: out.update(
        hg=hypergradient(s, h, chunk_size=1, client=client)))
    t.start()
    killed = _kill_worker_running(client, "hypergradient-chunk-")
    t.join(120)
    assert "hg" in out
    assert killed not in client.run(os.getpid).values()   # the task ran again elsewhere
    local = hypergradient(s, h, chunk_size=1)
    assert out["hg"].value == local.value
    assert all(np.array_equal(out["hg"].grads[k], local.grads[k]) for k in h)


def test_a_setup_holding_lambdas_travels(data, client):
    from hyperopt.schedules import CosineWarmRestarts, scheduled

    class Lambdas:   # a local class whose methods are lambdas: plain pickle refuses it
        def __init__(self):
            self.inner = MLP((64, 8, 10))
            self.init = lambda seed, scale=1.0, dtype=np.float64: self.inner.init(
                seed, scale=scale, dtype=dtype)
            self.loss = lambda params, x, y: self.inner.loss(params, x, y)
    s = Setup(Lambdas(), data, scheduled(SGD(lr=0.05, momentum=0.5), CosineWarmRestarts(4)),
              steps=8, batch_size=16)
    h = {"lr": 0.05, "momentum": 0.5}
    local = hypergradient(s, h, chunk_size=1)
    remote = hypergradient(s, h, chunk_size=1, client=client)
    assert remote.value == local.value
    assert all(np.array_equal(remote.grads[k], local.grads[k]) for k in h)


def test_client_needs_forward_mode(data, client):
    with pytest.raises(ValueError, match="needs mode='forward'"):
        hypergradient(small(data, steps=2), H, mode="reverse", client=client)


# -- populations -----------------------------------------------------------------------

POP_STEPS, POP_ITERS = 40, 10


@pytest.fixture(scope="module")
def one_by_one(data):
    """The population of the tests below, its members run one by one in this process."""
    members = grid(2, {"lr": 0.02, "momentum": 0.5}, vary="both", seed=3)
    res = run_population(small(data, steps=POP_STEPS), members, POP_ITERS, mode="forward",
                         hyper_optimizer=Adam(lr=0.1))
    return members, res


def test_population_equals_its_members_run_one_by_one(data, client, one_by_one, tmp_path):
    members, seq = one_by_one
    assert [m.seed for m in members] == [3, 4]
    assert members[1].hparams["lr"] == pytest.approx(0.2) and members[0].hparams["lr"] == 0.002
    dist = run_population(small(data, steps=POP_STEPS), members, POP_ITERS, client=client,
                          checkpoint_dir=str(tmp_path), mode="forward",
                          hyper_optimizer=Adam(lr=0.1))
    assert strip(dist.rows()) == strip(seq.rows())
    assert [r.tuned_eval for r in dist.results] == [r.tuned_eval for r in seq.results]
    assert sorted(os.listdir(tmp_path)) == ["member_000.npz", "member_001.npz"]
    # and a member is a plain Tuner run with the member's seed and initial values
    m = members[1]
    alone = Tuner(small(data, steps=POP_STEPS, seed=m.seed, init_seed=m.seed), m.hparams,
                  mode="forward", hyper_optimizer=Adam(lr=0.1)).run(POP_ITERS)
    assert strip(alone.history) == strip(seq.results[1].history)
    rows = seq.rows()
    assert [r["member"] for r in rows] == [0] * POP_ITERS + [1] * POP_ITERS
    s = seq.summary()
    loss = seq.final_losses()
    assert s["best"] == loss.min() and s["best_member"] == int(np.argmin(loss))
    assert s["spread"] == loss.max() - loss.min() and s["median"] == np.median(loss)


def test_a_member_on_a_killed_worker_resumes_from_its_checkpoint(data, client, one_by_one,
                                                                 tmp_path):
    members, seq = one_by_one
    out = {}
    t = threading.Thread(target=lambda: out.update(res=run_population(
        small(data, steps=POP_STEPS), members, POP_ITERS, client=client,
        checkpoint_dir=str(tmp_path), mode="forward", hyper_optimizer=Adam(lr=0.1))))
    t.start()
    ck = tmp_path / "member_000.npz"
    end = time.time() + 60
    while not ck.exists() and time.time() < end:   # member 0 has checkpointed an iteration
        time.sleep(0.01)
    killed = _kill_worker_running(client, "population-member-0-")
    t.join(120)
    assert "res" in out
    assert killed not in client.run(os.getpid).values()
    res = out["res"]
    assert res.results[0].resumed_from >= 1        # from its checkpoint, not from scratch
    assert strip(res.rows()) == strip(seq.rows())
    assert [r.tuned_eval for r in res.results] == [r.tuned_eval for r in seq.results]


def test_grid():
    m = grid(3, {"lr": 0.01, "momentum": 0.5})
    assert [x.hparams["lr"] for x in m] == pytest.approx([0.001, 0.01, 0.1])
    assert all(x.seed is None and x.hparams["momentum"] == 0.5 for x in m)
    m = grid(2, {"momentum": 0.5}, vary="seed", seed=7)
    assert [x.seed for x in m] == [7, 8] and m[0].hparams == m[1].hparams == {"momentum": 0.5}
    assert grid(1, {"lr": 0.3})[0].hparams["lr"] == 0.3
    with pytest.raises(ValueError, match="not among the tuned"):
        grid(2, {"momentum": 0.5}, vary="lr")
    with pytest.raises(ValueError, match="positive"):
        grid(0, {"lr": 0.1})


# -- the command line ----------------------------------------------------------------

def test_a_killed_client_resumes_to_the_same_csv(tmp_path):
    args = [sys.executable, "-m", "hyperopt", "tune", "--population", "3", "--steps", "40",
            "--hyper-iters", "5", "--hidden", "8", "--mode", "forward", "--no-progress"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    # the reference: every member one by one in one process
    p = subprocess.run(args + ["--out", str(full)], env=_env(), cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "best" in p.stdout and "median" in p.stdout and "spread" in p.stdout
    # on a LocalCluster: kill the client (and so its cluster) once a member has checkpointed
    proc = subprocess.Popen(args + ["--workers", "2", "--out", str(cut)], env=_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 120
        while not list((cut / "members").glob("member_*.npz")) and time.time() < end:
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (cut / "population.csv").exists()
    # the client's machine alone resumes from the checkpoints the workers wrote
    p = subprocess.run(args + ["--resume", "--out", str(cut)], env=_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "resumed at it." in p.stdout
    assert strip(_rows(cut / "population.csv")) == strip(_rows(full / "population.csv"))
    rows = _rows(full / "population.csv")
    assert [r["member"] for r in rows] == ["0"] * 5 + ["1"] * 5 + ["2"] * 5
    assert (full / "population.png").stat().st_size > 10_000


@pytest.mark.parametrize("args,needle", [
    (["--population", "0"], "--population: expected a positive integer"),
    (["--workers", "2"], "--workers applies to --population N only"),
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler applies to --population N only"),
    (["--vary", "seed"], "--vary applies to --population N only"),
    (["--population", "2", "--workers", "0"], "--workers: expected a positive integer"),
    (["--population", "2", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
     "not both"),
    (["--population", "2", "--tune", "momentum"], "not among the tuned hyperparameters"),
    (["--population", "2", "--scheduler", "no-such-protocol://x"], "cannot connect to the Dask "
                                                                   "scheduler"),
    (["--population", "2", "--scheduler", "tcp://127.0.0.1:1"], "cannot connect to the Dask "
                                                                "scheduler at 'tcp://127.0.0.1:1'"),
])
def test_bad_arguments_one_line_exit_2(args, needle, capsys, tmp_path):
    import dask
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["tune", "--steps", "5", "--hidden", "8", "--no-progress", "--out",
                     str(tmp_path)] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert needle in err and len(err.splitlines()) == 1, err
    assert err.startswith("python -m hyperopt tune: error: ")


def test_workers_that_cannot_import_the_package_exit_2(cluster, client, capsys, tmp_path):
    def block(on: bool):
        import sys
        if on:
            sys.modules["_saved_hyperopt_distributed"] = sys.modules.get("hyperopt.distributed")
            sys.modules["hyperopt.distributed"] = None   # what a worker without it sees
        elif "_saved_hyperopt_distributed" in sys.modules:
            saved = sys.modules.pop("_saved_hyperopt_distributed")
            if saved is None:   # it had not been imported yet
                del sys.modules["hyperopt.distributed"]
            else:
                sys.modules["hyperopt.distributed"] = saved
    client.run(block, True)
    try:
        code = main(["tune", "--population", "2", "--scheduler", cluster.scheduler_address,
                     "--steps", "5", "--hidden", "8", "--no-progress", "--out", str(tmp_path)])
        with pytest.raises(ClusterError, match="cannot import this package"):
            connect(scheduler=cluster.scheduler_address, timeout=10)
    finally:
        client.run(block, False)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "2 of 2 workers of the cluster at" in err and "cannot import this package" in err
    assert "install dualtape" in err


def test_a_model_the_workers_cannot_import_travels_by_value(cluster, client, tmp_path,
                                                           capsys):
    # the module is on this process's path only: the workers were started before
    (tmp_path / "pop_user_model.py").write_text(textwrap.dedent("""
        import numpy as np

        class Ridge:
            def __init__(self, n_features):
                self.n = n_features

            def init(self, seed, scale, dtype):
                w = np.random.default_rng(seed).standard_normal(self.n) / np.sqrt(self.n)
                return {"w": (w * scale).astype(dtype)}

            def loss(self, params, x, y):
                return np.mean((x @ params["w"] - y) ** 2)
        """))
    sys.path.insert(0, str(tmp_path))
    try:
        code = main(["tune", "--model", "pop_user_model:Ridge", "--population", "2", "--steps",
                     "5", "--hyper-iters", "1", "--mode", "forward", "--no-progress",
                     "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "out")])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pop_user_model", None)
    assert code == 0, capsys.readouterr().err
    assert len(_rows(tmp_path / "out" / "population.csv")) == 2


def test_import_hyperopt_does_not_import_dask():
    code = ("import sys, hyperopt, hyperopt.cli, hyperopt.hypergrad, hyperopt.population, "
            "hyperopt.distributed; bad = [m for m in ('dask', 'distributed') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT, check=True, timeout=120)


def test_benchmark_quick_runs():
    p = subprocess.run([sys.executable, "benchmarks/distributed.py", "--quick"], env=_env(),
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    for needle in ("speed-up", "efficiency", "per-task overhead", "peak memory per worker",
                   "hypergradient", "population"):
        assert needle in p.stdout, needle
