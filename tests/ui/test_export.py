"""`:export FILE` on every list (issue 10, "Export"): the whole filtered result the user sees (all
of it, not only the rows in view), with the filter that produced it named in the file's first
lines; streamed from the replica a batch at a time."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cache.records import decode_row
from cache.windows import Window
from crm_tui.core.domain import DEAL_STAGES, ENTITIES, TICKET_STATUSES, record_title
from screens.customer import Customer360Screen
from screens.display import stage_name
from screens.tables import WindowTable
from support import ui_data
from support.pilot import command, settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


async def export(pilot, path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Run `:export path`, wait for it; the file's comment lines and its rows."""
    await command(pilot, f"export {path}")
    await settle(pilot)
    assert path.exists(), pilot.app.notified
    lines = path.read_text().splitlines()
    comments = [line for line in lines if line.startswith("# ")]
    return comments, list(csv.DictReader(lines[len(comments):]))


def seen(table: WindowTable, key: str = "id") -> list[str]:
    """Every row of the list as the user reaches it scrolling down (the whole filtered result)."""
    return [str(table.row_at(i)[key]) for i in range(table.total)]


async def filter_list(pilot, text: str) -> None:
    await pilot.press("slash")
    await pilot.press(*text)
    await pilot.press("enter")
    await settle(pilot)


@pytest.mark.parametrize("view", ["mine", "team", "all", "unassigned"])
async def test_export_writes_the_queue_view_whole_and_names_it(make_app, tmp_path, view):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        app.screen.set_view(view)
        await settle(pilot)
        table = app.screen.panel.table
        comments, rows = await export(pilot, tmp_path / "queue.csv")
        assert [r["id"] for r in rows] == seen(table)
        assert comments[0] == "# crm-tui export: ticket queue"
        words = {"mine": "my tickets", "team": "team ", "all": "all tickets", "unassigned": "unassigned tickets"}[view]
        assert comments[1].startswith(f"# filter: view {words}") and "no / filter" in comments[1]
        assert any(f"{len(rows)} ticket" in n for n in app.notified)


async def test_export_starts_without_counting_the_list_on_the_ui_thread(make_app, tmp_path):
    """Whether there is anything to export is one row read, not a count of the whole queue
    (which grows with it) on the app's connection; the rows go out from the worker's."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        app.screen.set_view("all")
        await settle(pilot)
        statements: list[str] = []
        app.replica.conn.set_trace_callback(statements.append)
        try:
            _comments, rows = await export(pilot, tmp_path / "queue.csv")
        finally:
            app.replica.conn.set_trace_callback(None)
        assert rows and not [s for s in statements if "count(" in s.lower() and "from tickets" in s.lower()], statements


async def test_export_of_a_filtered_queue_writes_every_match_not_only_those_in_view(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=(120, 16)) as pilot:  # a short screen: few rows in view
        await pilot.press("escape", "2")
        await settle(pilot)
        app.screen.set_view("all")
        await settle(pilot)
        await filter_list(pilot, "in")
        table = app.screen.panel.table
        assert table.filter_text == "in" and 0 < table.total < table.unfiltered_total
        assert table.total > table.size.height  # more matches than are in view
        comments, rows = await export(pilot, tmp_path / "filtered.csv")
        assert [r["id"] for r in rows] == seen(table)
        assert comments[1] == "# filter: view all tickets, active, any priority, / filter “in”"
        # Raw stored values, as the protocol has them: the status, not its label.
        assert {r["status"] for r in rows} <= {"new", "open", "in_progress", "waiting"}


@pytest.mark.parametrize("tab", ["orders", "contacts", "activity", "tickets", "deals", "tasks"])
async def test_export_writes_the_customer_tab_in_front(make_app, tmp_path, tab):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER, tab=tab))
        await settle(pilot)
        table = app.screen.query_one(f"#c360-{tab}", WindowTable)
        comments, rows = await export(pilot, tmp_path / f"{tab}.csv")
        assert [r["id"] for r in rows] == seen(table) and rows
        assert comments[1] == f"# filter: customer {ui_data.RICH_CUSTOMER}, tab {tab}, no / filter"
        if tab == "orders":
            assert len(rows) == ui_data.RICH_ORDERS  # all of them, far more than are in view


async def test_export_writes_the_whole_pipeline_stage_by_stage(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "3")
        await settle(pilot)
        screen = app.screen
        comments, rows = await export(pilot, tmp_path / "pipeline.csv")
        assert [r["id"] for r in rows] == [i for stage in DEAL_STAGES for i in seen(screen.table(stage))]
        assert len(rows) == app.replica.count("deal")
        assert comments[1].startswith("# filter: all deals in the replica, every stage")


@pytest.mark.parametrize(("key", "screen_table"), [("8", "#today-table"), ("5", "#conflicts-table"),
                                                   ("6", "#rejected-table")])
async def test_export_writes_today_conflicts_and_rejected(make_app, tmp_path, key, screen_table):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", key)
        await settle(pilot)
        if key == "8":
            app.screen.view = "all"
            app.screen.refresh_data()
            await settle(pilot)
        table = app.screen.query_one(screen_table, WindowTable)
        assert table.total
        comments, rows = await export(pilot, tmp_path / "list.csv")
        assert [r["id"] for r in rows] == seen(table)
        assert comments[0].startswith("# crm-tui export: ") and comments[1].startswith("# filter: ")


async def test_export_of_search_results_writes_every_match(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"example")  # every customer's and contact's mail domain
        await settle(pilot)
        await pilot.press("down")  # to the results
        every = app.replica.search.hits(app.replica.search.every("example"))
        assert len(every) > 50  # more matches than one keystroke reads
        assert app.screen.results.row_count == len(every)
        comments, rows = await export(pilot, tmp_path / "search.csv")
        assert [(r["kind"], r["id"]) for r in rows] == [(h.kind, h.id) for h in every]
        assert comments[1] == "# filter: search “example”"


async def test_export_of_an_empty_list_says_so_and_writes_nothing(make_app, tmp_path):
    app = make_app("empty")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        await command(pilot, f"export {tmp_path / 'x.csv'}")
        await settle(pilot)
        assert not (tmp_path / "x.csv").exists()
        assert any("Nothing to export" in n for n in app.notified)


def test_an_export_reads_the_replica_a_batch_at_a_time(replica):
    """Streaming, counted: rows are decoded as the batches are taken, never the whole list first."""
    decoded = 0
    ent = ENTITIES["order"]

    def decode(row, names):
        nonlocal decoded
        decoded += 1
        return decode_row(ent, row, names)

    window = Window(replica.conn, ent.table, decode, where="customer_id = ?", params=(ui_data.RICH_CUSTOMER,),
                    order=(("order_date", True), ("id", True)))
    batches = window.batches(size=25)
    first = next(batches)
    assert len(first) == 25 and decoded == 25  # one batch read, not the 120 orders
    sizes = [len(first), *(len(b) for b in batches)]
    assert sizes == [25, 25, 25, 25, 20] and decoded == ui_data.RICH_ORDERS


# ----------------------------------------------------------------------------- names beside ids

NAMED = {"customer_id": "customer", "owner_id": "user", "assignee_id": "user", "author_id": "user",
         "contact_id": "contact", "territory": "territory", "ticket_id": "ticket", "deal_id": "deal",
         "order_id": "order"}


def expected_name(app, entity_name: str, record_id: str) -> str:
    """The name the screens show for a record: read here from the replica, record by record."""
    record = app.replica.get(entity_name, record_id) if record_id else None
    return record_title(entity_name, record_id, record) if record else ""


def check_names(app, rows: list[dict[str, str]]) -> set[str]:
    """Each id column is followed by its name column, and every row's name is the record's.
    Returns the name columns checked."""
    header = list(rows[0])
    checked = set()
    for column, entity_name in NAMED.items():
        if column not in header:
            continue
        name_column = column.removesuffix("_id") + "_name"
        assert header[header.index(column) + 1] == name_column, header
        for r in rows:
            assert r[name_column] == expected_name(app, entity_name, r[column]), (column, r)
        checked.add(name_column)
    if "stage" in header:
        assert header[header.index("stage") + 1] == "stage_name"
        assert all(r["stage_name"] == stage_name(r["stage"]) for r in rows)
        checked.add("stage_name")
    if "record_id" in header:
        assert header[header.index("record_id") + 1] == "record_name"
        assert all(r["record_name"] == expected_name(app, r["entity"], r["record_id"]) for r in rows)
        assert all(r["record_name"] for r in rows)
        checked.add("record_name")
    return checked


async def test_the_pipeline_export_names_stages_customers_and_owners(make_app, tmp_path):
    """The pipeline's export said `negotiation` and `cu_007` where the board shows Negotiation
    and the customer's name: each id keeps its column and the name the screen shows follows it."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "3")
        await settle(pilot)
        comments, rows = await export(pilot, tmp_path / "pipeline.csv")
        assert check_names(app, rows) == {"stage_name", "customer_name", "owner_name"}
        assert {r["stage_name"] for r in rows} == {stage_name(s) for s in DEAL_STAGES}
        assert any(r["owner_name"] == "Katherine Johnson" for r in rows)
        assert "every stage (Lead, Qualified, Proposal, Negotiation, Won, Lost)" in comments[1]


@pytest.mark.parametrize(("key", "wanted"), [
    ("2", {"customer_name", "assignee_name"}), ("8", {"customer_name", "owner_name"}),
    ("5", {"record_name"}), ("6", {"record_name"}),
])
async def test_section_exports_name_what_their_ids_stand_for(make_app, tmp_path, key, wanted):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", key)
        await settle(pilot)
        if key == "2":
            app.screen.set_view("all")
            await settle(pilot)
        if key == "8":
            app.screen.view = "all"
            app.screen.refresh_data()
            await settle(pilot)
        _, rows = await export(pilot, tmp_path / "list.csv")
        assert wanted <= check_names(app, rows)


@pytest.mark.parametrize(("tab", "wanted"), [
    ("orders", {"customer_name"}), ("contacts", {"customer_name"}), ("tickets", {"customer_name", "assignee_name"}),
    ("deals", {"customer_name", "stage_name", "owner_name"}), ("activity", {"customer_name", "author_name"}),
    ("tasks", {"customer_name", "owner_name"}),
])
async def test_customer_tab_exports_name_what_their_ids_stand_for(make_app, tmp_path, tab, wanted):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER, tab=tab))
        await settle(pilot)
        _, rows = await export(pilot, tmp_path / f"{tab}.csv")
        assert wanted <= check_names(app, rows)
        assert all(r["customer_name"] == "Anna Schmidt" for r in rows)


async def test_search_export_names_each_hits_customer(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"example")
        await settle(pilot)
        await pilot.press("down")
        _, rows = await export(pilot, tmp_path / "search.csv")
        assert "customer_name" in check_names(app, rows)
        assert all(r["customer_name"] for r in rows if r["kind"] == "contact")


def test_names_are_looked_up_a_batch_at_a_time(replica):
    """Streaming holds: the names of one batch are held, never those of the whole list."""
    window = replica.lists.ticket_queue("all", statuses=TICKET_STATUSES)
    names = replica.export_names()
    seen_customers = set()
    for batch in window.batches(size=10):
        named = names.named([dict(r) for r in batch])
        assert names.held <= len(batch)
        assert all(r["customer_name"] for r in named)
        seen_customers |= {r["customer_id"] for r in named}
    assert len(seen_customers) > 10  # more names than one batch held, in all
