"""Subprocesses the harness starts (crm-server, scenario workers, the sync daemon), sampling of
their memory and CPU with psutil, and the cleanup that stops every one of them on exit or Ctrl-C.

Only processes started here are ever stopped, each by its own pid.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from crm_server.announce import wait_for_url

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
_live: dict[int, subprocess.Popen] = {}
_lock = threading.Lock()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for children: no CRM_TUI_* from the user's shell, the repo on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_TUI_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def spawn(cmd: list[str], *, log: Path | None = None, env: dict[str, str] | None = None,
          stdout: Any = None) -> subprocess.Popen:
    """Start ``cmd`` (registered for cleanup); stderr (and stdout unless given) go to ``log``."""
    log_fh = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    try:
        proc = subprocess.Popen(cmd, stdout=stdout if stdout is not None else log_fh, stderr=log_fh,
                                env=env or clean_env(), cwd=ROOT)
    finally:
        if log:
            log_fh.close()  # type: ignore[union-attr]
    with _lock:
        _live[proc.pid] = proc
    return proc


def stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout)
    with _lock:
        _live.pop(proc.pid, None)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            with contextlib.suppress(Exception):
                stream.close()
    return proc.returncode


def cleanup() -> None:
    """Stop every process this harness started and that is still running."""
    with _lock:
        procs = list(_live.values())
    for proc in procs:
        stop(proc, timeout=5.0)


atexit.register(cleanup)


# ---------------------------------------------------------------------------- sampling


def vm_hwm(pid: int) -> int | None:
    """The kernel's peak resident set size of ``pid`` (VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


class Sampler:
    """Samples RSS (and CPU time) of some pids every ``interval`` seconds in a thread."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05):
        self.interval = interval
        self.procs: dict[str, psutil.Process] = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self.procs[name] = psutil.Process(pid)
        self.peak: dict[str, int] = dict.fromkeys(self.procs, 0)
        self.last: dict[str, int] = dict.fromkeys(self.procs, 0)
        self.cpu0: dict[str, float] = {}
        self.cpu1: dict[str, float] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = self.t1 = 0.0

    def add(self, name: str, pid: int) -> None:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            self.procs[name] = p
            self.peak.setdefault(name, 0)
            self.cpu0[name] = sum(p.cpu_times()[:2])

    def __enter__(self) -> Sampler:
        self.t0 = time.perf_counter()
        for name, p in self.procs.items():
            with contextlib.suppress(psutil.Error):
                self.cpu0[name] = sum(p.cpu_times()[:2])
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        self.samples += 1
        for name, p in list(self.procs.items()):
            try:
                rss = p.memory_info().rss
                self.cpu1[name] = sum(p.cpu_times()[:2])
            except psutil.Error:
                continue
            self.last[name] = rss
            if rss > self.peak.get(name, 0):
                self.peak[name] = rss

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.t1 = time.perf_counter()

    def cpu(self, name: str) -> float | None:
        if name in self.cpu0 and name in self.cpu1:
            return self.cpu1[name] - self.cpu0[name]
        return None

    @property
    def wall(self) -> float:
        return (self.t1 or time.perf_counter()) - self.t0


# ---------------------------------------------------------------------------- crm-server


class ServerProc:
    """``crm-server serve`` on a free loopback port over ``db`` (rate limit off: the benchmark
    measures the product's throughput, not the per-token limiter)."""

    def __init__(self, db: str | Path, log: Path, extra: list[str] | None = None):
        self.db, self.log = str(db), Path(log)  # a SQLite path or a postgresql:// URL
        self.extra = list(extra or [])
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 120.0) -> ServerProc:
        import httpx

        cmd = [PY, "-m", "crm_server.cli", "serve", "--db", str(self.db), "--host", "127.0.0.1", "--port", "0",
               "--rate-limit", "0", *self.extra]
        self.proc = spawn(cmd, log=self.log, stdout=subprocess.PIPE)
        url = wait_for_url(self.proc, timeout)
        if url is None:
            self.stop()
            raise RuntimeError(f"crm-server did not start; see {self.log}")
        self.url = url
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"crm-server never answered /health; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def __enter__(self) -> ServerProc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- workers


class WorkerFailed(RuntimeError):
    pass


def run_worker(name: str, cfg: dict[str, Any], work: Path, *, sample: dict[str, int] | None = None,
               timeout: float = 7200.0, tag: str | None = None) -> dict[str, Any]:
    """Run scenario ``name`` in a fresh ``python -m bench.worker`` process and return its result.

    The worker's RSS (as "worker") and the ``sample`` pids are sampled meanwhile; the result gets
    ``_sampled`` (peak RSS, CPU seconds, wall) and ``_worker_hwm`` (the worker's VmHWM)."""
    tag = tag or name
    work.mkdir(parents=True, exist_ok=True)
    cfg_path, out_path, log = work / f"{tag}.cfg.json", work / f"{tag}.out.json", work / f"{tag}.log"
    cfg_path.write_text(json.dumps(cfg, indent=2, default=str))
    out_path.unlink(missing_ok=True)
    proc = spawn([PY, "-m", "bench.worker", name, str(cfg_path), str(out_path)], log=log)
    hwm: int | None = None
    with Sampler({"worker": proc.pid, **(sample or {})}) as sampler:
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            h = vm_hwm(proc.pid)
            if h:
                hwm = h
            if time.monotonic() > deadline:
                stop(proc)
                raise WorkerFailed(f"{tag}: timed out after {timeout:.0f} s; see {log}")
            time.sleep(0.05)
    code = stop(proc)
    if code != 0 or not out_path.exists():
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise WorkerFailed(f"{tag}: worker exited with {code}; log {log}:\n{tail}")
    result = json.loads(out_path.read_text())
    result["_sampled"] = {"peak_rss": dict(sampler.peak), "cpu": {k: sampler.cpu(k) for k in sampler.procs},
                          "wall": sampler.wall, "samples": sampler.samples}
    result["_worker_hwm"] = hwm
    return result
