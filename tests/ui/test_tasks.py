"""Tasks in the app, driven by keys: the Today section, completing and reopening, one-key
follow-ups from a customer, a ticket and a deal, the due-time field, and reminder toasts that
follow the app's clock."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_tui.config import Settings
from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.pipeline import PipelineScreen
from screens.ticket_detail import TicketDetailScreen
from screens.today import TodayScreen
from support import ui_data
from support.notified import NotifiedCrmApp
from support.pilot import settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


def ids(table) -> list[str]:
    return [table.row_at(i)["id"] for i in range(table.row_count)]


def rows(app) -> list[str]:
    return ids(app.screen.query_one("#today-table"))


def bar(app) -> str:
    return str(app.screen.query_one("#today-bar").render())


def messages(app) -> list[str]:
    return app.notified


async def open_today(pilot) -> None:
    await pilot.press("escape", "8")
    await settle(pilot)  # the bar's counts come from a worker


async def test_today_lists_my_open_tasks_overdue_first_and_counts_each_group(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_today(pilot)
        assert isinstance(app.screen, TodayScreen)
        assert rows(app) == ["tk_002", "tk_001", "tk_003", "tk_004", "tk_006", "tk_007", "tk_008"]
        assert "3 overdue · 1 due today · 2 in the next 7 days · 1 later · 1 done today" in bar(app)
        await pilot.press("v")  # everyone's: Kat's and Grace's too
        await pilot.pause()
        assert "tk_005" in rows(app) and "tk_010" in rows(app) and "everyone's" in bar(app)
        await pilot.press("v", "D")  # mine again, done ones
        await pilot.pause()
        assert rows(app) == ["tk_009"]


async def test_x_completes_the_highlighted_task_and_reopens_it_from_the_done_list(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_today(pilot)
        await pilot.press("j")  # the second row: tk_001
        await pilot.press("x")
        await settle(pilot)
        task = app.replica.get("task", "tk_001")
        assert task["status"] == "done" and task["done_at"] == ui_data.NOW_ISO
        [op] = [o for o in app.replica.outbox.pending() if o.record_id == "tk_001"]
        assert op.op == "update" and op.fields == {"status": "done", "done_at": ui_data.NOW_ISO}
        assert "tk_001" not in rows(app) and "2 overdue" in bar(app)
        assert "Done: Call back about the VAT invoice" in messages(app)
        await pilot.press("D")
        await pilot.pause()
        assert rows(app)[0] == "tk_001"
        await pilot.press("g", "x")
        await settle(pilot)
        assert app.replica.get("task", "tk_001")["status"] == "open"
        assert app.replica.get("task", "tk_001")["done_at"] is None
        # Done and reopened before a sync: nothing is left to send for it.
        assert not [o for o in app.replica.outbox.pending() if o.record_id == "tk_001"]


async def test_enter_edits_a_task_and_o_opens_its_customer(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_today(pilot)
        await pilot.press("enter")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm) and form.query_one("#field-title").value == "Send the revised quote"
        form.query_one("#field-due_at").value = "fri 10:00"
        await pilot.press("f2")
        await settle(pilot)
        assert app.replica.get("task", "tk_002")["due_at"] == "2026-11-27T10:00:00Z"
        assert isinstance(app.screen, TodayScreen) and rows(app)[-3:] == ["tk_002", "tk_007", "tk_008"]
        await pilot.press("g", "o")
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen) and app.screen.customer_id == "cu_001"


async def _save_follow_up(pilot) -> dict:
    app = pilot.app
    form = app.screen
    assert isinstance(form, RecordForm) and form.title_text == "New follow-up"
    before = {r["id"] for r in app.replica.tasks.list(limit=1000)}
    await pilot.press("f2")
    await settle(pilot)
    [new] = [r for r in app.replica.tasks.list(limit=1000) if r["id"] not in before]
    [op] = [o for o in app.replica.outbox.pending() if o.record_id == new["id"]]
    assert op.op == "create"
    return new


async def test_f_on_a_customer_makes_a_follow_up_due_tomorrow_owned_by_me(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_003"))
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        assert app.screen.query_one("#field-title").value == "Follow up with Carla Rossi"
        task = await _save_follow_up(pilot)
        assert (task["customer_id"], task["owner_id"], task["due_at"]) == ("cu_003", "us_ada", "2026-11-26T09:00:00Z")
        assert task["ticket_id"] is None and task["deal_id"] is None and task["status"] == "open"
        assert isinstance(app.screen, Customer360Screen)
        await pilot.press("escape")  # back to search, whose box has the focus
        await open_today(pilot)
        assert task["id"] in rows(app)


async def test_f_on_a_customers_deals_tab_follows_up_the_highlighted_deal(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_001", tab="deals"))
        await pilot.pause()
        deal_id = app.screen.query_one("#c360-deals").current_row()["id"]
        await pilot.press("f")
        await pilot.pause()
        task = await _save_follow_up(pilot)
        assert (task["customer_id"], task["deal_id"]) == ("cu_001", deal_id)


async def test_f_on_a_ticket_follows_up_that_ticket(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(TicketDetailScreen("ti_003"))
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        ticket = app.replica.get("ticket", "ti_003")
        assert app.screen.query_one("#field-title").value.startswith(f"Follow up #{ticket['number']}: ")
        task = await _save_follow_up(pilot)
        assert (task["customer_id"], task["ticket_id"]) == (ticket["customer_id"], "ti_003")


async def test_f_in_the_ticket_queue_and_the_pipeline(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await pilot.pause()
        ticket = app.screen.current_ticket()
        await pilot.press("f")
        await pilot.pause()
        task = await _save_follow_up(pilot)
        assert task["ticket_id"] == ticket["id"]

        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, PipelineScreen)
        deal = app.screen.current_deal()
        await pilot.press("f")
        await pilot.pause()
        assert app.screen.query_one("#field-title").value == f"Follow up: {deal['title']}"
        task = await _save_follow_up(pilot)
        assert (task["deal_id"], task["customer_id"]) == (deal["id"], deal["customer_id"])


async def test_a_bad_due_time_is_one_line_next_to_the_field_and_nothing_is_saved(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(Customer360Screen("cu_003"))
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        form = app.screen
        form.query_one("#field-due_at").value = "next blursday"
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is form
        error = form.query_one("#error-due_at")
        assert str(error.render()) == "↳ not a time; try tomorrow, fri 10:00, +2d, 2026-12-01"
        assert error.size.height == 1, "one line, also at 80 columns"
        form.query_one("#field-due_at").value = ""
        await pilot.press("f2")
        await settle(pilot)
        assert str(form.query_one("#error-due_at").render()) == "↳ is required"
        assert [t["id"] for t in app.replica.tasks.list(customer_id="cu_003")] == ["tk_002"]
        assert not [o for o in app.replica.outbox.pending() if o.entity == "task"]


async def test_a_reminder_pops_up_when_one_of_my_tasks_falls_due_by_the_apps_clock(open_replica):
    now = [ui_data.NOW]
    # The app's notion of now is its replica's clock, handed over when the replica is opened.
    app = NotifiedCrmApp(open_replica("full", clock=lambda: now[0]), Settings(animations=False, theme="textual-dark"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.check_reminders() == 0, "what was overdue when the app opened is on Today, not a toast"
        now[0] = ui_data.NOW.replace(hour=14, minute=5)
        assert app.check_reminders() == 1
        await pilot.pause()
        assert "Quarterly check-in call · Bruno Keller" in messages(app)
        assert app.check_reminders() == 0, "each task is reminded of once"
        # Kat's task at 16:30 is not mine: no toast; mine tomorrow at 09:00 is.
        now[0] = ui_data.NOW + dt.timedelta(days=1, minutes=1)
        assert app.check_reminders() == 1
        await pilot.pause()
        assert "Plan the next site visit · Anna Schmidt" in messages(app)
        assert not any("Book a demo" in m for m in messages(app))


async def test_reminders_stop_at_three_toasts_and_count_the_rest(open_replica):
    now = [ui_data.NOW]
    replica = open_replica("full", clock=lambda: now[0])
    for i in range(5):
        replica.writes.create("task", {"customer_id": "cu_004", "title": f"Batch call {i}", "status": "open",
                                       "due_at": f"2026-11-25T10:0{i}:00Z", "owner_id": "us_ada"})
    app = NotifiedCrmApp(replica, Settings(animations=False, theme="textual-dark"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        now[0] = ui_data.NOW.replace(hour=10, minute=30)
        assert app.check_reminders() == 5
        await pilot.pause()
        due = [m for m in messages(app) if "Batch call" in m or "more tasks due now" in m]
        assert due == ["Batch call 0 · David Okafor", "Batch call 1 · David Okafor", "Batch call 2 · David Okafor",
                       "and 2 more tasks due now: 8 shows Today."]


async def test_the_customers_tasks_tab_lists_its_tasks_and_x_completes_one(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_001", tab="tasks"))
        await pilot.pause()
        screen = app.screen
        assert "Tasks 2" in str(screen.query_one("#c360-tabs").get_tab("tab-tasks").label)
        table = screen.query_one("#c360-tasks")
        assert ids(table) == ["tk_001", "tk_006"]
        await pilot.press("x")
        await settle(pilot)
        assert app.replica.get("task", "tk_001")["status"] == "done"
        assert ids(table) == ["tk_006", "tk_001"], "done ones after the open ones"
        assert "Tasks 1" in str(screen.query_one("#c360-tabs").get_tab("tab-tasks").label)
        await pilot.press("g", "enter")
        await pilot.pause()
        assert isinstance(app.screen, RecordForm) and app.screen.title_text == "Edit task · Plan the next site visit"


async def test_after_switching_views_x_applies_to_the_top_row_in_sight_not_the_one_highlighted_before(make_app):
    app = make_app()
    async with app.run_test(size=(80, 12)) as pilot:
        await open_today(pilot)
        await pilot.press("G")  # tk_008, the last of mine
        await pilot.press("v")
        await pilot.pause()
        table = app.screen.query_one("#today-table")
        assert table.cursor_row == 0 and table.scroll_y == 0
        top = rows(app)[0]
        await pilot.press("x")
        await settle(pilot)
        assert app.replica.get("task", top)["status"] == "done"
        assert app.replica.get("task", "tk_008")["status"] == "open"
