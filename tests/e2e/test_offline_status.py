"""The status line says "offline" as soon as the server is found gone, not when the retries run
out (issue 10: after the server was killed the status said "syncing" for ~20 s before "offline").
The real app, the real server (killed, or frozen behind a FaultProxy); the run's retries go on in
the background meanwhile. Counts, not times: the attempt the status line names, the requests the
proxy saw."""

from __future__ import annotations

import re
import threading

import pytest

from crm_tui.config import Settings
from crm_tui.replicas import open_replica
from screens.app import CrmApp
from support.client import ClientReplica
from support.faultproxy import FaultProxy, gate, hang
from sync.runner import sync_once

pytestmark = pytest.mark.anyio
SIZE = (120, 36)
# Retries far apart: a run that has not given up yet is still retrying when the test looks.
SLOW_RETRIES = {"max_retries": 5, "backoff_base": 60.0, "backoff_max": 600.0}


@pytest.fixture
def anyio_backend():
    return "asyncio"


def app_for(client: ClientReplica, stop: threading.Event) -> CrmApp:
    """As support.app.open_app, with a ``stop`` that ends the run's retry waits when the test is done."""
    settings = Settings(sync=client.sync_settings, animations=False, sync_in_app=True)

    def runner(on_event, periodic=False):
        return sync_once(client.paths, settings, on_event, stop, periodic=periodic)

    return CrmApp(open_replica(client.paths, client.settings), settings, sync_runner=runner)


def status_text(app: CrmApp) -> str:
    return str(app.screen.query_one("#status-sync").render())


async def until(pilot, condition, what: str, pauses: int = 400) -> None:
    for _ in range(pauses):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{what}; the status line says: {status_text(pilot.app)!r}")


def running(app: CrmApp) -> bool:
    return app._sync_worker is not None and app._sync_worker.is_running


async def test_a_killed_server_shows_offline_at_the_first_refused_connection(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex", **SLOW_RETRIES)
    assert client.sync().ok
    stop = threading.Event()
    app = app_for(client, stop)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.sync_state == "online", "the start-up sync never finished")
            assert "● online" in status_text(app)
            server.proc.kill()  # the server is gone: its port refuses connections
            server.proc.wait()
            await pilot.press("escape", "f5")
            await until(pilot, lambda: "offline" in status_text(app), "never offline while the run retries")
            text = status_text(app)
            assert running(app), "offline is shown while the run still retries in the background"
            attempt = re.search(r"(\d+) failed attempts? so far", text)
            assert attempt and int(attempt[1]) < 6, text
            assert "the server does not answer" in text
            stop.set()
            await until(pilot, lambda: not running(app), "the stopped run never ended")
    finally:
        stop.set()
        app.replica.close()


async def test_a_hanging_server_shows_waiting_then_offline_at_the_first_request_deadline(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, request_timeout=1.0, **SLOW_RETRIES)
        assert client.sync().ok
        stop = threading.Event()
        app = app_for(client, stop)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.sync_state == "online", "the start-up sync never finished")
                # A server that takes its time (held until the test lets it go): after two clock
                # ticks without a word from the run, the status line says what it waits for.
                held = gate()
                rule = proxy.add_rule(held, path="/v1/me", times=1)
                await pilot.press("escape", "f5")
                assert held.entered.wait(30), "the sync never asked the server"
                app.clock_tick()
                await pilot.pause()
                assert "waiting for the server" not in status_text(app), "one quiet tick is no news yet"
                app.clock_tick()
                await pilot.pause()
                assert "● syncing" in status_text(app) and "waiting for the server" in status_text(app)
                held.open()
                await until(pilot, lambda: app.sync_state == "online" and not running(app), "the held run never ended")
                assert rule.hits == 1

                # A server that never answers: offline at the first request's deadline.
                proxy.add_rule(hang(), path="/v1/me")
                before = proxy.requests.count(("GET", "/v1/me"))
                await pilot.press("f5")
                await until(pilot, lambda: "offline" in status_text(app), "never offline while the run retries")
                assert running(app), "offline is shown while the run still retries in the background"
                attempt = re.search(r"(\d+) failed attempts? so far", status_text(app))
                assert attempt, status_text(app)
                assert proxy.requests.count(("GET", "/v1/me")) - before == int(attempt[1])
                stop.set()
                await until(pilot, lambda: not running(app), "the stopped run never ended")
        finally:
            stop.set()
            app.replica.close()
