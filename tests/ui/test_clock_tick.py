"""Relative times on screen follow the app's clock (issue 10: "synced 30 s ago" read "34 s ago"
24 s later, and a ticket's thread row stayed "31 s ago" for minutes). The app's clock ticks every
few seconds (``CrmApp.clock_tick``); here the test moves the clock and ticks it."""

from __future__ import annotations

import datetime as dt

import pytest

from screens.tables import WindowTable
from screens.ticket_detail import TicketDetailScreen
from support import ui_data

pytestmark = pytest.mark.anyio
SIZE = (120, 36)


def status_text(app) -> str:
    return str(app.screen.query_one("#status-sync").render())


async def test_the_status_line_and_a_ticket_thread_say_again_how_long_ago_as_the_clock_moves(open_replica, make_app):
    now = [ui_data.NOW]
    replica = open_replica("full", clock=lambda: now[0])
    replica.set_meta("last_sync_at", (ui_data.NOW - dt.timedelta(seconds=30)).isoformat())
    replica.writes.create("activity", {"ticket_id": "ti_001", "customer_id": replica.get("ticket", "ti_001")["customer_id"],
                                       "kind": "note", "subject": "Called back", "body": "left a message",
                                       "occurred_at": (ui_data.NOW - dt.timedelta(seconds=31)).isoformat()})
    app = make_app(replica=replica, sync_in_app=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(TicketDetailScreen("ti_001"))
        await pilot.pause()
        table = app.screen.query_one("#ticket-activity", WindowTable)
        assert "synced 30 s ago" in status_text(app)
        assert "31 s ago" in table.line_text(0) and "Called back" in table.line_text(0)
        drawn = table.rows_rendered
        app.clock_tick()
        await pilot.pause()
        assert table.rows_rendered == drawn, "a tick of a clock that stood still draws nothing again"

        now[0] = ui_data.NOW + dt.timedelta(seconds=90)
        app.clock_tick()
        await pilot.pause()
        assert "synced 2 min ago" in status_text(app)
        assert "2 min ago" in table.line_text(0), table.line_text(0)
        read = table.reads
        now[0] = ui_data.NOW + dt.timedelta(minutes=10)
        app.clock_tick()
        await pilot.pause()
        assert "10 min ago" in table.line_text(0)
        assert table.reads == read, "a tick draws the rows in view again; it does not re-read them"
