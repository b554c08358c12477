"""A save asks for a sync: it reaches the server without waiting for ``sync.interval``, a burst of
saves goes in one push, and a server that is gone shows "offline" at the save (issue 10, "all day
in the app"). And what "offline" counts only ever grows: the failed attempts in a row, across runs,
until the server answers again (it said "retry 5 of 5", then "retry 3 of 5" with the next run).

The real app under Textual's pilot, the real sync runner, the real server over loopback, a
FaultProxy counting the requests; the interval is an hour, so only a save can explain a sync.
Counts, never times."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import threading
import time

import pytest

import sync.runner
from crm_tui.config import Settings
from crm_tui.replicas import open_replica
from screens.app import CrmApp
from support.client import ClientReplica
from support.faultproxy import FaultProxy, drop_before, replace_body
from sync.runner import daemon_pid, sync_once

pytestmark = pytest.mark.anyio
SIZE = (120, 36)
HOUR = {"interval": 3600.0}
# Retries far apart: a run that has not given up yet is still retrying when the test looks.
SLOW_RETRIES = {"max_retries": 5, "backoff_base": 60.0, "backoff_max": 600.0}
BATCH = ("POST", "/v1/batch")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def app_for(client: ClientReplica, stop: threading.Event, *, daemon: bool = False) -> CrmApp:
    """The app as `crm-tui` opens it (crm_tui/launch.py), with a ``stop`` that ends the run's
    retry waits when the test is done; ``daemon``: it sees (and wakes) a sync daemon, as launched."""
    settings = Settings(sync=client.sync_settings, animations=False, sync_in_app=True)

    def runner(on_event, periodic=False):
        return sync_once(client.paths, settings, on_event, stop, periodic=periodic)

    extra = {"daemon_probe": lambda: daemon_pid(client.paths),
             "daemon_wake": lambda: sync.runner.wake_daemon(client.paths)} if daemon else {}
    return CrmApp(open_replica(client.paths, client.settings), settings, sync_runner=runner, **extra)


def status_text(app: CrmApp) -> str:
    return str(app.screen.query_one("#status-sync").render())


def running(app: CrmApp) -> bool:
    return app._sync_worker is not None and app._sync_worker.is_running


async def until(pilot, condition, what: str, pauses: int = 600) -> None:
    for _ in range(pauses):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{what}; the status line says: {status_text(pilot.app)!r}")


async def started(app: CrmApp, pilot) -> None:
    await until(pilot, lambda: app.last_report is not None and not running(app), "the start-up sync never finished")


def customer_ids(server, n: int) -> list[str]:
    """``n`` customers alex (the app's user) may edit, as the server lists them to alex."""
    with server.client("alex") as http:
        items = http.get("/v1/customers", params={"limit": n}).json()["items"]
    assert len(items) == n
    return [item["id"] for item in items]


def burst_notes(server, cid: str) -> list[str]:
    with server.client("ada") as http:
        items = http.get("/v1/activities", params={"customer_id": cid, "limit": 500}).json()["items"]
    return [a["body"] for a in items if (a.get("body") or "").startswith("burst ")]


def server_city(server, cid: str) -> str | None:
    rec = server.get_record("customers", cid)
    return rec and rec["city"]


# ---------------------------------------------------------------------- a save asks for a sync


async def test_one_save_reaches_the_server_without_waiting_for_the_interval(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, **HOUR)
        assert client.sync().ok
        stop = threading.Event()
        app = app_for(client, stop)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await started(app, pilot)
                before = proxy.requests.count(BATCH)
                [cid] = customer_ids(server, 1)
                said: list[str] = []
                app.status_changed.subscribe(app, lambda info: said.append(info.detail), immediate=True)
                app.last_report = None
                app.save("update", "customer", {"city": "Nudgeville"}, record_id=cid)
                await until(pilot, lambda: server_city(server, cid) == "Nudgeville",
                            "the save never reached the server within the hour-long interval")
                await until(pilot, lambda: app.last_report is not None and not running(app), "the sync never ended")
                await pilot.pause()
                assert proxy.requests.count(BATCH) - before == 1
                assert app.sync_nudges == 1
                assert app.replica.outbox.counts()["pending"] == 0
                assert "online" in status_text(app)
                # What the run said as it pulled its own change back: in the right number.
                assert "pulled 1 change" in said, said
        finally:
            stop.set()
            app.replica.close()


async def test_twenty_quick_saves_go_in_one_push_and_all_arrive_once(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, **HOUR)
        assert client.sync().ok
        stop = threading.Event()
        app = app_for(client, stop)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await started(app, pilot)
                before = proxy.requests.count(BATCH)
                [cid] = customer_ids(server, 1)
                for i in range(20):  # as fast as a user saves: one after the other
                    app.save("create", "activity", {"customer_id": cid, "kind": "note", "body": f"burst {i}",
                                                    "occurred_at": "2026-11-25T10:00:00Z"})
                await until(pilot, lambda: len(burst_notes(server, cid)) >= 20, "the burst never reached the server")
                await until(pilot, lambda: not running(app) and app._nudge is None, "the syncs never ended")
                pushes = proxy.requests.count(BATCH) - before
                assert 1 <= pushes <= 2, f"{pushes} push requests for one burst of 20 saves"
                assert app.sync_nudges <= 2
                assert app.replica.outbox.counts()["pending"] == 0
                # Nothing lost, nothing twice.
                assert sorted(burst_notes(server, cid)) == sorted(f"burst {i}" for i in range(20))
        finally:
            stop.set()
            app.replica.close()


async def test_a_save_with_the_server_gone_shows_offline_at_once(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex", **HOUR, **SLOW_RETRIES)
    assert client.sync().ok
    stop = threading.Event()
    app = app_for(client, stop)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await started(app, pilot)
            assert "● online" in status_text(app)
            [cid] = customer_ids(server, 1)
            server.proc.kill()  # the server is gone: its port refuses connections
            server.proc.wait()
            app.save("update", "customer", {"city": "Nowhere"}, record_id=cid)
            await until(pilot, lambda: "offline" in status_text(app), "the save never found the server gone")
            text = status_text(app)
            assert running(app), "offline shows while the run still retries, not after an interval"
            assert re.search(r"the server does not answer; \d+ failed attempts? so far", text), text
            assert app.replica.outbox.counts()["pending"] == 1  # kept for the server's return
            stop.set()
            await until(pilot, lambda: not running(app), "the stopped run never ended")
    finally:
        stop.set()
        app.replica.close()


# ---------------------------------------------------------------------- the count never steps back


def attempts_said(text: str) -> int | None:
    """The attempt number a status text names: the count of failed attempts, or the retry of
    the old wording ("retry 3 of 5")."""
    found = re.search(r"(\d+) failed attempts? so far|retry (\d+) of \d+", text)
    return int(found[1] or found[2]) if found else None


async def test_the_failed_attempts_shown_never_step_back_across_runs(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex", **HOUR)  # 2 retries: 3 attempts a run
    assert client.sync().ok
    server.proc.kill()
    server.proc.wait()
    stop = threading.Event()
    app = app_for(client, stop)
    said: list[str] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.status_changed.subscribe(app, lambda info: said.append(info.detail), immediate=True)
            await started(app, pilot)  # the start-up run: offline
            for _ in range(3):  # three more runs, as f5 (or the interval) starts them
                app.last_report = None
                await pilot.press("f5")
                await until(pilot, lambda: app.last_report is not None and not running(app), "the run never ended")
            assert app.sync_state == "offline"
            numbers = [n for n in map(attempts_said, said) if n is not None]
            assert numbers, said
            steps_back = [(a, b) for a, b in itertools.pairwise(numbers) if b < a]
            assert not steps_back, f"the count stepped back: {numbers}"
            # True: 4 runs of 3 attempts each (2 retries), none answered.
            assert numbers[-1] == 12, numbers
            assert "the server does not answer; 12 failed attempts so far" in status_text(app)
    finally:
        stop.set()
        app.replica.close()


async def test_the_count_starts_again_once_the_server_answers(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, **HOUR)  # 3 attempts a run
        assert client.sync().ok
        rule = proxy.add_rule(drop_before(), path="/v1/me", times=3)  # the start-up run: none answered
        stop = threading.Event()
        app = app_for(client, stop)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await started(app, pilot)
                assert rule.hits == 3 and app.last_report.offline
                assert app.last_report.failed_attempts == 3
                assert "; 3 failed attempts so far" in status_text(app)
                app.last_report = None
                await pilot.press("f5")
                await until(pilot, lambda: app.last_report is not None and not running(app), "the run never ended")
                assert app.last_report.ok and app.sync_state == "online"
                assert "failed attempt" not in status_text(app)
                with client.replica() as r:
                    assert r.history.failed_attempts() is None
                # One failure, then an answer within the same run: over again at once.
                proxy.add_rule(drop_before(), path="/v1/me", times=1)
                app.last_report = None
                await pilot.press("f5")
                await until(pilot, lambda: app.last_report is not None and not running(app), "the run never ended")
                assert app.last_report.ok, app.last_report
                with client.replica() as r:
                    assert r.history.failed_attempts() is None
        finally:
            stop.set()
            app.replica.close()


def test_status_counts_the_failed_attempts_of_every_process_in_a_row(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex")
    assert client.sync().ok
    assert "offline" not in client.cli("status").stdout
    server.proc.kill()
    server.proc.wait()
    for _ in range(2):  # two one-shot runs, each 3 attempts (the CLI's test env: 2 retries)
        assert client.cli("sync", "--once").returncode == 4
    assert not client.sync().ok  # and one in this process: 3 more (FAST: 2 retries)
    out = client.cli("status").stdout
    assert "offline       the server does not answer; 9 failed attempts so far (since " in out, out


def test_a_run_without_retries_says_it_failed_once(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex", max_retries=0)
    server.proc.kill()
    server.proc.wait()
    report = client.sync()
    assert report.offline and report.failed_attempts == 1
    assert "failed 1 time in this run" in (report.error or ""), report.error
    assert report.offline_detail == "the server does not answer; 1 failed attempt so far"


async def test_the_sync_screen_names_the_last_runs_error_not_an_older_one(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, **HOUR)
        assert client.sync().ok
        # The start-up run fails (a sign-in page instead of JSON); the next finds no server.
        proxy.add_rule(replace_body(b"<html>sign in</html>"), path="/v1/me", times=1)
        stop = threading.Event()
        app = app_for(client, stop)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await started(app, pilot)
                assert app.sync_state == "sync failed"
                app.show_section("sync")
                await pilot.pause()
                assert "instead of JSON" in str(app.screen.query_one("#sync-state").render())
                proxy.add_rule(drop_before(), path="/v1/me")
                app.last_report = None
                await pilot.press("f5")
                await until(pilot, lambda: app.last_report is not None and not running(app), "the run never ended")
                await pilot.pause()
                assert app.sync_state == "offline"
                shown = str(app.screen.query_one("#sync-state").render())
                assert "last error: " in shown and "failed 3 times in this run" in shown, shown
                assert "instead of JSON" not in shown, shown
                assert "3 failed attempts so far" in shown, shown
        finally:
            stop.set()
            app.replica.close()


# ---------------------------------------------------------------------- a daemon serves the replica


def wait_until(condition, what: str, tries: int = 1200) -> None:
    for _ in range(tries):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


def stop_daemon(daemon: subprocess.Popen) -> str:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    _out, err = daemon.communicate(timeout=30)
    return err


@pytest.mark.slow
async def test_with_a_daemon_a_save_wakes_it_and_its_offline_shows_in_the_app(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, **HOUR)
        assert client.sync().ok
        daemon = client.popen("sync", "--daemon", "--interval", "3600")
        stop = threading.Event()
        app = app_for(client, stop, daemon=True)
        try:
            wait_until(lambda: [r["ok"] for r in client.replica_runs()] == [1, 1], "the daemon's first run ended")
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.sync_state == "sync by daemon" and not running(app),
                            "the app never left its sync to the daemon")
                before = proxy.requests.count(BATCH)
                [cid] = customer_ids(server, 1)
                app.save("update", "customer", {"city": "Daemonville"}, record_id=cid)
                await until(pilot, lambda: server_city(server, cid) == "Daemonville",
                            "the daemon never pushed the save within its hour-long interval")
                assert proxy.requests.count(BATCH) - before == 1
                # The status line catches up with the daemon's run: nothing pending.
                await until(pilot, lambda: app.status_info().pending == 0, "the status line still counts it pending")
                assert f"sync by daemon pid {daemon.pid}" in status_text(app)

                # The server goes: the daemon's failed attempts show in the app, the same words.
                server.proc.kill()
                server.proc.wait()
                app.save("update", "customer", {"city": "Gone"}, record_id=cid)
                await until(pilot, lambda: "failed attempt" in status_text(app),
                            "the app never showed that the daemon's server does not answer")
                assert app.sync_state == "sync by daemon"
                assert app.status_info().tone == "text-warning"
        finally:
            stop.set()
            app.replica.close()
            stop_daemon(daemon)
