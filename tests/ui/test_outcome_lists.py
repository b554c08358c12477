"""Conflicts and rejected changes are windows onto the whole list: the first rows at once, the
count from a worker on its own connection (none on the app's), `G` to the true last row.

Counted, never timed: statements on the app's connection, rows on screen.
"""

from __future__ import annotations

import pytest

from screens.conflicts import ConflictsScreen
from screens.rejected import RejectedScreen
from support import ui_data
from support.pilot import settle, visible_text

pytestmark = pytest.mark.anyio

SIZE = (120, 36)
N = 250  # more than one block of rows (100)


@pytest.fixture
def outcomes(open_replica, make_app):
    """The full replica and N customers, each with a conflict and a rejected change of ours."""
    replica = open_replica("full")
    many = ui_data.many_customers(N, "Outcome Partners")
    ui_data.add_customers(replica, many)
    for c in many:
        replica.writes.update("customer", c["id"], {"city": "Potsdam"})
    ops = [op for op in replica.outbox.next_batch(10 * N) if op.record_id.startswith("cb_")]
    replica.results.apply(ops, [
        {"op_id": op.op_id, "status": "conflict", "version": 3,
         "record": {**next(c for c in many if c["id"] == op.record_id), "city": "Leipzig", "version": 3},
         "conflicts": [{"field": "city", "server": "Leipzig", "client": "Potsdam"}]} for op in ops])
    for c in many:
        replica.writes.update("customer", c["id"], {"tier": "gold"})
    ops = [op for op in replica.outbox.next_batch(10 * N) if op.record_id.startswith("cb_")]
    replica.results.apply(ops, [{"op_id": op.op_id, "status": "rejected",
                                 "error": {"code": "validation", "message": f"tier: not for {op.record_id}"}}
                                for op in ops])
    return make_app(replica=replica)


CASES = [
    pytest.param("5", ConflictsScreen, "#conflicts-intro", "conflicts", id="conflicts"),
    pytest.param("6", RejectedScreen, "#rejected-intro", "changes", id="rejected"),
]


@pytest.mark.parametrize(("key", "screen_type", "intro", "noun"), CASES)
async def test_opening_the_list_counts_apart_and_G_reaches_the_last_row(outcomes, key, screen_type, intro, noun):
    app = outcomes
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        statements: list[str] = []
        app.replica.conn.set_trace_callback(statements.append)
        try:
            app.replica.outbox.counts()  # what the status line reads: its own matter, set apart
            status = set(statements)
            statements.clear()
            await pilot.press(key)
            await pilot.pause()
        finally:
            app.replica.conn.set_trace_callback(None)
        screen = app.screen
        assert isinstance(screen, screen_type)
        table = screen.table
        ours = [s for s in statements if ("conflicts" in s or "outbox" in s) and s not in status]
        # No count of the whole list on the app's connection: the first rows, read by position.
        assert ours and not [s for s in ours if "count(" in s.lower()], ours
        assert "Outcome Partners 0000" in visible_text(table), visible_text(table)
        await settle(pilot)
        total = N + (1 if noun == "conflicts" else 2)  # and the fixture's own
        assert table.row_count == total
        assert f"{total} {noun}" in str(screen.query_one(intro).render())
        await pilot.press("G")
        await pilot.pause()
        assert table.cursor_row == total - 1
        assert "Outcome Partners 0249" in visible_text(table).splitlines()[-1]


async def test_the_cursor_stays_on_its_row_past_the_first_block_when_the_list_is_read_again(outcomes):
    app = outcomes
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "6")
        await settle(pilot)
        table = app.screen.table
        table.move_cursor(row=180)
        await pilot.pause()
        key = table.current_key
        app.screen.refresh_data()
        await settle(pilot)
        assert table.cursor_row == 180 and table.current_key == key
