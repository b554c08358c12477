"""Lists are windows onto the whole result; typing never shows an earlier search.

What a user sees is asserted (the bottom row after `G` on a 20k-ticket queue, the filtered count
over the whole queue, the results for the last text typed) and what the app does is counted
(reads of the replica per screen open, rows rendered per keystroke), never timed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from textual import events

from crm_tui.core.domain import format_datetime
from screens.search import SearchScreen
from screens.tickets import TicketQueueScreen
from support import ui_data
from support.pilot import settle, visible_text

pytestmark = pytest.mark.anyio

SIZE = (120, 36)
BIG = 20_000
ACTIVE = ("new", "open", "pending")


@pytest.fixture(scope="module")
def big_queue_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = ui_data.build(tmp_path_factory.mktemp("big-queue"), "full")
    replica = ui_data.open_replica(directory)
    try:
        ui_data.add_tickets(replica, ui_data.many_tickets(BIG))
        replica.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        replica.close()
    return directory


@pytest.fixture
def big_app(big_queue_template, make_app, tmp_path):
    replica = ui_data.copy_replica(big_queue_template, tmp_path / "big")
    yield make_app(replica=replica)
    replica.close()


LATER = ui_data.NOW + dt.timedelta(days=7)  # thousands of the big queue's tickets are overdue by then


@pytest.fixture
def later_app(big_queue_template, make_app, tmp_path):
    """The big queue a week on, by a clock that stands still: its overdue count is in the thousands."""
    replica = ui_data.copy_replica(big_queue_template, tmp_path / "big", clock=lambda: LATER)
    yield make_app(replica=replica)
    replica.close()


def active_queue() -> list[dict]:
    """The whole active queue as the user should see it, computed from the data set alone."""
    tickets = [t for t in [*ui_data.tickets(), *ui_data.many_tickets(BIG)] if t["status"] in ACTIVE]
    return sorted(tickets, key=lambda t: (t["sla_due"], t["id"]))


async def open_all_tickets(pilot) -> TicketQueueScreen:
    await pilot.press("escape", "2")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TicketQueueScreen)
    screen.set_view("all")
    await pilot.pause()
    return screen


def bar(screen: TicketQueueScreen) -> str:
    return str(screen.query_one("#queue-bar").render())


async def test_G_on_a_big_queue_shows_its_true_last_row(big_app):
    queue = active_queue()
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        assert table.row_count == len(queue)
        assert f"{len(queue):,} tickets" in bar(screen)
        before = table.reads
        await pilot.press("G")
        await pilot.pause()
        last = queue[-1]
        assert table.current_row()["id"] == last["id"]
        shown = visible_text(table).splitlines()
        # The bottom line of the list is the last ticket, and it is the highlighted one.
        assert str(last["number"]) in shown[-1]
        assert screen.current_ticket()["id"] == last["id"]
        # One block of rows was read to get there: not the 20k between.
        assert table.reads - before == 1
        await pilot.press("k", "k")
        await pilot.pause()
        assert table.current_row()["id"] == queue[-3]["id"]
        await pilot.press("g")
        await pilot.pause()
        assert table.current_row()["id"] == queue[0]["id"]
        assert str(queue[0]["number"]) in visible_text(table).splitlines()[1]


async def test_G_reads_the_last_rows_with_their_names_in_one_go(big_app):
    """The rows painted after `G` come with their customers' and assignees' names: the replica
    is asked once per block of rows, not once more for every row painted."""
    queue = active_queue()
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        replica = pilot.app.replica
        statements: list[str] = []
        replica.conn.set_trace_callback(statements.append)
        try:
            await pilot.press("G")
            await pilot.pause()
        finally:
            replica.conn.set_trace_callback(None)
        last = queue[-1]
        bottom = visible_text(table).splitlines()[-1]
        assert str(last["number"]) in bottom
        assert replica.get("customer", last["customer_id"])["name"][:15] in bottom
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        # The block holding the last row and the one before it (the screen shows rows of both):
        # their row ids and their rows, names included.
        assert len(reads) <= 4, reads


async def test_page_keys_reach_any_position_in_order(big_app):
    queue = active_queue()
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        at = table.cursor_row
        assert at > 0 and table.current_row()["id"] == queue[at]["id"]
        # The middle of the queue, as a scrollbar drag would put it, reads in order there.
        table.move_cursor(row=len(queue) // 2)
        await pilot.pause()
        middle = len(queue) // 2
        assert [table.row_at(i)["id"] for i in range(middle - 2, middle + 3)] == \
            [t["id"] for t in queue[middle - 2:middle + 3]]
        assert str(queue[middle]["number"]) in visible_text(table)


async def test_filter_counts_matches_over_the_whole_queue(big_app):
    queue = active_queue()
    fire = [t for t in queue if ui_data.BIG_QUEUE_MARK.lower() in t["subject"].lower()]
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        await pilot.press("slash", *"on fire")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        # Matches all through the queue are counted, not only those among the loaded rows.
        assert table.row_count == len(fire) > 100
        assert f"{len(fire):,} match" in bar(screen) and f"{len(queue):,} tickets" in bar(screen)
        await pilot.press("enter", "G")
        await pilot.pause()
        assert table.current_row()["id"] == fire[-1]["id"]
        assert str(fire[-1]["number"]) in visible_text(table).splitlines()[-1]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == len(queue) and f"{len(queue):,} match" not in bar(screen)


async def test_filter_paints_the_first_matches_at_once_and_counts_the_whole_queue_apart(big_app):
    """Each key of a `/` filter reads one block of matching rows on the app's connection; the
    count over the whole queue (every active ticket looked at) runs apart, and the bar shows it
    when it is there. A count for an earlier text never replaces the last one."""
    queue = active_queue()
    fire = [t for t in queue if ui_data.BIG_QUEUE_MARK.lower() in t["subject"].lower()]
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        replica = pilot.app.replica
        await pilot.press("slash")
        await pilot.pause()
        statements: list[str] = []
        replica.conn.set_trace_callback(statements.append)
        try:
            await pilot.press(*"on fire")
            await pilot.pause()
        finally:
            replica.conn.set_trace_callback(None)
        assert not [s for s in statements if "count(" in s], statements
        # The first matches are on screen, in queue order, whatever the count is doing.
        assert table.row_at(0)["id"] == fire[0]["id"]
        assert str(fire[0]["number"]) in visible_text(table).splitlines()[1]
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert not table.counting
        assert table.row_count == len(fire)
        assert f"{len(fire):,} match “on fire”" in bar(screen) and "counting" not in bar(screen)


async def test_filter_finds_the_assignee_by_name(big_app):
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        await pilot.press("slash", *"grace")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        grace = [t for t in active_queue() if t["assignee_id"] == "us_grace"]
        assert table.row_count == len(grace)
        assert "Grace" in table.row_text(0)


def counts_over_tickets(statements: list[str]) -> list[str]:
    """The statements that count tickets (the queue, its overdue ones): what grows with the queue."""
    return [s for s in statements if "count(" in s.lower() and "from tickets" in s.lower()]


def in_view(view: str) -> list[dict]:
    """The active tickets of a queue view, for the signed-in user (Ada, team support)."""
    queue = active_queue()
    if view == "mine":
        return [t for t in queue if t["assignee_id"] == ui_data.ME["id"]]
    if view == "team":
        return [t for t in queue if t["team"] == ui_data.ME["team"]]
    if view == "unassigned":
        return [t for t in queue if t["assignee_id"] is None]
    return queue


def overdue(tickets: list[dict]) -> int:
    """How many of ``tickets`` are past their SLA by ``later_app``'s clock."""
    return sum(t["sla_due"] < format_datetime(LATER) for t in tickets)


async def test_opening_the_queue_reads_one_block_and_counts_apart(later_app):
    """Opening the queue reads the rows in view on the app's connection; the queue's count and
    its overdue count (each looks at every ticket of the view) come from workers, and the bar
    shows them when they have come."""
    async with later_app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        statements: list[str] = []
        later_app.replica.conn.set_trace_callback(statements.append)
        try:
            await pilot.press("2")
            await pilot.pause()
        finally:
            later_app.replica.conn.set_trace_callback(None)
        screen = later_app.screen
        table = screen.panel.table
        assert table.reads == 1  # the block of rows in view, no count
        assert counts_over_tickets(statements) == []
        tickets = [s for s in statements if "FROM tickets" in s]
        # row ids of the block and its rows: never the whole queue.
        assert len(tickets) <= 2, tickets
        assert not any("LIMIT" not in s and "rowid IN" not in s for s in tickets), tickets
        await settle(pilot)
        mine = in_view("mine")
        assert overdue(mine) > 0
        assert table.row_count == len(mine) > 100 and not table.counting
        assert f"{len(mine):,} tickets · {overdue(mine):,} overdue" in bar(screen), bar(screen)


async def test_changing_the_view_counts_no_tickets_on_the_app_connection(later_app):
    """v (each view), F and P: the rows of the new view at once, no count over the tickets on
    the app's connection; the bar ends with the count and the overdue count of the view shown."""
    async with later_app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        screen = later_app.screen
        assert isinstance(screen, TicketQueueScreen)
        table = screen.panel.table
        for view in ("team", "all", "unassigned", "mine"):
            statements: list[str] = []
            later_app.replica.conn.set_trace_callback(statements.append)
            try:
                await pilot.press("v")
                await pilot.pause()
            finally:
                later_app.replica.conn.set_trace_callback(None)
            assert screen.queue_view == view
            assert counts_over_tickets(statements) == [], (view, statements)
            await settle(pilot)
            tickets = in_view(view)
            assert table.row_count == len(tickets) and not table.counting
            assert f"{len(tickets):,} tickets" in bar(screen), bar(screen)
            late = overdue(tickets)
            assert (f"· {late:,} overdue" in bar(screen)) if late else ("overdue" not in bar(screen)), (view, bar(screen))
        # A priority filter: no overdue count at all, and no count over the tickets on the app's connection.
        statements = []
        later_app.replica.conn.set_trace_callback(statements.append)
        try:
            screen.priority_filter = "urgent"
            screen.refresh_data()
            await pilot.pause()
        finally:
            later_app.replica.conn.set_trace_callback(None)
        assert counts_over_tickets(statements) == []
        await settle(pilot)
        urgent = [t for t in in_view("mine") if t["priority"] == "urgent"]
        assert f"{len(urgent):,} tickets" in bar(screen) and "overdue" not in bar(screen), bar(screen)


async def test_a_count_for_an_earlier_view_is_never_shown(later_app):
    """Views changed faster than the counts come: the bar shows the counts of the last view,
    and only its overdue count ever reaches the screen."""
    async with later_app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        screen = later_app.screen
        table = screen.panel.table
        shown = screen.overdue_counts.shown
        screen.set_view("all")
        screen.set_view("team")
        screen.set_view("unassigned")
        # Until the counts come, the bar says it is counting, not an earlier view's numbers.
        screen._show_bar()
        assert "(counting…)" in bar(screen) and "overdue" not in bar(screen), bar(screen)
        await settle(pilot)
        unassigned = in_view("unassigned")
        assert table.row_count == len(unassigned) and not table.counting
        assert f"unassigned · active · any priority · {len(unassigned):,} tickets · {overdue(unassigned):,} overdue" \
            in bar(screen), bar(screen)
        assert screen.overdue_counts.shown - shown == 1


async def test_typing_fast_searches_only_for_the_last_text(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        box = screen.search_box
        before = screen.searches
        # Keys arrive faster than the screen handles them: all are in the box's queue at once.
        for ch in "elena pet":
            box.post_message(events.Key(ch if ch != " " else "space", ch))
        await pilot.pause()
        await pilot.pause()
        assert box.value == "elena pet"
        assert screen.query_text == "elena pet"
        assert screen.results.current_row()["id"] == "cu_005"
        # The stale keystrokes were dropped, not searched and thrown away.
        assert screen.searches - before == 1


async def test_keys_typed_in_a_burst_edit_the_box_in_the_order_typed(make_app):
    """Eight backspaces then "garcia", all queued before the screen handles the first: the box
    says "garcia". (Bound keys used to run after the letters queued behind them: an empty box.)"""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await pilot.press(*"mu")
        await pilot.pause()
        for key in ["backspace"] * 8 + list("garcia") + ["left", "left", "delete", "home", "x"]:
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await pilot.pause()
        await pilot.pause()
        assert screen.search_box.value == "xgarca"
        assert screen.query_text == "xgarca"


async def test_a_keystroke_redraws_only_the_rows_that_changed(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*"schmidt")
        await pilot.pause()
        results = screen.results
        hits = results.row_count
        assert hits >= 2
        rendered = results.rows_rendered
        # A space after a finished word finds the same rows: nothing is drawn again.
        await pilot.press("space")
        await pilot.pause()
        assert results.row_count == hits
        assert results.rows_rendered == rendered
        # Narrowing to one of them draws at most that one row again.
        await pilot.press(*"anna")
        await pilot.pause()
        assert results.row_count < hits
        assert results.rows_rendered - rendered <= results.row_count


async def test_the_cursor_stays_on_its_ticket_when_the_queue_is_read_again(big_app):
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        table.move_cursor(row=5000)
        await pilot.pause()
        key = table.current_key
        screen.refresh_data()
        await pilot.pause()
        assert table.current_key == key and table.cursor_row == 5000


async def test_a_filtered_queue_read_again_counts_its_matches_apart(big_app):
    """A sync or a save reads the queue again under its `/` filter: the first matches at once,
    the count over the whole queue from the worker again, never on the app's connection."""
    queue = active_queue()
    fire = [t for t in queue if ui_data.BIG_QUEUE_MARK.lower() in t["subject"].lower()]
    async with big_app.run_test(size=SIZE) as pilot:
        screen = await open_all_tickets(pilot)
        table = screen.panel.table
        await pilot.press("slash", *"on fire", "enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count == len(fire)
        statements: list[str] = []
        big_app.replica.conn.set_trace_callback(statements.append)
        try:
            screen.refresh_data()
            await pilot.pause()
        finally:
            big_app.replica.conn.set_trace_callback(None)
        # Neither the matches nor the whole queue (the bar's "N tickets") are counted there.
        assert counts_over_tickets(statements) == [], statements
        assert table.row_at(0)["id"] == fire[0]["id"]
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count == len(fire) and not table.counting and not table.unfiltered_counting
        assert f"{len(queue):,} tickets · {len(fire):,} match “on fire”" in bar(screen), bar(screen)
        assert "counting" not in bar(screen)
        # Back to the whole queue: its count is known, nothing is counted again.
        statements.clear()
        big_app.replica.conn.set_trace_callback(statements.append)
        try:
            await pilot.press("escape")
            await pilot.pause()
        finally:
            big_app.replica.conn.set_trace_callback(None)
        assert counts_over_tickets(statements) == [], statements
        assert table.row_count == len(queue) and f"{len(queue):,} tickets" in bar(screen)
