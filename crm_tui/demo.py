"""`crm-tui demo` (and `make demo`): a seeded server on a free loopback port, a user, a replica
bootstrapped with visible progress, and the app. Quitting the app stops the server.

Everything lives in one work directory: ``--dir`` names one, kept so a second run reuses the
seeded database and the replica; without it, a fresh temp dir that is removed when the demo ends
only if nothing was saved in it. Nothing a user saves is lost: once anything was saved (sent to
the demo server or not), the temp dir is kept and its place printed, and the quit question says
so before the user answers. The user's own config and replicas are never touched: the replica's
login and config live in its own ``config/`` (crm_tui.paths), which CRM_TUI_CONFIG_DIR names too.
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
from dataclasses import dataclass
from pathlib import Path

import httpx

from cache.errors import ReplicaError
from cache.replica import Replica
from crm_server.announce import wait_for_url
from crm_tui import credentials
from crm_tui.config import Settings, load_settings
from crm_tui.paths import OWN_CONFIG, Paths
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


@dataclass
class DemoDir:
    """Where a demo's files are, and whether they outlive it: always when named (``--dir``); a
    temp dir once anything was saved in its replica (``saved``)."""

    path: Path
    temporary: bool
    saved: bool = False

    @property
    def replica_dir(self) -> Path:
        return self.path / "replica"

    def quit_note(self, saved: bool) -> str:
        """What quitting does to the demo's files, for the quit question (``saved``: anything was
        saved in the replica, sent or not)."""
        if not self.temporary:
            return f"The demo's files stay in {self.path}."
        if saved:
            return (f"This demo's files (server and replica, with your changes) are kept in {self.path}: "
                    f"`crm-tui demo --dir {self.path}` opens them again.")
        return f"Nothing was saved: this demo's files ({self.path}) are removed."

    def note_saved(self, replica: Replica) -> None:
        self.saved = self.saved or replica.outbox.ever_queued() or replica.saves.count() > 0


@contextlib.contextmanager
def demo_workdir(work_dir: Path | None) -> Iterator[DemoDir]:
    """The demo's files: ``work_dir`` (kept, so a second run reuses the seeded server), or a
    fresh temp dir that is removed when the demo ends unless something was saved in it (the
    caller sets ``saved``): a run that saved nothing leaves nothing behind, one that did keeps it."""
    if work_dir is not None:
        work = DemoDir(Path(work_dir), temporary=False)
        work.path.mkdir(parents=True, exist_ok=True)
        yield work
        _say(f"the demo's files are in {work.path}")
        return
    work = DemoDir(Path(tempfile.mkdtemp(prefix="crm-tui-demo-")), temporary=True)
    try:
        yield work
    finally:
        if work.saved:
            _say(f"you saved changes: the demo's files are kept in {work.path}; "
                 f"`crm-tui demo --dir {work.path}` opens them again, "
                 f"`crm-tui --data-dir {work.replica_dir} status` shows them, `rm -r {work.path}` removes them")
        else:
            shutil.rmtree(work.path, ignore_errors=True)
            _say(f"nothing was saved: removed the demo's files ({work.path}); `crm-tui demo --dir D` keeps them")


def _pick_agent(url: str, admin_token: str) -> str:
    """A seeded support agent, so the ticket queue's "mine" and "my team" views have work."""
    response = httpx.get(f"{url}/v1/users", params={"role": "agent", "limit": 50},
                         headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
    response.raise_for_status()
    agents = [u for u in response.json()["items"] if u.get("team")]
    if not agents:
        raise RuntimeError("the seeded data has no support agents")
    return str(agents[0]["id"])


def _replica_owner(paths: Paths, settings: Settings) -> str | None:
    """The id of the user an existing replica belongs to (as its last sync stored them), or None
    for a new replica or one never synced."""
    if not paths.replica.exists():
        return None
    from crm_tui.replicas import open_replica

    replica = open_replica(paths, settings, read_only=True)
    try:
        me = replica.reads.me()
    finally:
        replica.close()
    return str(me["id"]) if me and me.get("id") else None


def run_demo(customers: int = 20_000, work_dir: Path | None = None) -> int:
    with demo_workdir(work_dir) as work:
        return _run_demo(customers, work)


def _run_demo(customers: int, demo_dir: DemoDir) -> int:
    work = demo_dir.path
    config_dir = demo_dir.replica_dir / OWN_CONFIG  # found by `crm-tui --data-dir <replica dir>` too
    os.environ["CRM_TUI_CONFIG_DIR"] = str(config_dir)
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
        paths = Paths(data_dir=demo_dir.replica_dir, cache_dir=demo_dir.replica_dir / "hot-cache",
                      config_dir=config_dir)
        paths.ensure()
        settings = load_settings(config_dir / "config.toml")

        from crm_tui.replicas import replica_key_for
        from sync.runner import sync_once

        replica_key_for(paths, settings, interactive=sys.stdin.isatty())  # a passphrase, where no keyring
        # A demo dir opened again signs in as the user its replica was filled for, whoever else
        # the server has gained since.
        owner = _replica_owner(paths, settings)
        agent = owner or _pick_agent(url, admin_token)
        token = _server_cmd("user", "token", agent, db=db)
        # The demo's token is for its own throwaway server: a file in the demo's directory, not the keyring.
        credentials.save(paths, credentials.Credentials(url, token), store="file")
        _say(f"server {url} (log: {work / 'server.log'}); signed in as {agent}")

        if owner:
            _say(f"catching up the replica in {paths.replica} with the server ...")
        else:
            _say("bootstrapping the replica (customers and contacts first, so search works early) ...")
        report = sync_once(paths, settings, terminal_progress(True))
        if not report.ok:
            _say(f"bootstrap failed: {report.error}")
            return 1
        _say(f"replica ready at {paths.replica}; opening the app (q then y quits, ? for help)")

        from crm_tui.launch import run_app

        return run_app(paths, settings, config_file=config_dir / "config.toml", quit_note=demo_dir.quit_note,
                       before_close=demo_dir.note_saved)
    except (RuntimeError, httpx.HTTPError, ReplicaError, UnlockError) as exc:
        _say(str(exc))
        return 1
    finally:
        _stop_server(proc, work / "server.log")


def _stop_server(proc: subprocess.Popen[str], log: Path) -> None:
    """Stop the demo server, and say so, or say that it had already ended (killed from outside,
    or crashed: its log says why)."""
    ended = proc.poll()
    if ended is not None:
        _say(f"the demo server had already ended (exit code {ended}; its log: {log})")
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _say("server stopped")
