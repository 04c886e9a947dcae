"""Simulator processes: started, timed out, and killed in one place.

Every simulator run (the native harness, ``vvp``) goes through :func:`run`, which
keeps the live processes in a set so that :func:`stop_all` (called by the CLI
on SIGINT / SIGTERM, and by :func:`worker_pool` when its caller fails) kills
them at once: an interrupted command leaves no simulator running. A process
that does not finish within its timeout (``FINEQ_SIM_TIMEOUT`` seconds,
default 1800, per process) is killed and reported as hung; one that dies on a
signal is reported as crashed or killed, naming the signal. Neither is ever
taken as a result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from fineq.errors import FineQError

DEFAULT_TIMEOUT_S = 1800.0
_live: set[subprocess.Popen[str]] = set()
_lock = threading.Lock()
_stopping = threading.Event()


class Stopped(FineQError):
    """The run was stopped (:func:`stop_all`) while a simulator ran."""


def timeout_s() -> float:
    """The per-process wall-clock limit (``FINEQ_SIM_TIMEOUT``), FineQError for a bad value."""
    raw = os.environ.get("FINEQ_SIM_TIMEOUT", "")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        t = float(raw)
    except ValueError:
        t = float("nan")
    if not t > 0:
        raise FineQError(f"FINEQ_SIM_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return t


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def _kill(p: subprocess.Popen[str]) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:  # already gone
        pass


def run(cmd: Sequence[str], what: str, timeout: float | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (text output captured) as :func:`subprocess.run` would; FineQError naming ``what`` if it hangs
    past ``timeout`` (default :func:`timeout_s`), dies on a signal, or the run is being stopped."""
    limit = timeout_s() if timeout is None else timeout
    with _lock:  # a stop_all() either sees this process or stops it from starting
        if _stopping.is_set():
            raise Stopped(f"{what}: stopped before it started")
        try:  # its own process group, so that a kill reaches the tools it starts (make, the compiler)
            p = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True, **kw)
        except OSError as e:
            raise FineQError(f"{what}: cannot start {cmd[0]} ({e.strerror or e})") from e
        _live.add(p)
    try:
        out, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill(p)
        p.communicate()
        raise FineQError(f"{what}: no result after {limit:g} s, killed (hung? FINEQ_SIM_TIMEOUT sets the limit)"
                         ) from None
    except BaseException:
        _kill(p)
        p.communicate()
        raise
    finally:
        with _lock:
            _live.discard(p)
    if _stopping.is_set():
        raise Stopped(f"{what}: stopped")
    if p.returncode < 0:
        sig = _signal_name(p.returncode)
        how = "was killed" if sig in ("SIGKILL", "SIGTERM", "SIGINT") else "crashed"
        raise FineQError(f"{what} {how} ({sig}); no result taken")
    return subprocess.CompletedProcess(list(cmd), p.returncode, out, err)


def stop_all() -> int:
    """Kill every live simulator process and refuse new ones; returns how many were killed."""
    with _lock:
        _stopping.set()
        procs = list(_live)
    for p in procs:
        _kill(p)
    return len(procs)


def allow() -> None:
    """Let new simulator runs start again after :func:`stop_all`."""
    _stopping.clear()


def live() -> int:
    """How many simulator processes are running."""
    with _lock:
        return len(_live)


@contextmanager
def worker_pool(jobs: int) -> Iterator[ThreadPoolExecutor]:
    """A thread pool for simulator runs (threads only wait on processes). If the block fails or is interrupted,
    queued runs are cancelled and running simulators killed before the exception goes on, instead of the pool
    waiting for them all."""
    pool = ThreadPoolExecutor(jobs)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        pool.shutdown(wait=True)
        allow()
        raise
    pool.shutdown(wait=True)
