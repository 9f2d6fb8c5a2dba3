"""Where runs execute: any :class:`concurrent.futures.Executor`.

* :func:`local_pool`: the default, a process pool. It starts workers with ``forkserver`` (POSIX) or
  ``spawn``, never a bare ``fork`` of a process that may hold threads (Jupyter's), and the task function
  lives in the package (:func:`sim.experiments.worker.run_task`), so it works inside Jupyter too.
* :class:`InlineExecutor`: runs each task in the calling process (``--workers 1``; tests; debugging).
* :func:`dask_executor`: Dask distributed, the way beyond one machine (``pip install -e ".[dask]"``): a
  running scheduler (``--dask tcp://host:8786``) or a :class:`distributed.LocalCluster` (``--dask-local N``).
  Rows are identical whichever executor ran them: a run depends only on its task.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import Any

from sim.errors import InputError


class InlineExecutor(Executor):
    """Runs each task at submit time, in this process; returns finished futures."""

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future, like a pool
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def local_pool(workers: int | None = None) -> Executor:
    """A process pool of ``workers`` (default: the usable cores); one worker runs inline."""
    n = workers or default_workers()
    return InlineExecutor() if n == 1 else process_pool(n)


@contextlib.contextmanager
def executor_or_pool(executor: Executor | None, workers: int | None = None) -> Iterator[Executor]:
    """``executor`` as given (left running), or a :func:`local_pool` of ``workers`` shut down on leaving."""
    if executor is not None:
        yield executor
        return
    ex = local_pool(workers)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def process_pool(n: int) -> Executor:
    """A process pool of exactly ``n`` workers (forkserver with the package preloaded, else spawn)."""
    method = "forkserver" if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods() \
        else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["sim.experiments.worker", "sim.comparison", "sim.simulate", "sim.pricing.pricing"])
    return ProcessPoolExecutor(max_workers=n, mp_context=ctx)


def capacity(executor: Executor) -> int:
    """How many tasks keep the executor busy (to bound the runs in flight)."""
    n = getattr(executor, "_max_workers", None)
    if n is None:
        client = getattr(executor, "_client", None)
        if client is not None:
            try:
                n = sum(client.nthreads().values())
            except Exception:  # noqa: BLE001
                n = None
    return max(1, int(n or default_workers()))


@contextlib.contextmanager
def dask_executor(address: str | None = None, local_workers: int | None = None) -> Iterator[Executor]:
    """A Dask distributed executor: connect to ``address``, or start a LocalCluster of ``local_workers``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(None, "--dask" if address else "--dask-local",
                         'Dask is not installed: pip install -e ".[dask]"') from None
    cluster = None
    try:
        if address:
            try:
                client = Client(address, timeout="10s")
            except OSError as exc:
                raise InputError(None, "--dask", f"cannot reach a scheduler at {address}: {exc}") from None
        else:
            cluster = LocalCluster(n_workers=local_workers or default_workers(), threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def as_finished(executor: Executor, fn: Callable[[Any], dict], items: Iterable[tuple[Any, Any]], limit: int,
                failed: Callable[[str], dict]) -> Iterator[tuple[Any, dict]]:
    """Run ``fn(task)`` for each ``(ident, task)`` of ``items`` with at most ``limit`` in flight (a long list never
    sits whole in a Dask scheduler); yield ``(ident, record)`` as runs finish, those finishing together in ``ident``
    order. A run whose future raised (a worker died, a task could not be unpickled) yields ``failed(message)``.
    On any exception or Ctrl-C in the caller, what is still in flight is cancelled."""
    todo = iter(items)
    flying: dict[Future, Any] = {}
    try:
        while True:
            while len(flying) < limit:
                nxt = next(todo, None)
                if nxt is None:
                    break
                ident, task = nxt
                flying[executor.submit(fn, task)] = ident
            if not flying:
                return
            done, _ = wait(list(flying), return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: flying[f]):
                ident = flying.pop(fut)
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - the run failed: recorded by the caller
                    rec = failed(f"{type(exc).__name__}: {exc}".splitlines()[0])
                yield ident, rec
    except BaseException:
        for fut in flying:
            fut.cancel()
        raise
