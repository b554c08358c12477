"""Scenario 8: whole lists. `G` on the full ticket queue → its last row painted; `/` filtering the
full queue → the matching rows and their count painted, per keystroke; `v` switching the queue's
view → the new view's first rows painted, with the SQL the app ran on its own connection (the UI
thread's) meanwhile: none of it may count the queue (headless Textual, p50/p95).

The app runs on the full replica, the queue in its "all" view with the status filter "any" (every
ticket of the organisation, 500k at 1M customers: the whole list, not the active part agents work). For `G` the
clock runs from the key event to the first frame rendered with the cursor on the last row (the
cursor row is drawn in that frame); then `g` goes back to the top, untimed. For `/` each filter
is typed one key at a time, each key timed to the first frame showing the rows for the text so
far (the queue counts a big filter's matches apart, after painting its first rows; the count is
awaited after each filter's last key); the box is cleared between filters.

For `v` each view (mine, team, all, unassigned) is timed from the key event to the first frame
showing that view; the statements on the app's connection are recorded from the key to that frame,
and those that count or sum tickets (the queue's count, its overdue count: they grow with the
queue) are counted apart: the queue counts them in workers, so that number stays 0. The counts
are awaited before the next key.

Floors, in the same process and rounds: the raw SQL beneath each action on the same connection —
for `G` the last block of rows (walked from the end of the index; the count is known already), for `/` the
filtered count and the first block of matching rows, for `v` the new view's first block of rows.
Also, for contrast, the last block read by walking the index forward (a plain OFFSET), which a list
without the reversed walk would pay.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import variant
from bench.scenarios.tui import SETTINGS, _key_event, _Paint
from bench.stats import summary

SIZE = (120, 40)
FILTERS = ("refund", "csv", "vat")
VIEWS = ("team", "all", "unassigned", "mine")  # the order `v` steps through them from "mine"
BLOCK = 100


def _counts_tickets(sql: str) -> bool:
    """Whether ``sql`` counts or sums tickets: a statement whose cost grows with the queue."""
    low = sql.lower()
    return "from tickets" in low and ("count(" in low or "sum(" in low)


def _floor_G(window: Any, total: int, rec: dict[str, list[float]]) -> None:
    t = time.perf_counter()
    window.rows(max(0, total - BLOCK), BLOCK, total=total)
    rec["G_floor"].append(time.perf_counter() - t)
    t = time.perf_counter()
    window.rows(max(0, total - BLOCK), BLOCK)  # no total: the forward walk past every row before
    rec["G_forward_offset"].append(time.perf_counter() - t)


def _floor_view(window: Any, rec: dict[str, list[float]]) -> None:
    t = time.perf_counter()
    window.rows(0, BLOCK)
    rec["view_floor"].append(time.perf_counter() - t)


def _floor_filter(window: Any, text: str, rec: dict[str, list[float]]) -> None:
    t = time.perf_counter()
    total = window.count(text)
    t_count = time.perf_counter()
    window.rows(0, BLOCK, text, total=total)
    rec["filter_floor"].append(time.perf_counter() - t)
    rec["filter_count_floor"].append(t_count - t)


async def _round(cfg: dict[str, Any], rec: dict[str, list[float]], extra: dict[str, Any]) -> None:
    from crm_tui.config import Settings
    from screens.app import CrmApp
    from screens.tickets import TicketQueueScreen

    replica = variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg)
    app = CrmApp(replica, Settings(**SETTINGS), sync_runner=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TicketQueueScreen)
        screen.status_filter = "any"  # every ticket, whatever its status: the whole list
        screen.set_view("all")
        await pilot.pause()
        await app.workers.wait_for_complete()  # the queue's count comes from a worker
        await pilot.pause()
        table = screen.panel.table
        table.focus()
        await pilot.pause()
        window = replica.lists.ticket_queue("all", **screen._query_args())
        extra["queue_rows"] = table.total
        # Statements the app runs per action (the floors run theirs outside the counted span).
        statements: list[str] = []
        counts: dict[str, list[int]] = extra.setdefault("statements", {"G": [], "filter": [], "view": [],
                                                                        "view_counts": []})
        replica.conn.set_trace_callback(
            lambda sql: statements.append(sql) if sql.lstrip().upper().startswith("SELECT") else None)

        # G, several times, back to the top in between.
        paint = _Paint(app, lambda _t: table.cursor_row == table.total - 1 and table.total > 0, lambda _t: False)
        for _ in range(cfg.get("g_presses", 5)):
            _floor_G(window, table.total, rec)
            await pilot.press("g")
            await pilot.pause()
            await asyncio.sleep(0.05)
            paint.arm("G")
            statements.clear()
            t0 = time.perf_counter()
            app._driver.send_message(_key_event("G"))
            await asyncio.wait_for(paint.event.wait(), 30)
            rec["G"].append(paint.t_paint - t0)  # type: ignore[operator]
            paint.target = None
            counts["G"].append(len(statements))
        extra["last_row_shown"] = table.row_text(table.total - 1)
        await pilot.press("g")
        await pilot.pause()

        # `/` filters, one key at a time.
        await pilot.press("slash")
        await pilot.pause()
        box = screen.panel.filter_box
        paint = _Paint(app, lambda t: table.filter_text == t.strip(), lambda t: box.value == t)
        matches: dict[str, int] = {}
        for text in FILTERS:
            box.value = ""
            await pilot.pause()
            await asyncio.sleep(0.05)
            for ch in text:
                target = box.value + ch
                _floor_filter(window, target, rec)
                paint.arm(target)
                statements.clear()
                t0 = time.perf_counter()
                app._driver.send_message(_key_event(ch))
                await asyncio.wait_for(paint.event.wait(), 30)
                rec["filter"].append(paint.t_paint - t0)  # type: ignore[operator]
                paint.target = None
                counts["filter"].append(len(statements))
                await asyncio.sleep(0.04)
            await app.workers.wait_for_complete()  # the count over the whole queue, painted after the rows
            await pilot.pause()
            matches[text] = table.total
        extra["filter_matches"] = matches
        screen.panel.clear_filter()
        await app.workers.wait_for_complete()
        await pilot.pause()

        # `v`: each view in turn, from "mine"; its counts are awaited before the next key.
        screen.set_view("mine")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table.focus()
        await pilot.pause()
        paint = _Paint(app, lambda v: screen.queue_view == v and table.window is not None, lambda _v: False)
        rows: dict[str, int] = {}
        for view in VIEWS:
            _floor_view(replica.lists.ticket_queue(view, **screen._query_args()), rec)
            await asyncio.sleep(0.05)
            paint.arm(view)
            statements.clear()
            t0 = time.perf_counter()
            app._driver.send_message(_key_event("v"))
            await asyncio.wait_for(paint.event.wait(), 30)
            rec["view"].append(paint.t_paint - t0)  # type: ignore[operator]
            paint.target = None
            counts["view"].append(len(statements))
            counts["view_counts"].append(sum(_counts_tickets(sql) for sql in statements))
            await app.workers.wait_for_complete()  # the view's count and overdue count, apart
            await pilot.pause()
            rows[view] = table.total
        extra["view_rows"] = rows
    replica.close()


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, list[float]] = {k: [] for k in ("G", "G_floor", "G_forward_offset", "filter", "filter_floor",
                                                   "filter_count_floor", "view", "view_floor")}
    extra: dict[str, Any] = {}

    async def main() -> None:
        for _ in range(cfg.get("rounds", 3)):
            await _round(cfg, rec, extra)

    asyncio.run(main())
    out: dict[str, Any] = {k: summary(v) for k, v in rec.items()}
    out.update(extra)
    out["statements_per"] = {k: max(v) if v else None for k, v in extra.get("statements", {}).items()}
    out.pop("statements", None)
    out["filters"] = list(FILTERS)
    out["views"] = list(VIEWS)
    out["budget"] = cfg.get("budget", 0.100)
    return out
