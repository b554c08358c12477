"""Scenario 7 (daemon part): ``crm-tui sync --daemon`` RSS idle and during sync, and its idle CPU.

Runs in the harness process (it drives subprocesses): the real CLI daemon over the full replica,
with its own config dir and credentials. Measured: RSS and CPU during its first sync (which has
server changes to pull), CPU and RSS over an idle window, then RSS during a sync asked for with
``crm-tui sync --once`` after 1k more server changes (the CLI asks the daemon holding the lock).

Baseline for the idle window, sampled over the same seconds: a Python process that imported the
same modules (cache, sync, httpx) and sleeps.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import variant
from bench.procs import PY, Sampler, clean_env, spawn, stop, vm_hwm
from cache.sqlite import connect_keyed, sqlite3


def _last_finished(db: Path, key: bytes | None) -> int:
    conn = connect_keyed(str(db), key, timeout=30)
    try:
        row = conn.execute("SELECT max(id) FROM sync_runs WHERE finished_at IS NOT NULL").fetchone()
        return row[0] or 0
    except sqlite3.Error:  # not created yet
        return 0
    finally:
        conn.close()


def _run_counts(db: Path, run_id: int, key: bytes | None) -> dict[str, Any]:
    conn = connect_keyed(str(db), key, timeout=30)
    try:
        row = conn.execute("SELECT pushed, pulled, ok FROM sync_runs WHERE id = ?", (run_id,)).fetchone()
        return {"pushed": row[0], "pulled": row[1], "ok": bool(row[2])} if row else {}
    finally:
        conn.close()


def _wait_run(db: Path, after: int, timeout: float, proc: subprocess.Popen, key: bytes | None) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if _last_finished(db, key) > after:
            return time.perf_counter() - t0
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}")
        time.sleep(0.02)
    raise RuntimeError("the daemon's sync did not finish in time")


def _admin_changes(data_dir: Path, cache_dir: Path, url: str, admin_token: str, tag: str, batches: int,
                   cfg: dict[str, Any]) -> int:
    import random

    import httpx

    from bench.scenarios.incremental import make_ops, post_batch

    rng = random.Random(hash(tag) & 0xFFFF)
    n = 0
    with variant.open_replica(data_dir / "replica.db", cache_dir, cfg, durable=False) as replica, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=120) as http:
        for b in range(batches):
            statuses = post_batch(http, make_ops(replica, rng, f"{tag}{b}"))
            n += sum(statuses.values())
    return n


def run(data_dir: Path, work: Path, url: str, token: str, admin_token: str, idle_seconds: float,
        encrypted: bool) -> dict[str, Any]:
    from crm_tui import credentials
    from crm_tui.paths import Paths

    cache_dir = data_dir / "hot-cache"
    config_dir = work / "daemon-config"
    paths = Paths(data_dir=data_dir, cache_dir=cache_dir, config_dir=config_dir)
    paths.ensure()
    credentials.save(paths, credentials.Credentials(url, token), store="file")  # a bench box has no keyring
    cfg = {"encrypted": encrypted}
    key = variant.replica_key(data_dir, cfg)
    env = clean_env(CRM_TUI_CONFIG_DIR=str(config_dir), CRM_TUI_CACHE_DIR=str(cache_dir), **(variant.env() if encrypted else {}),
                    **({} if encrypted else {"CRM_TUI_SECURITY__ENCRYPT_REPLICA": "false"}))
    db = paths.replica
    out: dict[str, Any] = {"idle_seconds": idle_seconds}
    out["changes_before_start"] = _admin_changes(data_dir, cache_dir, url, admin_token, "dmn-a", 3, cfg)
    baseline = spawn([PY, "-c", "import time, httpx, cache.replica, sync.runner, sync.engine; time.sleep(100000)"],
                     log=work / "daemon-baseline.log", env=env)
    before = _last_finished(db, key)
    cmd = [PY, "-m", "crm_tui.cli", "--data-dir", str(data_dir), "sync", "--daemon", "--interval", "3600"]
    proc = spawn(cmd, log=work / "daemon.log", env=env)
    try:
        with Sampler({"daemon": proc.pid}, 0.02) as first:
            out["first_sync_s"] = _wait_run(db, before, 600, proc, key)
        out["rss_first_sync_peak"] = first.peak.get("daemon")
        out["first_sync_run"] = _run_counts(db, _last_finished(db, key), key)
        time.sleep(1.0)
        with Sampler({"daemon": proc.pid, "baseline": baseline.pid}, 0.5) as idle:
            time.sleep(idle_seconds)
        out["idle_cpu_s"] = idle.cpu("daemon")
        out["idle_cpu_pct"] = 100 * (idle.cpu("daemon") or 0) / idle.wall
        out["baseline_idle_cpu_pct"] = 100 * (idle.cpu("baseline") or 0) / idle.wall
        out["rss_idle"] = idle.last.get("daemon")
        out["baseline_rss"] = idle.last.get("baseline")
        out["idle_wall"] = idle.wall
        out["changes_requested"] = _admin_changes(data_dir, cache_dir, url, admin_token, "dmn-b", 1, cfg)
        before = _last_finished(db, key)
        with Sampler({"daemon": proc.pid}, 0.02) as during:
            t = time.perf_counter()
            proc.send_signal(signal.SIGUSR1)  # "sync now", as `kill -USR1` does
            out["request"] = "SIGUSR1"
            _wait_run(db, before, 300, proc, key)
            out["requested_sync_s"] = time.perf_counter() - t
        out["rss_requested_sync_peak"] = during.peak.get("daemon")
        out["requested_sync_run"] = _run_counts(db, _last_finished(db, key), key)
        out["rss_after"] = during.last.get("daemon")
        out["daemon_hwm"] = vm_hwm(proc.pid)
    finally:
        out["exit_code"] = stop(proc, timeout=30)
        stop(baseline)
    return out
