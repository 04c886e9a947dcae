"""Long jobs that lose nothing: interrupts, simulator faults, damaged caches, and runs sharing outputs or caches."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fineq.errors import FineQError
from fineq.hw import procs

ROOT = Path(__file__).resolve().parents[1]
FINEQ = [sys.executable, "-c", "import sys; from fineq.cli.main import main; sys.exit(main())"]


# ---- simulator processes -------------------------------------------------------------------------------

def _script(tmp_path: Path, body: str) -> str:
    p = tmp_path / "sim.sh"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return str(p)


@pytest.mark.parametrize("body,msg", [
    ("sleep 30", "no result after 1 s, killed (hung?"),
    ("kill -SEGV $$", "crashed (SIGSEGV); no result taken"),
    ("kill -KILL $$", "was killed (SIGKILL); no result taken"),
])
def test_simulator_faults_are_errors(tmp_path, monkeypatch, body, msg):
    monkeypatch.setenv("FINEQ_SIM_TIMEOUT", "1")
    t0 = time.perf_counter()
    with pytest.raises(FineQError, match=re.escape(msg)):
        procs.run([_script(tmp_path, body)], "the RTL run")
    assert time.perf_counter() - t0 < 10 and procs.live() == 0


def test_a_clean_exit_is_a_result(tmp_path):
    r = procs.run([_script(tmp_path, "echo ok; exit 3")], "x")
    assert (r.returncode, r.stdout) == (3, "ok\n")


@pytest.mark.parametrize("bad", ["0", "-1", "x", "nan"])
def test_bad_timeout_setting(monkeypatch, bad):
    monkeypatch.setenv("FINEQ_SIM_TIMEOUT", bad)
    with pytest.raises(FineQError, match="FINEQ_SIM_TIMEOUT must be a positive number"):
        procs.timeout_s()


def test_a_failing_run_in_a_pool_kills_the_others(tmp_path):
    slow = _script(tmp_path, "sleep 30")
    t0 = time.perf_counter()

    def one(i: int) -> None:
        if i == 0:
            time.sleep(0.5)
            raise FineQError("tile 0 differs")
        procs.run([slow], f"run {i}")

    with pytest.raises(FineQError, match="tile 0 differs"), procs.worker_pool(3) as pool:
        list(pool.map(one, range(6)))
    assert time.perf_counter() - t0 < 10 and procs.live() == 0
    procs.run(["true"], "after")  # the pool's stop does not outlive it


@pytest.mark.parametrize("backend", ["verilator", "icarus"])
def test_a_crashing_simulator_is_never_a_result(tmp_path, monkeypatch, backend):
    """The backends' run_job with the simulator replaced by one that crashes, hangs, or exits 0 with no result."""
    import fineq
    from fineq.engine.config import EngineConfig
    from fineq.hw import icarus, native

    cfg = EngineConfig(rows=8, cols=8)
    q = fineq.quantize(np.random.default_rng(0).standard_normal((8, 48)).astype(np.float32))
    x = np.ones((48, 4), dtype=np.int8)
    mod = native if backend == "verilator" else icarus
    monkeypatch.setenv("FINEQ_SIM_TIMEOUT", "1")
    real = procs.run
    for body, msg in [("kill -SEGV $$", "crashed"), ("sleep 20", "no result after"),
                      ("exit 0", "without writing its result|no result")]:
        fake = _script(tmp_path, body)
        if backend == "verilator":
            monkeypatch.setattr(native, "build", lambda *a, fake=fake, **k: (Path(fake), 0.0))
        else:
            monkeypatch.setattr(icarus, "build", lambda *a, **k: (Path("x.vvp"), 0.0))
            monkeypatch.setattr(icarus.procs, "run", lambda cmd, what, fake=fake, **k: real([fake], what))
        with pytest.raises(FineQError, match=msg):
            mod.run_engine(q, x, cfg)


def test_a_damaged_icarus_cache_is_rebuilt(tmp_path, monkeypatch, capsys):
    import fineq
    from fineq.engine.config import EngineConfig
    from fineq.hw import icarus

    monkeypatch.setenv("FINEQ_HW_CACHE", str(tmp_path / "cache"))
    cfg = EngineConfig(rows=8, cols=8)
    q = fineq.quantize(np.random.default_rng(1).standard_normal((8, 48)).astype(np.float32))
    x = np.random.default_rng(2).integers(-128, 128, (48, 5)).astype(np.int8)
    vvp, secs = icarus.build(cfg)
    assert secs > 0 and icarus.build(cfg)[1] == 0.0  # cached and intact
    data = bytearray(vvp.read_bytes())
    data[len(data) // 2] ^= 0x55
    vvp.write_bytes(bytes(data))
    run = icarus.run_engine(q, x, cfg)
    assert "is damaged or unchecked" in capsys.readouterr().err
    assert np.array_equal(run.y, fineq.gemm(q, x))
    assert icarus.build(cfg)[1] == 0.0


def test_cache_check_catches_one_flipped_byte(tmp_path, capsys):
    from fineq.hw.native import cached, stamp

    f = tmp_path / "fineq_engine"
    f.write_bytes(b"\x7fELF" + bytes(1000))
    assert not cached(f)  # unstamped: not trusted, removed
    assert not f.exists()
    f.write_bytes(b"\x7fELF" + bytes(1000))
    stamp(f)
    assert cached(f)
    f.write_bytes(b"\x7fELF" + bytes(999) + b"\x01")
    assert not cached(f) and not f.exists()
    assert capsys.readouterr().err.count("rebuilding") == 2


# ---- interrupts ----------------------------------------------------------------------------------------

def _start(args: list[str], cwd: Path, ignore_sigint: bool = False, env: dict[str, str] | None = None):
    err = open(cwd / "stderr.txt", "w")  # noqa: SIM115 - the child writes it until it ends
    pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    p = subprocess.Popen([*FINEQ, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=pre,
                         env={**os.environ, **(env or {})})
    return p, cwd / "stderr.txt"


def _wait_for(pred, limit: float = 120.0) -> None:
    t0 = time.perf_counter()
    while not pred():
        if time.perf_counter() - t0 > limit:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig,ignored", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-ignored-by-parent"])
def test_a_long_eval_stops_on_a_signal(tiny_llama, tmp_path, sig, ignored):
    """Within seconds, exit 128 + signal, one line saying nothing was written, no output and no temporary file;
    also when started from a shell's background job (SIGINT inherited as ignored)."""
    folder, text = tiny_llama
    p, err = _start(["eval", "--model", str(folder), "--text", str(text), "--methods", "fineq-recon@500",
                     "--seq", "32", "--calib-samples", "4", "--calib-seq", "32", "--json", "out.json",
                     "--chart", "out.png"], tmp_path, ignore_sigint=ignored)
    _wait_for(lambda: "quantizing" in err.read_text())
    time.sleep(1.0)
    t0 = time.perf_counter()
    p.send_signal(sig)
    rc = p.wait(timeout=30)
    assert time.perf_counter() - t0 < 5
    lines = [ln for ln in err.read_text().splitlines() if ln.strip()]
    assert rc == 128 + sig, lines
    assert lines[-1] == f"fineq eval: stopped by {signal.Signals(sig).name}; nothing written (outputs are written " \
                        "only when complete)"
    assert "Traceback" not in err.read_text()
    assert sorted(q.name for q in tmp_path.iterdir()) == ["stderr.txt"]


def test_an_interrupted_rtl_run_leaves_no_simulator(tiny_llama, tmp_path):
    """rtl-layer on Icarus (two linears at once), SIGINT while the simulators run: they are gone when it exits."""
    folder, text = tiny_llama
    cache = tmp_path / "cache"
    p, err = _start(["rtl-layer", "--model", str(folder), "--text", str(text), "--backend", "icarus",
                     "--jobs", "2", "--tokens", "64"], tmp_path, env={"FINEQ_HW_CACHE": str(cache)})
    _wait_for(lambda: any(Path(f"/proc/{c}/comm").read_text().strip() == "vvp"
                          for c in _children(p.pid) if Path(f"/proc/{c}/comm").exists()))
    sims = [c for c in _children(p.pid) if _alive(c)]
    assert sims
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=30)
    assert rc == 130, err.read_text()
    _wait_for(lambda: not any(_alive(c) for c in sims), 5)
    assert "stopped by SIGINT" in err.read_text().splitlines()[-1]
    assert not [q for q in tmp_path.iterdir() if q.name not in ("stderr.txt", "cache")]


# ---- runs sharing outputs and caches -------------------------------------------------------------------

_HOLD = """
import sys, time
from fineq.outputs import check_output
check_output(sys.argv[1])
print("claimed", flush=True)
time.sleep(60)
"""


def test_two_runs_cannot_write_one_output(tmp_path, capsys, monkeypatch):
    from fineq.cli.main import main
    from fineq.synthetic import heavy_tailed

    np.save(tmp_path / "W.npy", heavy_tailed(8, 48, seed=1))
    out = tmp_path / "q.fineq.npz"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        assert main(["quantize", str(tmp_path / "W.npy"), "-o", str(out)]) == 2
        assert "is being written by another fineq run" in capsys.readouterr().err
        assert not out.exists()
        assert main(["quantize", str(tmp_path / "W.npy"), "-o", str(tmp_path / "other.fineq.npz")]) == 0
    finally:
        holder.kill()
        holder.wait()
    assert main(["quantize", str(tmp_path / "W.npy"), "-o", str(out)]) == 0  # released when the holder ended
    assert main(["quantize", str(tmp_path / "W.npy"), "-o", str(out), "--force"]) == 0  # and by this process


_BUILD = """
import sys
from fineq.engine.config import EngineConfig
from fineq.hw import icarus
print(icarus.build(EngineConfig(rows=8, cols=8))[1] > 0)
"""


def test_two_runs_share_one_harness_cache(tmp_path):
    """Two processes building the same Icarus testbench into an empty cache: one compiles, the other waits and
    reuses it; the file is intact."""
    from fineq.hw.native import cached

    env = {**os.environ, "FINEQ_HW_CACHE": str(tmp_path)}
    ps = [subprocess.Popen([sys.executable, "-c", _BUILD], stdout=subprocess.PIPE, text=True, env=env)
          for _ in range(2)]
    built = sorted(p.communicate(timeout=300)[0].strip() for p in ps)
    assert built == ["False", "True"]
    vvps = list(tmp_path.glob("*.vvp"))
    assert len(vvps) == 1 and cached(vvps[0])
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".") and not q.name.endswith(".lock")]


def test_two_synthesis_runs_cannot_share_a_build_folder(tmp_path):
    build = tmp_path / "synth"
    build.mkdir()
    with open(build / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(["bash", str(ROOT / "synth" / "run.sh")], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "SYNTH_BUILD": str(build)})
    assert r.returncode != 0
    assert "is in use by another synthesis run" in r.stderr
    assert sorted(q.name for q in build.iterdir()) == [".lock"]
