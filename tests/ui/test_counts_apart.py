"""Counts whose cost grows with the data (a stage's deals and totals, the tasks due today, the
changes waiting to be sent) never run on the UI thread: the screen paints at once and the
counts follow from a worker on its own connection. Counts that are capped say so ("1,000+").

Counted, never timed: statements on the app's connection, what the screen shows once the
workers are done."""

from __future__ import annotations

import re

import pytest

from screens.customer import Customer360Screen
from screens.pickers import ChoicePicker
from screens.pipeline import PipelineScreen
from screens.sync_screen import QUARANTINE_SHOWN, SyncScreen
from screens.today import TodayScreen
from support import ui_data
from support.pilot import command, settle

pytestmark = pytest.mark.anyio

SIZE = (160, 45)


def aggregates_over(table: str, statements: list[str]) -> list[str]:
    """The statements that count or sum rows of ``table``: what grows with the data."""
    return [s for s in statements
            if re.search(r"\b(count|sum)\(", s, re.IGNORECASE) and re.search(rf"\bFROM {table}\b", s, re.IGNORECASE)]


class Recorder:
    """The SQL the app runs on its own connection (the UI thread's) while it is open."""

    def __init__(self, app) -> None:
        self.app = app
        self.statements: list[str] = []

    def __enter__(self) -> list[str]:
        self.app.replica.conn.set_trace_callback(self.statements.append)
        return self.statements

    def __exit__(self, *exc: object) -> None:
        self.app.replica.conn.set_trace_callback(None)


@pytest.fixture
def busy_app(open_replica, make_app):
    """Counts in the thousands: 1,100 more leads, 1,205 more overdue tasks, 1,418 overdue tickets."""
    replica = open_replica("full")
    ui_data.a_busy_year(replica)
    return make_app(replica=replica)


# ----------------------------------------------------------------------------- pipeline


async def test_the_pipeline_counts_its_stages_apart_and_shows_their_totals(busy_app):
    leads = [d for d in ui_data.deals() if d["stage"] == "lead"]
    expected = len(leads) + 1100
    async with busy_app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        with Recorder(busy_app) as statements:
            await pilot.press("3")
            await pilot.pause()
        screen = busy_app.screen
        assert isinstance(screen, PipelineScreen)
        assert aggregates_over("deals", statements) == [], statements
        # The first cards are there at once, whatever the counts are doing.
        assert screen.table("lead").row_count > 0
        await settle(pilot)
        header = str(screen.query_one("#stage-header-lead").render())
        assert re.match(rf"Lead\n{expected:,} · ", header), header
        table = screen.table("lead")
        assert table.row_count == expected and not table.counting
        # Only mine: the same, for Ada's deals.
        with Recorder(busy_app) as statements:
            await pilot.press("m")
            await pilot.pause()
        assert aggregates_over("deals", statements) == [], statements
        await settle(pilot)
        mine = len([d for d in leads if d["owner_id"] == "us_ada"]) + 1100
        header = str(screen.query_one("#stage-header-lead").render())
        assert re.match(rf"Lead\n{mine:,} · ", header), header
        assert screen.table("lead").row_count == mine


async def test_the_pipeline_read_again_unchanged_shows_its_totals_at_once(busy_app):
    """Totals already made for the replica as it is are shown without counting again."""
    async with busy_app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "3")
        await settle(pilot)
        screen = busy_app.screen
        counted = screen.stage_counts.shown
        header = str(screen.query_one("#stage-header-lead").render())
        screen.refresh_data()
        assert not screen.stage_counts.pending
        assert str(screen.query_one("#stage-header-lead").render()) == header
        await settle(pilot)
        assert screen.stage_counts.shown == counted


# ----------------------------------------------------------------------------- today


async def test_today_counts_its_tasks_apart(busy_app):
    async with busy_app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        with Recorder(busy_app) as statements:
            await pilot.press("8")
            await pilot.pause()
        screen = busy_app.screen
        assert isinstance(screen, TodayScreen)
        assert aggregates_over("tasks", statements) == [], statements
        await settle(pilot)
        mine = busy_app.replica.tasks.counts(ui_data.NOW, owner_id="us_ada")
        bar = str(screen.query_one("#today-bar").render())
        assert f"Today · mine · {mine.overdue:,} overdue · {mine.today} due today" in bar, bar
        # Everyone's: counted apart too, and the bar says everyone's numbers, not Ada's.
        with Recorder(busy_app) as statements:
            await pilot.press("v")
            await pilot.pause()
        assert aggregates_over("tasks", statements) == [], statements
        mine_said = f"{mine.overdue:,} overdue · {mine.today} due today"
        bar = str(screen.query_one("#today-bar").render())
        assert "Today · everyone's" in bar and mine_said not in bar, bar
        await settle(pilot)
        everyone = busy_app.replica.tasks.counts(ui_data.NOW)
        assert everyone.today != mine.today
        bar = str(screen.query_one("#today-bar").render())
        assert f"Today · everyone's · {everyone.overdue:,} overdue · {everyone.today} due today" in bar, bar


async def test_today_is_a_window_onto_every_task(busy_app):
    """Everyone's open tasks (over a thousand): opening reads the block of rows in view, not
    the whole list page by page; G reaches the last one, `/` filters over all of them."""
    tasks = [t for t in busy_app.replica.tasks.list(limit=100_000)]
    assert len(tasks) > 1000
    async with busy_app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "8")
        await settle(pilot)
        screen = busy_app.screen
        with Recorder(busy_app) as statements:
            await pilot.press("v")  # everyone's
            await pilot.pause()
        reads = [s for s in statements if re.search(r"\bFROM tasks\b", s)]
        # the row ids of the block in view and its rows
        assert len(reads) <= 2, reads
        await settle(pilot)
        table = screen.panel.table
        assert table.row_count == len(tasks) and not table.counting
        await pilot.press("G")
        await pilot.pause()
        assert table.current_row()["id"] == tasks[-1]["id"]
        await pilot.press("slash", *"courier", "enter")
        await settle(pilot)
        courier = [t for t in tasks if "courier" in t["title"].lower()]
        assert courier and table.row_count == len(courier)
        assert [table.row_at(i)["id"] for i in range(table.row_count)] == [t["id"] for t in courier]


# ----------------------------------------------------------------------------- sync


async def test_the_sync_screen_says_what_is_pending_without_counting_the_outbox(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        pending = app.replica.outbox.counts()["pending"]
        assert pending > 0
        with Recorder(app) as statements:
            await pilot.press("4")
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SyncScreen)
        assert aggregates_over("outbox", statements) == [], statements
        tabs = screen.query_one("#sync-tabs")
        assert str(tabs.get_tab("sync-pending-tab").label) == f"Pending {pending}"
        # A change saved meanwhile: the tab follows the status line's count when it comes.
        app.replica.writes.update("customer", "cu_007", {"city": "Graz"})
        with Recorder(app) as statements:
            app.data_changed()
            await settle(pilot)
        assert aggregates_over("outbox", statements) == [], statements
        assert str(tabs.get_tab("sync-pending-tab").label) == f"Pending {pending + 1}"


async def test_the_quarantine_tab_says_when_it_lists_only_the_newest(open_replica, make_app):
    replica = open_replica("full")
    bad = [{**ui_data.bad_customer(), "id": f"cu_bad_{i:03d}"} for i in range(QUARANTINE_SHOWN + 20)]
    ui_data.add_customers(replica, bad)
    app = make_app(replica=replica)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "4")
        await settle(pilot)
        screen = app.screen
        label = str(screen.query_one("#sync-tabs").get_tab("sync-quarantine-tab").label)
        assert label == f"Quarantined {QUARANTINE_SHOWN}+", label
        assert screen.query_one("#sync-quarantine").row_count == QUARANTINE_SHOWN


# ----------------------------------------------------------------------------- the customer picker


async def test_the_customer_picker_says_when_its_count_is_capped(open_replica, make_app):
    replica = open_replica("full")
    ui_data.add_customers(replica, ui_data.many_customers(1200, "Quillfeather Holdings"))
    app = make_app(replica=replica)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await command(pilot, "customer quillfeather")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ChoicePicker)
        # Counted up to a thousand: more matched than that, and the title says so.
        assert "1,000+ matches in all" in picker.title_text, picker.title_text


# ----------------------------------------------------------------------------- customer 360


async def test_a_customer_360_counts_only_that_customers_records(make_app):
    """The 360 view's counts (its tabs', its header's) each read one customer's rows along an
    index on customer_id: they grow with that customer, never with the replica."""
    app = make_app()
    customer = ui_data.RICH_CUSTOMER
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        with Recorder(app) as statements:
            await app.push_screen(Customer360Screen(customer))
            await pilot.pause()
        aggregates = [s for s in statements if re.search(r"\b(count|sum)\(", s, re.IGNORECASE)]
        assert aggregates
        unbound = [s for s in aggregates if f"customer_id = '{customer}'" not in s]
        assert unbound == [], unbound
        for sql in aggregates:
            plan = " ".join(str(row[-1]) for row in app.replica.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            # A SEARCH along an index for the one customer, never a SCAN of a whole table.
            assert "SEARCH" in plan and "INDEX" in plan, (sql, plan)
            assert not re.search(r"\bSCAN (customers|contacts|orders|tickets|deals|activities|tasks)\b", plan), (sql, plan)
