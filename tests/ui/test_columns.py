"""Columns at 80x24 and 160x45: what identifies a row is never cut, the rest give way with a hint.

What is asserted is what a user reads on the screen: the lines a list draws (``visible_text``),
never the cells before they are fitted to the columns.
"""

from __future__ import annotations

import datetime as dt

import pytest

from screens.navigation import open_customer
from screens.tables import WindowTable
from screens.tickets import TicketQueueScreen
from support import ui_data
from support.pilot import settle, visible_text

pytestmark = pytest.mark.anyio

SIZES = [(80, 24), (160, 45)]


def lines(table: WindowTable) -> list[str]:
    return visible_text(table).splitlines()


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x45"])
async def test_the_customer_orders_tab_shows_whole_order_numbers(make_app, size):
    app = make_app()
    numbers = [o["number"] for o in ui_data.orders() if o["customer_id"] == "cu_001"]
    assert all(len(n) == len("SO-00010001") for n in numbers)  # as the server numbers them
    async with app.run_test(size=size) as pilot:
        open_customer(app, "cu_001", tab="orders")
        await settle(pilot)
        table = app.screen.query_one("#c360-orders", WindowTable)
        shown = lines(table)[1:]
        assert len([line for line in shown if line.strip()]) >= 5
        for line in shown:
            if line.strip():
                assert any(n in line for n in numbers), line


def queue_tickets() -> list[dict]:
    """Three active tickets of the onboarding team (the longest team name), overdue by minutes
    ('overdue 55 min' is as long as an SLA text gets), numbered past 5 digits."""
    now = ui_data.NOW
    out = []
    for i, t in enumerate(ui_data.many_tickets(3, start=900_000)):
        t.update(team="onboarding", status="open", assignee_id="us_ada",
                 sla_due=(now - dt.timedelta(minutes=53 + i)).isoformat().replace("+00:00", "Z"))
        out.append(t)
    return out


async def open_queue(pilot, view: str = "all") -> TicketQueueScreen:
    await pilot.press("escape", "2")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TicketQueueScreen)
    screen.set_view(view)
    await settle(pilot)
    return screen


async def test_the_queue_at_160_shows_whole_sla_and_team_cells(make_app, open_replica):
    replica = open_replica("full")
    ui_data.add_tickets(replica, queue_tickets())
    app = make_app(replica=replica)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_queue(pilot)
        shown = lines(screen.panel.table)
        header = shown[0]
        assert "team" in header and "customer" in header and "assignee" in header
        assert "+" not in header, "nothing gives way at 160 columns"
        row = next(line for line in shown if "900002" in line)
        # Its number, SLA and team read in full.
        assert "overdue 55 min" in row and "onboarding" in row, row


async def test_the_queue_at_80_names_the_columns_that_gave_way(make_app, open_replica):
    replica = open_replica("full")
    ui_data.add_tickets(replica, queue_tickets())
    app = make_app(replica=replica)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_queue(pilot)
        shown = lines(screen.panel.table)
        header = shown[0]
        # Team and customer do not fit: they gave way, the header says so, its tooltip names them.
        assert "+2 more" in header, header
        assert "customer, team" in str(screen.panel.table.tooltip)
        row = next(line for line in shown if "900002" in line)
        assert "overdue 55 min" in row, row


async def test_the_contacts_tab_at_80_names_the_email_column_it_hides(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        open_customer(app, "cu_001", tab="contacts")
        await settle(pilot)
        table = app.screen.query_one("#c360-contacts", WindowTable)
        assert "+email" in lines(table)[0]


# ----------------------------------------------------------------------------- every list


def check_list(table: WindowTable) -> None:
    """The rule on one list as drawn: every identifying value in view reads whole, and every
    column that gave way is named (in the header, or counted there and named in its tooltip)."""
    shown = lines(table)
    header = shown[0]
    hidden = table.hidden_columns
    if hidden:
        assert f"+{len(hidden)}" in header or all(name in header for name in hidden), header
        assert all(name in str(table.tooltip) for name in hidden)
    else:
        assert "+" not in header.split()[-1:], header
    idents = [c.key for c in table._columns if c.ident]
    for index in range(min(table.row_count, len(shown) - 1)):
        row = table.row_at(index + int(table.scroll_y) // table.source.row_height)
        line = table.line_text(index + int(table.scroll_y) // table.source.row_height)
        for key in idents:
            assert str(row.get(key) or "") in line, (key, line)


def every_list():
    """(how to open it) for every list of the app, by name."""
    from screens.navigation import open_customer
    from screens.order_detail import OrderDetailScreen
    from screens.ticket_detail import TicketDetailScreen

    async def search(pilot):
        await pilot.press("escape", "1")
        await pilot.pause()
        pilot.app.screen.search_for("a")

    def view(name):
        async def run(pilot):
            await pilot.press("escape", "2")
            await pilot.pause()
            pilot.app.screen.set_view(name)

        return run

    def tab(name):
        async def run(pilot):
            open_customer(pilot.app, "cu_001", tab=name)

        return run

    def section(key):
        async def run(pilot):
            await pilot.press("escape", key)

        return run

    async def order(pilot):
        await pilot.app.push_screen(OrderDetailScreen(ui_data.ORDER_WITH_HISTORY))

    async def ticket(pilot):
        await pilot.app.push_screen(TicketDetailScreen("ti_001"))

    cases = {"search results": search, **{f"queue {v}": view(v) for v in ("mine", "team", "all", "unassigned")},
             **{f"customer {t}": tab(t) for t in ("contacts", "orders", "tickets", "deals", "tasks", "activity")},
             "order detail": order, "ticket detail": ticket, "pipeline": section("3"), "conflicts": section("5"),
             "rejected": section("6"), "today": section("8")}
    return [pytest.param(run, id=name) for name, run in cases.items()]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x45"])
@pytest.mark.parametrize("open_list", every_list())
async def test_every_list_keeps_identifying_columns_whole_and_names_what_gave_way(make_app, open_list, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await open_list(pilot)
        await settle(pilot)
        tables = [t for t in app.screen.query(WindowTable) if t.display and t.region.width]
        assert tables
        for table in tables:
            check_list(table)


# ----------------------------------------------------------------------------- spare room

LONG_NAMES = {"cu_001": "Konstantinos Papadopoulos-Wellington", "cu_003": "Maximiliane Featherstonehaugh",
              "cu_005": "Bartholomew Christophersen"}


@pytest.fixture
def long_named(open_replica, make_app):
    """The full replica with three customers renamed to long names (they have tickets and tasks)."""
    replica = open_replica("full")
    ui_data.add_customers(replica, [{**c, "name": LONG_NAMES[c["id"]]} for c in ui_data.customers()
                                    if c["id"] in LONG_NAMES])
    return make_app(replica=replica)


async def open_today(pilot):
    await pilot.press("escape", "8")
    await settle(pilot)
    screen = pilot.app.screen
    screen.view = "all"
    screen.refresh_data()
    await settle(pilot)
    return screen.panel.table


async def test_the_queue_at_160_shows_long_customer_names_whole_from_the_subjects_spare_room(long_named):
    async with long_named.run_test(size=(160, 45)) as pilot:
        screen = await open_queue(pilot)
        shown = lines(screen.panel.table)
        rows = [line for line in shown[1:] if any(name in line for name in ("Konstantinos", "Bartholomew",
                                                                              "Maximiliane"))]
        assert rows
        for line in rows:
            assert any(name in line for name in LONG_NAMES.values()), line
        # The subjects still read whole: the room came from what they did not use.
        assert any("Invoice shows the wrong VAT " in line and LONG_NAMES["cu_001"] in line for line in rows)


async def test_today_at_160_shows_long_customer_names_whole(long_named):
    async with long_named.run_test(size=(160, 45)) as pilot:
        table = await open_today(pilot)
        shown = "\n".join(lines(table))
        for name in LONG_NAMES.values():
            assert name in shown, shown
        assert "#1001 Invoice shows the wrong VAT" in shown  # what the task is about, whole too


async def test_today_at_80_gives_the_task_columns_spare_room_to_the_customer(long_named):
    async with long_named.run_test(size=(80, 24)) as pilot:
        table = await open_today(pilot)
        shown = lines(table)
        row = next(line for line in shown if "Call back about the VAT invoice" in line)
        # The longest task reads whole and the customer's name starts right after it: no blank
        # room left in the task column while the name is cut; first names read whole.
        assert "Call back about the VAT invoice  Konstantinos Papadopo" in row, row
        for line in shown[1:]:
            for name in LONG_NAMES.values():
                if name.split()[0] in line:
                    assert f"{name.split()[0]} " in line, line
