"""The status line's unsynced counts (pending, conflicts, rejected) come from a worker on its own
connection after a data change: none is counted on the app's connection, a burst of changes
makes one more count (not one each), and the line then shows the new numbers.

Counted, never timed: statements on the app's connection, counts the worker brought back."""

from __future__ import annotations

import pytest

from support.pilot import settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


def status_text(app) -> str:
    return str(app.screen.query_one("#status-sync").render())


def counting(statements: list[str]) -> list[str]:
    return [s for s in statements if "count(" in s.lower() and ("outbox" in s or "conflicts" in s)]


async def test_a_data_change_counts_apart_and_the_status_line_shows_the_new_numbers(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = app.replica.outbox.counts()
        statements: list[str] = []
        app.replica.conn.set_trace_callback(statements.append)
        try:
            # Elsewhere (a sync daemon, another process) a change of ours is refused and another
            # meets a conflict; the app hears the replica changed.
            with app.replica.reopen() as other:
                for cid in ("cu_005", "cu_006"):
                    other.writes.update("customer", cid, {"city": "Bonn"})
                ops = [op for op in other.outbox.next_batch(100) if op.record_id in ("cu_005", "cu_006")]
                record = {**other.get("customer", "cu_005"), "city": "Leipzig", "version": 99}
                other.results.apply(ops, [
                    {"op_id": ops[0].op_id, "status": "conflict", "version": 99, "record": record,
                     "conflicts": [{"field": "city", "server": "Leipzig", "client": "Bonn"}]},
                    {"op_id": ops[1].op_id, "status": "rejected",
                     "error": {"code": "validation", "message": "city: not here"}}])
            app.data_changed()
            await settle(pilot)
        finally:
            app.replica.conn.set_trace_callback(None)
        assert counting(statements) == []  # none on the UI thread's connection
        after = app.replica.outbox.counts()
        assert after["conflicts"] == before["conflicts"] + 1 and after["rejected"] == before["rejected"] + 1
        text = status_text(app)
        assert f"{after['conflicts']} conflict" in text and f"{after['rejected']} rejected" in text, text


async def test_a_burst_of_changes_runs_one_more_count_and_the_line_keeps_the_last_numbers(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = status_text(app)
        read = app.status_counts_read
        statements: list[str] = []
        app.replica.conn.set_trace_callback(statements.append)
        try:
            for _ in range(10):
                app.data_changed()
                # Until the count comes back, the line shows the last known numbers.
                assert status_text(app) == shown
            await settle(pilot)
        finally:
            app.replica.conn.set_trace_callback(None)
        assert counting(statements) == []
        # The count that started with the first change, and one for the nine while it ran.
        assert app.status_counts_read - read == 2
        assert status_text(app) == shown
