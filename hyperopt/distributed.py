"""Scale-out on Dask distributed: tangent chunks and tuning populations on workers.

Two kinds of work leave the process, each a pure function of picklable inputs:

* a chunk of a forward hypergradient's K tangent directions
  (``hypergradient(setup, h, mode="forward", chunk_size=c, client=client)``
  calls `forward_chunks`, which runs `hyperopt.hypergrad.chunk_task` per chunk): one whole training run carrying directions ``c0 .. c1-1``.  Every
  chunk runs the same primal training run, so every chunk's validation loss
  must agree bit for bit; chunks that disagree raise `NondeterminismError`.
  The gathered tangents are the single-process hypergradient's to the last
  bit (with ``AUTODIFF_JIT_BACKEND=python``; with the default backend, those
  of a process that computes it fresh, see below).
* one member of a tuning population (`hyperopt.population.member_task`, run
  by `hyperopt.population.run_population`): a `Tuner` run that checkpoints after
  every hyper-iteration and starts by loading its checkpoint when there is one.

Dask does all the scheduling: tasks are submitted with explicit keys, and a
worker that dies mid-task (SIGKILL, out of memory, a lost machine) has its
tasks rerun elsewhere by the scheduler.  A rerun chunk computes the same bits;
a rerun member resumes from its last checkpoint, not from scratch.

A `Setup` is sent once per call (scattered to every worker) without its jit
caches, as bytes pickled by cloudpickle (`pack_setup`), and every task trains
on its own unpickled copy, so what a task computes does not depend on what
its worker ran before.  With the default jit backend ("auto": Python
replays, then a numba-compiled step after 100 calls) that matters: a
compiled step may round the last bit differently from the replay, so a copy
that had compiled earlier would give other bits.

`connect` gives a client: ``workers=W`` starts a ``distributed.LocalCluster``
of W single-threaded worker processes on this machine (the ``AUTODIFF_*``
environment variables passed on); ``scheduler=ADDRESS`` joins a running
cluster (``dask scheduler`` on one machine, ``dask worker tcp://HOST:8786`` on
each of the others).  Either way every worker is checked to import this
package, in this client's version, before any work is sent; a cluster that
cannot be reached or cannot run the work raises `ClusterError` with a one-line
message.

``dask`` and ``distributed`` are imported inside the functions: ``import
hyperopt`` does not import them.  This module imports nothing of `hyperopt`:
the hypergradient and the population pass it the task to run.
"""
from __future__ import annotations

import math
import os
import uuid
from dataclasses import replace
from typing import Callable

import numpy as np

__all__ = ["ClusterError", "NondeterminismError", "connect", "close", "check_workers",
           "n_worker_threads", "fresh_setup", "pack_setup", "task_setup", "forward_chunks"]


# a LocalCluster without the dashboard; the scheduler's small HTTP server (health, metrics)
# on a free port of this machine only, not on 8787, which another cluster may hold
NO_DASHBOARD = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


class ClusterError(RuntimeError):
    """A Dask cluster that cannot be reached, has no workers, or whose workers cannot
    import this package (the message is one line, for the command line)."""


class NondeterminismError(RuntimeError):
    """Chunks of one forward hypergradient disagree on the validation loss of their
    common training run: the run is not a pure function of its inputs."""


def one_line(e) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# -- clusters ------------------------------------------------------------------------

def connect(*, workers: int | None = None, scheduler: str | None = None,
            timeout: float | None = None, env: dict | None = None):
    """A ``distributed.Client`` on a new LocalCluster of ``workers`` processes, or on the
    running cluster whose scheduler is at ``scheduler`` (exactly one of the two).

    ``timeout`` (seconds) bounds connecting to the scheduler and waiting for a
    first worker (default: Dask's connect timeout, ``distributed.comm.timeouts.connect``).
    ``env`` adds environment variables for LocalCluster workers.  Raises
    `ClusterError` (one line) for an address that cannot be reached, a cluster
    without workers, or workers that cannot import this package; close the
    client with `close`.
    """
    if (workers is None) == (scheduler is None):
        raise ValueError("give workers= (a LocalCluster) or scheduler= (an address), not both "
                         "or neither")
    import dask
    from dask.utils import parse_timedelta
    from distributed import Client
    if timeout is None:
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    if workers is not None:
        if not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        import logging
        from distributed import LocalCluster
        worker_env = {k: v for k, v in os.environ.items() if k.startswith("AUTODIFF_")}
        worker_env.update(env or {})
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR,
                               env=worker_env, scheduler_kwargs=NO_DASHBOARD)
        client = Client(cluster)
        where = f"the LocalCluster of {workers} worker processes"
    else:
        for attempt in range(3):
            try:
                client = Client(scheduler, timeout=timeout)
                break
            except AssertionError as e:   # Dask's handshake met an unexpected first message
                if attempt == 2:          # (seen on a busy scheduler): a transient state, retried
                    raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler!r}: "
                                       f"{one_line(e)} in Dask's handshake, three times") from None
            except Exception as e:   # OSError, TimeoutError, ValueError (a malformed address), ...
                raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler!r}: "
                                   f"{one_line(e)}") from None
        where = f"the cluster at {scheduler}"
    try:
        check_workers(client, timeout=timeout, where=where, address=scheduler)
    except BaseException:
        close(client)
        raise
    return client


def close(client) -> None:
    """Close ``client``, and its LocalCluster if `connect` started one."""
    if client is None:
        return
    cluster = getattr(client, "cluster", None)
    owned = cluster is not None and type(cluster).__name__ == "LocalCluster"
    try:
        client.close()
    finally:
        if owned:
            cluster.close()


def _import_probe() -> Callable:
    """A function that reports, on a worker, whether it imports this package.  It is
    built here (a local function), so it travels by value: unpickling it on a worker
    needs nothing of this package."""
    def probe():
        import importlib
        out = {}
        for name in ("autodiff", "hyperopt.hypergrad", "hyperopt.tune", "hyperopt.distributed"):
            try:
                m = importlib.import_module(name)
                out[name] = getattr(m, "__version__", "")
            except BaseException as e:   # noqa: B036 (reported, not handled)
                out[name] = "!" + " ".join(f"{type(e).__name__}: {e}".split())
        return out
    return probe


def check_workers(client, *, timeout: float = 30.0, where: str = "the cluster",
                  address: str | None = None) -> dict:
    """``{worker address: autodiff version}`` after checking that the cluster has a
    worker and that every worker imports this package in this client's version;
    `ClusterError` otherwise."""
    import autodiff
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:
        raise ClusterError(f"{where} has no workers (waited {timeout:g} s); start some with "
                           f"'dask worker {address or 'SCHEDULER_ADDRESS'}'") from None
    try:
        reports = client.run(_import_probe())
    except Exception as e:
        raise ClusterError(f"the workers of {where} cannot run this package's code: "
                           f"{one_line(e)}") from None
    bad = {w: next(v[1:] for v in r.values() if v.startswith("!")) for w, r in reports.items()
           if any(v.startswith("!") for v in r.values())}
    if bad:
        w, why = next(iter(bad.items()))
        raise ClusterError(f"{len(bad)} of {len(reports)} workers of {where} cannot import this "
                           f"package (worker {w}: {why}); install dualtape where the workers run "
                           "(pip install -e . in the same checkout, or pip install dualtape)")
    versions = {w: r["autodiff"] for w, r in reports.items()}
    other = {w: v for w, v in versions.items() if v != autodiff.__version__}
    if other:
        w, v = next(iter(other.items()))
        raise ClusterError(f"{len(other)} of {len(reports)} workers of {where} run dualtape {v} "
                           f"(worker {w}), this client {autodiff.__version__}; install the same "
                           "version everywhere")
    return versions


def n_worker_threads(client) -> int:
    """The task slots of the cluster now (threads over all workers; at least 1)."""
    return max(1, int(sum(client.nthreads().values())))


def fresh_setup(setup):
    """A copy of ``setup`` without its jit caches: what a task trains on (see the module
    docstring), and what is sent to workers (the caches hold recorded programs)."""
    return replace(setup, _steppers={})


def pack_setup(setup) -> bytes:
    """``setup`` without its jit caches, pickled by cloudpickle: what is sent to the
    workers.  cloudpickle (not Dask's first try, plain pickle) honours
    ``cloudpickle.register_pickle_by_value(module)``, so a model defined in a module
    the workers cannot import travels by value (the command line registers the module
    of ``--model package.module:Factory``)."""
    import cloudpickle
    return cloudpickle.dumps(fresh_setup(setup))


def task_setup(setup):
    """A task's own copy of the setup it was given (bytes from `pack_setup`, or a Setup)."""
    if isinstance(setup, (bytes, bytearray, memoryview)):
        import cloudpickle
        return cloudpickle.loads(setup)
    return fresh_setup(setup)


# -- tangent chunks ------------------------------------------------------------------

def chunk_bounds(K: int, chunk_size: int) -> list:
    return [(c0, min(c0 + chunk_size, K)) for c0 in range(0, K, chunk_size)]


def forward_chunks(client, task: Callable, setup, args: tuple, K: int, chunk_size: int | None = None):
    """``(value, flat tangents, accuracy)`` of a forward hypergradient whose chunks of
    ``chunk_size`` directions (default: one chunk per task slot of the cluster) run as
    Dask tasks ``task(setup, *args, c0, c1) -> (value, tangents, accuracy)`` (the
    setup packed by `pack_setup`; `task_setup` unpacks it).  Raises
    `NondeterminismError` when the chunks' validation losses differ."""
    if chunk_size is None:
        chunk_size = max(1, math.ceil(K / n_worker_threads(client)))
    bounds = chunk_bounds(K, int(chunk_size))
    token = uuid.uuid4().hex[:12]
    [remote_setup] = client.scatter([pack_setup(setup)], hash=False, broadcast=True)
    futures = [client.submit(task, remote_setup, *args, c0, c1, pure=False,
                             key=f"hypergradient-chunk-{c0}-{c1}-{token}")
               for c0, c1 in bounds]
    try:
        results = client.gather(futures)
    finally:
        for f in futures:
            f.release()
        remote_setup.release()
    check_primals([r[0] for r in results], bounds)
    flat = np.zeros(K)
    for (c0, c1), (_, tangents, _) in zip(bounds, results):
        flat[c0:c1] = tangents
    return results[0][0], flat, results[0][2]


def check_primals(values: list, bounds: list) -> None:
    """`NondeterminismError` unless every chunk's validation loss has the same bits."""
    bits = [np.float64(v).tobytes() for v in values]
    for i, b in enumerate(bits):
        if b != bits[0]:
            (a0, a1), (b0, b1) = bounds[0], bounds[i]
            raise NondeterminismError(
                f"the {len(values)} tangent chunks disagree on the validation loss of their "
                f"common training run: directions {a0}..{a1 - 1} give {values[0]!r}, directions "
                f"{b0}..{b1 - 1} give {values[i]!r}. The run is not a pure function of its "
                "inputs (a non-deterministic kernel, or workers that differ from each other: "
                "library versions, BLAS builds, AUTODIFF_JIT_BACKEND)")
