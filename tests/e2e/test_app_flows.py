"""The app's main flows end to end: keys through Textual's pilot, the real replica, the real sync
runner in the app's thread worker, the real server over loopback."""

from __future__ import annotations

import signal
import time

import pytest

from crm_tui.replica_key import read_key_info
from screens.app import CrmApp
from screens.conflicts import ConflictResolveScreen
from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.pipeline import OPEN_STAGES, PipelineScreen
from screens.tickets import TicketQueueScreen
from support.app import open_app
from support.client import ClientReplica
from support.faultproxy import FaultProxy, gate
from support.pilot import settle
from support.server import make_op

pytestmark = pytest.mark.anyio
SIZE = (120, 36)


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def started(app: CrmApp, pilot) -> None:
    """Wait for the sync the app runs on its own when it starts: a test's changes then meet only
    the syncs the test asks for (else the start-up run may or may not carry them)."""
    for _ in range(400):
        if app.sync_state != "syncing":
            return
        await pilot.pause(0.05)
    raise AssertionError("the app's start-up sync never finished")


async def sync_now(app: CrmApp, pilot) -> None:
    await started(app, pilot)
    app.last_report = None
    await pilot.press("f5")
    for _ in range(400):
        await pilot.pause(0.05)
        if app.last_report is not None and app.sync_state != "syncing":
            break
    assert app.last_report is not None, "the sync never finished"


async def test_search_open_edit_then_synced_to_the_server(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, interval=3600)
        assert client.sync().ok
        target = server.get_record("customers", "cus-0000003")
        app = open_app(client)
        async with app.run_test(size=SIZE) as pilot:
            await started(app, pilot)
            await pilot.press(*target["name"][:12].lower())
            await settle(pilot)
            results = app.screen.query_one("#search-results")
            assert results.current_row()["id"] == target["id"]
            await pilot.press("enter", "enter")
            await pilot.pause()
            assert isinstance(app.screen, Customer360Screen)
            await pilot.press("e")
            await pilot.pause()
            assert isinstance(app.screen, RecordForm)
            app.screen.query_one("#field-city").value = "Trondheim"
            # The save asks for a sync of its own (no f5, an hour-long interval): its push is held
            # at a gate while the test looks at what waits to be sent.
            held = gate()
            proxy.add_rule(held, method="POST", path="/v1/batch", times=1)
            app.last_report = None
            await pilot.press("f2")
            for _ in range(400):
                if held.entered.is_set():
                    break
                await pilot.pause(0.05)
            assert held.entered.is_set(), "the save never asked for a sync"
            await pilot.pause()
            [op] = app.replica.outbox.pending()
            assert op.fields == {"city": "Trondheim"}
            assert "pending sync" in str(app.screen.query_one("#c360-header").render())

            held.open()
            for _ in range(400):
                if app.last_report is not None and app.sync_state != "syncing":
                    break
                await pilot.pause(0.05)
            await pilot.pause()
            assert app.last_report.ok and app.last_report.pushed == 1, app.last_report
            assert app.replica.outbox.counts()["pending"] == 0
            assert "pending sync" not in str(app.screen.query_one("#c360-header").render())
        app.replica.close()
    assert server.get_record("customers", target["id"])["city"] == "Trondheim"


async def test_ticket_triage_and_a_deal_move_reach_the_server(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex")
    assert client.sync().ok
    app = open_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("escape", "escape", "2", "v", "v")  # the queue: mine -> team -> all
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TicketQueueScreen)
        ticket = screen.panel.table.current_row()
        await pilot.press("a")  # assign to me
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
        pipeline = app.screen
        assert isinstance(pipeline, PipelineScreen)
        # The first open stage that has a deal (which one depends on the seeded data), moved on.
        stage = next(s for s in OPEN_STAGES[:-1] if pipeline.table(s).row_count)
        pipeline.table(stage).focus()
        await pilot.pause()
        deal = pipeline.table(stage).current_row()
        await pilot.press("greater_than_sign")
        await settle(pilot)
        await sync_now(app, pilot)
        assert app.last_report.ok, app.last_report
    app.replica.close()
    assert server.get_record("tickets", ticket["id"])["assignee_id"] == server.user_ids["alex"]
    assert server.get_record("deals", deal["id"])["stage"] == OPEN_STAGES[OPEN_STAGES.index(stage) + 1]


async def test_a_conflict_is_shown_and_resolved_with_mine(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex")
    assert client.sync().ok
    cid = "cus-0000004"
    app = open_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.replica.writes.update("customer", cid, {"phone": "+47 22 000 111"})
        rec = server.get_record("customers", cid)
        [res] = server.batch([make_op("update", "customer", cid, {"phone": "+47 99 999 999"},
                                      base_version=rec["version"])])
        assert res["status"] == "applied"
        await sync_now(app, pilot)
        assert app.last_report.conflicts == 1
        await pilot.press("escape", "escape", "5")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConflictResolveScreen)
        await pilot.press("m", "a")
        await pilot.pause()
        await sync_now(app, pilot)
        assert app.last_report.ok and app.replica.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}
    app.replica.close()
    assert server.get_record("customers", cid)["phone"] == "+47 22 000 111"


async def test_a_rejected_op_fixed_in_the_app_and_resent(server, tmp_path):
    client = ClientReplica(tmp_path / "sam", server, "sam")
    assert client.sync().ok
    app = open_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        created = app.replica.writes.create("customer", {"name": "Fjord Fisheries", "territory": "nordics"})
        await sync_now(app, pilot)
        assert app.last_report.rejected == 1
        await pilot.press("escape", "escape", "6")
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        form.query_one("#field-territory").value = "dach"
        await pilot.press("f2")
        await settle(pilot)
        await sync_now(app, pilot)
        assert app.last_report.ok and app.replica.outbox.counts()["rejected"] == 0, app.last_report
    app.replica.close()
    assert server.get_record("customers", created["id"])["territory"] == "dach"


async def test_the_app_works_offline_and_says_so(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex")
    assert client.sync().ok
    server.stop()
    app = open_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await sync_now(app, pilot)
        assert app.sync_state == "offline"
        await pilot.press(*"a")
        await settle(pilot)
        assert app.screen.query_one("#search-results").row_count > 0  # lookups still answer
        app.replica.writes.update("customer", "cus-0000001", {"city": "Offline Town"})
        app.data_changed()
        await settle(pilot)  # the status line's counts come from a worker
        assert app.status_info().pending == 1
    app.replica.close()


async def test_the_app_and_the_daemon_share_an_encrypted_replica(server, tmp_path):
    client = ClientReplica(tmp_path / "alex", server, "alex")
    daemon = client.popen("sync", "--daemon", "--interval", "3600")
    try:
        for _ in range(300):
            if '"bootstrapped": true' in client.cli("status", "--json").stdout:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the daemon never bootstrapped the replica")
        assert read_key_info(client.paths)["store"] == "keyring"
        target = server.get_record("customers", "cus-0000003")
        app = open_app(client)  # opened while the daemon holds it, with the key from the keyring
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(*target["name"][:12].lower())
            await settle(pilot)
            assert app.screen.query_one("#search-results").current_row()["id"] == target["id"]
            app.replica.writes.update("customer", target["id"], {"city": "Trondheim"})
            await sync_now(app, pilot)  # a run of the app's own, while the daemon keeps its connection
            assert app.last_report.ok, app.last_report
            for _ in range(300):
                if server.get_record("customers", target["id"])["city"] == "Trondheim":
                    break
                await pilot.pause(0.1)
            assert server.get_record("customers", target["id"])["city"] == "Trondheim"
            assert app.replica.outbox.counts()["pending"] == 0
        app.replica.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
