"""`crm-tui demo` (and `make demo`): a seeded server on a free loopback port, a user, a replica
bootstrapped with visible progress, and the app. Quitting the app stops the server.

Everything lives in one work directory: a fresh temp dir, removed when the demo ends, unless
``--dir`` is given, in which case it is kept and a second run reuses the seeded database and the
replica. The user's own config and replicas are
never touched: the demo points CRM_TUI_CONFIG_DIR at its work directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from cache.errors import ReplicaError
from crm_server.announce import wait_for_url
from crm_tui import credentials
from crm_tui.config import load_settings
from crm_tui.paths import Paths
from crm_tui.progress import terminal_progress
from crm_tui.replica_key import UnlockError

SERVER = [sys.executable, "-m", "crm_server.cli"]


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _server_cmd(*args: str, db: Path) -> str:
    done = subprocess.run([*SERVER, *args, "--db", str(db)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"crm-server {args[0]} failed")
    return done.stdout.strip()


def _start_server(db: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    with log.open("ab") as log_fh:
        proc = subprocess.Popen([*SERVER, "serve", "--db", str(db), "--host", "127.0.0.1", "--port", "0"],
                                stdout=subprocess.PIPE, stderr=log_fh, text=True)
    url = wait_for_url(proc, 60)
    if url is None:
        proc.terminate()
        raise RuntimeError(f"the server did not start; see {log}")
    # Reap the server the moment it exits (killed from outside, say): no zombie while the app runs.
    threading.Thread(target=proc.wait, name="demo-server-reaper", daemon=True).start()
    return proc, url


@contextlib.contextmanager
def demo_workdir(work_dir: Path | None) -> Iterator[Path]:
    """The demo's files: ``work_dir`` (kept, so a second run reuses the seeded server), or a
    fresh temp dir that is removed when the demo ends (a run leaves nothing behind)."""
    if work_dir is not None:
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        yield work
        _say(f"the demo's files are in {work}")
        return
    work = Path(tempfile.mkdtemp(prefix="crm-tui-demo-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _say(f"removed the demo's files ({work}); `crm-tui demo --dir D` keeps them")


def _pick_agent(url: str, admin_token: str) -> str:
    """A seeded support agent, so the ticket queue's "mine" and "my team" views have work."""
    response = httpx.get(f"{url}/v1/users", params={"role": "agent", "limit": 50},
                         headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
    response.raise_for_status()
    agents = [u for u in response.json()["items"] if u.get("team")]
    if not agents:
        raise RuntimeError("the seeded data has no support agents")
    return str(agents[0]["id"])


def run_demo(customers: int = 20_000, work_dir: Path | None = None) -> int:
    with demo_workdir(work_dir) as work:
        return _run_demo(customers, work)


def _run_demo(customers: int, work: Path) -> int:
    os.environ["CRM_TUI_CONFIG_DIR"] = str(work / "config")
    db = work / "crm-server.db"
    try:
        if not db.exists():
            _say(f"seeding {customers:,} customers into {db} ...")
            subprocess.run([*SERVER, "seed", "--db", str(db), "--customers", str(customers), "--seed", "7"],
                           check=True)
            _server_cmd("user", "add", "demo-admin", "--role", "admin", db=db)
        admin_token = _server_cmd("user", "token", "demo-admin", db=db)
        proc, url = _start_server(db, work / "server.log")
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        _say(f"could not start the demo server: {exc}")
        return 1
    try:
        agent = _pick_agent(url, admin_token)
        token = _server_cmd("user", "token", agent, db=db)
        paths = Paths(data_dir=work / "replica", cache_dir=work / "replica" / "hot-cache", config_dir=work / "config")
        paths.ensure()
        # The demo's token is for its own throwaway server: a file in the demo's directory, not the keyring.
        credentials.save(paths, credentials.Credentials(url, token), store="file")
        _say(f"server {url} (log: {work / 'server.log'}); signed in as {agent}")
        settings = load_settings(work / "config" / "config.toml")

        from crm_tui.replicas import replica_key_for
        from sync.runner import sync_once

        replica_key_for(paths, settings, interactive=sys.stdin.isatty())  # a passphrase, where no keyring

        _say("bootstrapping the replica (customers and contacts first, so search works early) ...")
        report = sync_once(paths, settings, terminal_progress(True))
        if not report.ok:
            _say(f"bootstrap failed: {report.error}")
            return 1
        _say(f"replica ready at {paths.replica}; opening the app (q then y quits, ? for help)")

        from crm_tui.launch import run_app

        return run_app(paths, settings, config_file=work / "config" / "config.toml")
    except (RuntimeError, httpx.HTTPError, ReplicaError, UnlockError) as exc:
        _say(str(exc))
        return 1
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _say("server stopped")
