"""The app, a sync daemon and one-shot `sync --once` runs sharing one replica (issue 9 item 9):
every pairing, each outcome true and visible. Real processes (the CLI, the daemon), the real app
under Textual's pilot, the real server; a run is kept going exactly as long as a test needs by the
fault proxy holding its change-feed request at a gate.

The rules (sync/runner.py): runs happen one at a time, a run that meets another waits for it and
then does its own; one daemon per replica (a second exits 5); the app leaves background syncing
to a daemon, while its explicit "sync now" runs like `sync --once`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from support.app import open_app
from support.client import ClientReplica, assert_replica_matches_server
from support.faultproxy import FaultProxy, Gate, gate
from support.server import make_op
from sync.lock import holder_pid

pytestmark = pytest.mark.slow  # make test-slow: daemons, apps and killed syncs side by side

SIZE = (120, 36)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


async def await_until(pilot, condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await pilot.pause(0.05)


def status(client: ClientReplica) -> dict:
    done = client.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Watched:
    """A running CLI process whose stderr is read as it comes, to wait for a line."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        self._new = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._new:
                self.lines.append(line)
                self._new.notify_all()

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        with self._new:
            if not self._new.wait_for(lambda: any(text in line for line in self.lines), timeout):
                pytest.fail(f"the process never said {text!r}; it said {''.join(self.lines)!r}")

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        out = self.proc.stdout.read()
        self.proc.wait(timeout)
        self._reader.join(timeout)
        return self.proc.returncode, out, "".join(self.lines)

    @property
    def pid(self) -> int:
        return self.proc.pid


def change_on_server(server) -> tuple[str, str]:
    with server.client("ada") as http:
        rec = http.get("/v1/customers", params={"limit": 1}).json()["items"][0]
    city = f"City {time.monotonic_ns()}"
    [res] = server.batch([make_op("update", "customer", rec["id"], {"city": city}, base_version=rec["version"])])
    assert res["status"] in ("applied", "merged")
    return rec["id"], city


def replica_city(client: ClientReplica, cid: str) -> str | None:
    with client.replica() as r:
        rec = r.get("customer", cid)
    return rec and rec["city"]


def stop_daemon(daemon: subprocess.Popen) -> str:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    _out, err = daemon.communicate(timeout=30)
    return err


def hold_next_pull(proxy: FaultProxy) -> Gate:
    """The next change-feed request waits at a gate until the test opens it: the run that made
    it holds the replica's run lock until then."""
    held = gate()
    proxy.add_rule(held, path="/v1/changes", times=1)
    return held


@contextlib.asynccontextmanager
async def app_with_its_sync_held(server, tmp_path) -> AsyncIterator[SimpleNamespace]:
    """The app, opened on a fresh replica, its first background sync held at the gate."""
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        held = hold_next_pull(proxy)
        app = open_app(client)
        async with app.run_test(size=SIZE) as pilot:
            await await_until(pilot, held.entered.is_set, "the app's sync is under way")
            yield SimpleNamespace(proxy=proxy, client=client, held=held, app=app, pilot=pilot)
        app.replica.close()


# ---------------------------------------------------------------------- daemon + daemon


def test_a_second_daemon_exits_5_naming_the_first_which_keeps_serving_and_wakes_on_sigusr1(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    daemon = client.popen("sync", "--daemon", "--interval", "3600")
    try:
        wait_until(lambda: status(client).get("bootstrapped"), "the daemon's first sync is done")
        second = client.cli("sync", "--daemon", timeout=30)
        assert second.returncode == 5
        assert f"sync daemon (pid {daemon.pid})" in second.stderr and second.stderr.count("\n") == 1
        info = status(client)
        assert info["daemon_pid"] == daemon.pid and daemon.poll() is None
        assert f"a sync daemon (pid {daemon.pid}) serves this replica" in client.cli("status").stdout
        # SIGUSR1 (`kill -USR1 <pid>`) makes it sync now, long before its hour-long interval.
        cid, city = change_on_server(server)
        daemon.send_signal(signal.SIGUSR1)
        wait_until(lambda: replica_city(client, cid) == city, "the woken daemon brought the change")
    finally:
        err = stop_daemon(daemon)
    assert daemon.returncode == 0 and "daemon stopped" in err
    assert status(client)["daemon_pid"] is None


# ---------------------------------------------------------------------- daemon + once


def test_sync_once_next_to_a_daemon_waits_for_its_run_then_does_its_own(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        held = hold_next_pull(proxy)
        daemon = client.popen("sync", "--daemon", "--interval", "3600")
        try:
            assert held.entered.wait(60)  # the daemon's first run is under way
            cid, city = change_on_server(server)
            once = Watched(client.popen("sync", "--once"))
            once.wait_for(f"waiting for the sync daemon's run (pid {daemon.pid}) to finish")
            held.open()
            code, out, err = once.finish()
            assert code == 0, err
            assert out.startswith("synced: ") and "daemon" not in out
            assert replica_city(client, cid) == city  # its own run brought the change
            assert daemon.poll() is None
        finally:
            held.open()
            stop_daemon(daemon)
        assert_replica_matches_server(client, server)


# ---------------------------------------------------------------------- once + once


def test_a_second_sync_once_waits_for_the_first_and_never_claims_a_daemon(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        held = hold_next_pull(proxy)
        first = client.popen("sync", "--once")
        assert held.entered.wait(60)
        second = Watched(client.popen("sync", "--once"))
        second.wait_for(f"waiting for another sync (pid {first.pid}) to finish")
        held.open()
        code, out, err = second.finish()
        assert code == 0, err
        assert "daemon" not in out + err
        _out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err

        # Waiting is bounded: past sync.lock_wait the second gives up with exit 5.
        held = hold_next_pull(proxy)
        first = client.popen("sync", "--once")
        try:
            assert held.entered.wait(60)
            second = client.cli("sync", "--once", CRM_TUI_SYNC__LOCK_WAIT="0.2")
            assert second.returncode == 5
            assert f"another sync (pid {first.pid}) holds this replica after" in second.stderr
            assert "daemon" not in second.stdout + second.stderr
        finally:
            held.open()
            first.communicate(timeout=60)
        assert first.returncode == 0


# ---------------------------------------------------------------------- status while a run goes on


def test_status_shows_a_running_sync_as_running_and_a_killed_one_as_interrupted(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        held = hold_next_pull(proxy)
        run = client.popen("sync", "--once")
        try:
            assert held.entered.wait(60)
            info = status(client)
            assert info["recent_syncs"][0]["outcome"] == "running" and info["sync_lock_pid"] == run.pid
            assert f"a sync is running now (pid {run.pid})" in client.cli("status").stdout
        finally:
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
            held.open()
        info = status(client)
        assert info["recent_syncs"][0]["outcome"] == "interrupted" and info["sync_lock_pid"] is None


# ---------------------------------------------------------------------- the app and the others


@pytest.mark.anyio
async def test_sync_once_meets_the_apps_sync_and_the_app_meets_sync_once(server, tmp_path):
    async with app_with_its_sync_held(server, tmp_path) as t:
        app, pilot, client = t.app, t.pilot, t.client
        assert holder_pid(client.paths.lock) == os.getpid()
        once = Watched(client.popen("sync", "--once"))
        await asyncio.to_thread(once.wait_for, f"waiting for another sync (pid {os.getpid()}) to finish")
        t.held.open()
        code, out, err = await asyncio.to_thread(once.finish)
        assert code == 0, err
        assert out.startswith("synced: ") and "daemon" not in out + err
        await await_until(pilot, lambda: app.last_report is not None, "the app's sync is done")
        assert app.last_report.ok

        # Now the other way round: "sync now" in the app while a one-shot run goes on.
        held = hold_next_pull(t.proxy)
        cid, city = change_on_server(server)
        other = client.popen("sync", "--once")
        try:
            await await_until(pilot, held.entered.is_set, "the one-shot run is under way")
            app.last_report = None
            await pilot.press("f5")
            await await_until(pilot, lambda: "waiting for another sync" in app.sync_detail,
                              "the app says it waits for the other run")
            held.open()
            await await_until(pilot, lambda: app.last_report is not None, "the app's sync is done")
            assert app.last_report.ok and not app.last_report.by_daemon
            assert app.sync_state == "online"
        finally:
            held.open()
            await asyncio.to_thread(other.communicate, timeout=60)
        assert other.returncode == 0
        assert app.replica.get("customer", cid)["city"] == city


@pytest.mark.anyio
async def test_a_daemon_started_while_the_app_syncs_waits_then_serves_and_the_app_defers(server, tmp_path):
    async with app_with_its_sync_held(server, tmp_path) as t:
        app, pilot, client = t.app, t.pilot, t.client
        daemon = client.popen("sync", "--daemon", "--interval", "3600")
        try:
            # The daemon does not give up: it waits for the app's run, then does its own.
            await await_until(pilot, lambda: holder_pid(client.paths.daemon_lock) == daemon.pid,
                              "the daemon serves the replica")
            t.held.open()
            await await_until(pilot, lambda: app.last_report is not None, "the app's sync is done")
            await await_until(pilot, lambda: len(client.replica_runs()) >= 2 and holder_pid(client.paths.lock)
                              is None, "the daemon's first run is done")
            assert daemon.poll() is None
            # The app's next background sync is left to the daemon, and says so.
            app.last_report = None
            app.action_sync_now(quiet=True)
            await await_until(pilot, lambda: app.last_report is not None, "the app's tick is done")
            assert app.last_report.by_daemon and app.last_report.daemon_pid == daemon.pid
            assert app.status_info().state == "sync by daemon"
            assert app.status_info().detail == f"pid {daemon.pid}"
            # "Sync now" still syncs, with a true result.
            cid, city = change_on_server(server)
            app.last_report = None
            await pilot.press("f5")
            await await_until(pilot, lambda: app.last_report is not None, "the app's sync is done")
            assert app.last_report.ok and not app.last_report.by_daemon
            assert app.replica.get("customer", cid)["city"] == city
        finally:
            t.held.open()
            err = await asyncio.to_thread(stop_daemon, daemon)
    assert daemon.returncode == 0, err


@pytest.mark.anyio
async def test_the_app_opened_next_to_a_daemon_leaves_background_sync_to_it(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    daemon = client.popen("sync", "--daemon", "--interval", "3600")
    try:
        await asyncio.to_thread(wait_until, lambda: status(client).get("bootstrapped"), "the daemon's first sync")
        runs_before = len(client.replica_runs())
        app = open_app(client)
        async with app.run_test(size=SIZE) as pilot:
            await await_until(pilot, lambda: app.last_report is not None, "the app's first tick")
            assert app.last_report.by_daemon and app.last_report.daemon_pid == daemon.pid
            assert app.status_info().state == "sync by daemon"
            assert len(client.replica_runs()) == runs_before  # the app did not sync itself
        app.replica.close()
    finally:
        err = await asyncio.to_thread(stop_daemon, daemon)
    assert daemon.returncode == 0, err
