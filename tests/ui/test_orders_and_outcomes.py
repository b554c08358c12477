"""The CRM work itself (issue 10, "Missing"), driven as a user would: an order's detail and the
requests recorded from it, calls and visits with their outcome, deals closed with their date and
reason, the unassigned queue view, and pipeline cards that name the customer."""

from __future__ import annotations

import pytest

from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.order_detail import OrderDetailScreen
from screens.pipeline import PipelineScreen
from screens.search import SearchScreen
from screens.ticket_detail import TicketDetailScreen
from screens.tickets import TicketQueueScreen
from support import ui_data
from support.pilot import footer_keys, open_call_form, settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def rows(screen, table_id: str) -> list[dict]:
    return all_rows(screen.query_one(f"#{table_id}"))


def all_rows(table) -> list[dict]:
    return [table.row_at(i) for i in range(table.row_count)]


async def open_order_from_orders_tab(app, pilot) -> OrderDetailScreen:
    await app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER))
    await pilot.pause()
    await pilot.press("l")  # the Orders tab; its first row is the newest order
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, OrderDetailScreen)
    return app.screen


# ----------------------------------------------------------------------------- order detail


async def test_enter_on_an_order_opens_its_detail_with_history_and_the_tickets_that_mention_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_order_from_orders_tab(app, pilot)
        assert screen.order_id == ui_data.ORDER_WITH_HISTORY
        header = str(screen.query_one("#order-header").render())
        assert "SO-00010001" in header and "shipped" in header and "3,671.37 EUR" in header
        assert "ordered 2026-11-24" in header and "Anna Schmidt" in header
        history = rows(screen, "order-history")
        assert [(e["kind"], e["status"]) for e in history] == [
            ("status", "pending"), ("status", "paid"), ("status", "shipped"), ("refund_request", None)]
        assert {t["id"] for t in rows(screen, "order-tickets")} == {"ti_009", "ti_017"}
        # enter on a mentioning ticket opens it; esc comes back to the order.
        screen.query_one("#order-tickets").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TicketDetailScreen) and app.screen.ticket_id in {"ti_009", "ti_017"}
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


async def test_an_order_found_by_search_opens_its_detail(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, SearchScreen)
        app.screen.query_one("#search-input").value = "SO-10001"
        await pilot.pause(0.2)
        await pilot.press("down")
        await pilot.pause()
        assert app.screen.results.current_row()["kind"] == "order"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, OrderDetailScreen) and app.screen.order_id == ui_data.ORDER_WITH_HISTORY


async def test_an_agent_records_a_refund_request_and_it_shows_in_the_history_pending(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_order_from_orders_tab(app, pilot)
        await pilot.press("f")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm) and form.ent.name == "order_event"
        await pilot.press("f2")  # no reason: refused, nothing queued
        await pilot.pause()
        assert app.screen is form
        assert "say why the customer asks for it" in str(form.query_one("#error-reason").render())
        form.query_one("#field-reason").text = "Parcel arrived crushed"
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is screen
        [op] = [o for o in app.replica.outbox.pending() if o.entity == "order_event"]
        assert op.op == "create" and op.fields["kind"] == "refund_request"
        assert op.fields["order_id"] == ui_data.ORDER_WITH_HISTORY and op.fields["reason"] == "Parcel arrived crushed"
        history = rows(screen, "order-history")
        assert history[-1]["reason"] == "Parcel arrived crushed" and history[-1]["author_id"] == "us_ada"


async def test_a_request_the_order_cannot_take_is_not_offered_and_opens_no_form(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_order_from_orders_tab(app, pilot)  # shipped: too late to cancel
        assert "x Cancel request" not in footer_keys(app) and "f Refund request" in footer_keys(app)
        await pilot.press("x")
        await pilot.pause()
        assert app.screen is screen
        assert not [o for o in app.replica.outbox.pending() if o.entity == "order_event"]


async def test_an_order_with_no_history_says_so(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(OrderDetailScreen(ui_data.QUIET_ORDER))
        await pilot.pause()
        screen = app.screen
        assert rows(screen, "order-history") == [] and rows(screen, "order-tickets") == []
        assert "No history recorded" in str(screen.query_one("#order-history-panel .empty-state").render())
        await pilot.press("x")  # a paid order can still be cancelled
        await pilot.pause()
        assert isinstance(app.screen, RecordForm)


async def test_the_order_detail_works_while_the_tickets_are_still_loading(make_app, tmp_path):
    from cache.replica import Replica
    from support.keys import TEST_KEY

    replica = Replica(tmp_path / "boot.db", tmp_path / "hot", key=TEST_KEY)
    replica.set_meta("me", ui_data.ME)
    order = next(o for o in ui_data.orders() if o["id"] == ui_data.ORDER_WITH_HISTORY)
    ticket = next(t for t in ui_data.tickets() if t["id"] == "ti_009")
    replica.server_apply.apply_page(ui_data._page(
        [ui_data._upsert("territory", ui_data.TERRITORIES), ui_data._upsert("user", ui_data.USERS),
         ui_data._upsert("customer", ui_data.customers()[:1]), ui_data._upsert("ticket", [ticket]),
         ui_data._upsert("order", [order])],
        "b1", has_more=True, phase="snapshot",
        progress={"entity": "order", "done": 5, "total": 50, "complete": ["territory", "user", "customer"]}))
    app = make_app(replica=replica)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(OrderDetailScreen(ui_data.ORDER_WITH_HISTORY))
        await pilot.pause()
        screen = app.screen
        assert app.is_running and "SO-00010001" in str(screen.query_one("#order-header").render())
        assert rows(screen, "order-tickets") == []  # the word index comes when tickets are complete
    replica.close()


# ----------------------------------------------------------------------------- calls and visits


async def test_a_call_records_its_outcome_duration_and_the_contact_spoken_to(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_call_form(pilot)
        contact = form.query_one("#field-contact_id")
        offered = [value for _label, value in contact._options if isinstance(value, str)]
        assert sorted(offered) == ["co_001_1", "co_001_2", "co_001_3"]
        assert offered[0] == contact.value == "co_001_1"  # the primary contact, first and preselected
        form.query_one("#field-subject").value = "Renewal terms"
        await pilot.press("f2")  # no outcome yet
        await pilot.pause()
        assert "say what came of the call" in str(form.query_one("#error-outcome").render())
        form.query_one("#field-outcome").value = "follow_up"
        form.query_one("#field-duration_min").value = "1440 minutes"
        await pilot.press("f2")
        await pilot.pause()
        assert "whole number" in str(form.query_one("#error-duration_min").render())
        form.query_one("#field-duration_min").value = "25"
        contact.value = "co_001_2"
        await pilot.press("f2")
        await settle(pilot)
        [op] = [o for o in app.replica.outbox.pending() if o.entity == "activity" and o.fields.get("outcome")]
        assert {k: op.fields[k] for k in ("kind", "outcome", "duration_min", "contact_id")} == {
            "kind": "call", "outcome": "follow_up", "duration_min": 25, "contact_id": "co_001_2"}
        # The timeline says what came of it.
        timeline = app.screen.query_one("#c360-activity")
        assert app.screen.active_tab == "activity"
        first = timeline.row_at(0)
        assert first["id"] == op.record_id
        rendered = timeline.row_text(0)
        assert "follow-up · 25 min · with" in rendered


async def test_a_visit_is_one_key_from_the_customer(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm) and form.fixed["kind"] == "visit"
        form.query_one("#field-subject").value = "Site survey"
        form.query_one("#field-outcome").value = "reached"
        await pilot.press("f2")
        await settle(pilot)
        [op] = [o for o in app.replica.outbox.pending() if o.entity == "activity" and o.fields.get("outcome")]
        assert op.fields["kind"] == "visit" and op.fields["outcome"] == "reached"
        assert op.fields["contact_id"] == "co_005_1"


# ----------------------------------------------------------------------------- won and lost


async def focus_deal(app, pilot, stage: str) -> dict:
    await pilot.press("escape", "3")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PipelineScreen)
    screen.table(stage).focus()
    await pilot.pause()
    deal = screen.current_deal()
    assert deal is not None and deal["stage"] == stage
    return deal


async def test_marking_a_deal_lost_asks_why_and_when_and_both_reach_the_outbox(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        deal = await focus_deal(app, pilot, "negotiation")
        await pilot.press("x")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm) and form.fixed == {"stage": "lost"}
        assert form.query_one("#field-close_date").value == "2026-11-25"  # today, unless changed
        await pilot.press("f2")
        await pilot.pause()
        assert app.screen is form and "say why the deal was lost" in str(form.query_one("#error-lost_reason").render())
        form.query_one("#field-lost_reason").value = "Went with the incumbent"
        form.query_one("#field-close_date").value = "2026-11-20"
        await pilot.press("f2")
        await settle(pilot)
        [op] = [o for o in app.replica.outbox.pending() if o.record_id == deal["id"]]
        assert {k: op.fields[k] for k in ("stage", "close_date", "lost_reason")} == {
            "stage": "lost", "close_date": "2026-11-20", "lost_reason": "Went with the incumbent"}
        assert app.screen.current_deal()["id"] == deal["id"], "the cursor follows the deal to Lost"


async def test_marking_a_deal_won_asks_only_the_close_date(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        deal = await focus_deal(app, pilot, "proposal")
        await pilot.press("w")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm) and form.field_names == ["close_date"]
        await pilot.press("f2")
        await settle(pilot)
        assert app.replica.get("deal", deal["id"])["stage"] == "won"
        assert app.replica.get("deal", deal["id"])["close_date"] == "2026-11-25"
        await pilot.press("x")  # cancelling the outcome form changes nothing
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.replica.get("deal", deal["id"])["stage"] == "won"


async def test_pipeline_cards_show_the_customer(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("escape", "3")
        await pilot.pause()
        table = app.screen.table("lead")
        card = table.row_text(0)
        deal = table.row_at(0)
        customer = app.replica.get("customer", deal["customer_id"])
        assert customer["name"] in card


# ----------------------------------------------------------------------------- queue views


async def test_the_queue_shows_my_teams_and_the_unassigned_tickets(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TicketQueueScreen)
        seen, bars = {}, {}
        for _ in range(4):
            seen[screen.queue_view] = [r["id"] for r in all_rows(screen.panel.table)]
            bars[screen.queue_view] = str(screen.query_one("#queue-bar").render())
            await pilot.press("v")
            await pilot.pause()
        assert list(seen) == ["mine", "team", "all", "unassigned"]
        records = {t["id"]: t for t in ui_data.tickets()}
        active = {tid for tid, t in records.items() if t["status"] in ("new", "open", "pending")}
        assert set(seen["unassigned"]) == {t for t in active if records[t]["assignee_id"] is None} != set()
        assert set(seen["team"]) == {t for t in active if records[t]["team"] == "support"}
        assert bars["unassigned"].startswith("unassigned · active") and bars["team"].startswith("team support")
        # Taking one from the unassigned view: it leaves the view.
        screen.set_view("unassigned")
        await pilot.pause()
        first = screen.panel.table.current_row()["id"]
        await pilot.press("a")
        await settle(pilot)
        assert first not in [r["id"] for r in all_rows(screen.panel.table)]


async def test_choices_and_lists_show_labels_not_raw_enum_names(make_app):
    """`no_answer`, `cancel_request` are the protocol's; people read "no answer" (one mapping in
    the domain, crm_tui.core.domain.value_label)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_call_form(pilot)
        outcome = form.query_one("#field-outcome")
        labels = {value: str(label) for label, value in outcome._options if isinstance(value, str)}
        assert labels["no_answer"] == "no answer" and labels["not_interested"] == "not interested"
        assert labels["follow_up"] == "follow-up"
        assert not any("_" in label for label in labels.values())
        form.query_one("#field-subject").value = "Renewal terms"
        outcome.value = "follow_up"
        await pilot.press("f2")
        await settle(pilot)
        assert "follow-up · " in app.screen.query_one("#c360-activity").row_text(0)
