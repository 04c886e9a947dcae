"""Where engine runs execute: a local pool by default, or a Dask distributed cluster.

Every engine run is one call of :func:`fineq.hw.run.run_tile` with plain values
(levels, an activation tile, the engine configuration), mapped over a standard
``concurrent.futures.Executor``. Locally that executor is
:func:`fineq.hw.procs.worker_pool` (threads that each wait on one simulator
process); with ``--cluster`` it is the executor of a Dask ``Client``
(``Client.get_executor``), so both go through the same code path.
``local:N`` starts a Dask ``LocalCluster`` of N single-threaded worker
processes on this machine (what the tests use); any other value is a
scheduler address (``tcp://host:8786``) of a cluster started with
``dask scheduler`` / ``dask worker --nthreads CORES`` on machines that have this
project installed (``scripts/setup.sh``). Each worker builds the Verilator
harness once, into its own ``FINEQ_HW_CACHE``, and reuses it.

Why Dask rather than Ray: Dask distributed is pure-Python wheels on PyPI, and
its ``Client`` already is a ``concurrent.futures.Executor``; Ray brings its own
runtime and object store, more than a map of independent simulator runs needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass

from fineq.errors import FineQError
from fineq.hw.procs import worker_pool

#: seconds to wait for a scheduler given by address
CONNECT_TIMEOUT_S = 30


@dataclass
class Engines:
    """An executor of engine runs and how many it runs at once."""

    executor: Executor
    workers: int
    where: str


def parse(cluster: str | None) -> tuple[str, int | str] | None:
    """``None`` (local pool), ``("local", n)`` or ``("address", addr)``; a bad value is one clear error."""
    if cluster is None:
        return None
    if cluster.startswith("local:"):
        n = cluster[6:]
        if not n.isdigit() or int(n) < 1:
            raise FineQError(f"--cluster {cluster}: local:N needs a positive number of workers")
        return "local", int(n)
    if "://" not in cluster and ":" not in cluster:
        raise FineQError(f"--cluster {cluster}: give local:N or a Dask scheduler address (tcp://host:8786)")
    return "address", cluster


@contextmanager
def engines(cluster: str | None = None, jobs: int | None = None) -> Iterator[Engines]:
    """The executor engine runs go to (see the module's doc); workers are stopped (local) or released after."""
    how = parse(cluster)
    if how is None:
        n = max(1, jobs or os.cpu_count() or 1)
        with worker_pool(n) as pool:
            yield Engines(pool, n, f"local pool of {n}")
        return
    try:
        import dask.config
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise FineQError("--cluster needs Dask distributed (pip install 'dask[distributed]'; scripts/setup.sh "
                         "installs it)") from e
    with dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"}):
        if how[0] == "local":
            lc = LocalCluster(n_workers=int(how[1]), threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=40)
            client = Client(lc)
            where = f"Dask LocalCluster of {how[1]} workers"
        else:
            lc = None
            try:
                client = Client(str(how[1]), timeout=CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as e:
                raise FineQError(f"--cluster {how[1]}: cannot reach the Dask scheduler ({e})") from e
            where = f"Dask cluster {how[1]}"
        try:
            info = client.scheduler_info()["workers"]
            n = sum(int(w.get("nthreads", 1)) for w in info.values()) or 1
            yield Engines(client.get_executor(pure=False), n, f"{where} ({n} engine runs at once)")
        finally:
            client.close()
            if lc is not None:
                lc.close()
