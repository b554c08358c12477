"""The main flows at the UI level, driven by keys through Textual's pilot, checked in the replica."""

from __future__ import annotations

import pytest

from screens.conflicts import ConflictResolveScreen
from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.pickers import ChoicePicker, ConfirmModal
from screens.pipeline import PipelineScreen
from screens.ticket_detail import TicketDetailScreen
from screens.tickets import TicketQueueScreen
from support import ui_data
from support.pilot import settle, visible_text

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


def header_text(screen) -> str:
    return str(screen.query_one("#c360-header").render())


async def test_search_open_edit_customer_shows_pending(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"elena pet")
        await settle(pilot)
        results = app.screen.query_one("#search-results")
        assert results.current_row()["id"] == "cu_005"
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen) and app.screen.customer_id == "cu_005"
        assert "pending" not in header_text(app.screen)

        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        form.query_one("#field-city").value = "Lisbon"
        await pilot.press("f2")
        await settle(pilot)

        assert isinstance(app.screen, Customer360Screen)
        [op] = [o for o in app.replica.outbox.pending() if o.record_id == "cu_005"]
        assert (op.op, op.fields) == ("update", {"city": "Lisbon"})
        assert "pending sync" in header_text(app.screen)
        assert "Lisbon" in header_text(app.screen)


async def test_bad_input_is_shown_next_to_the_field_and_nothing_is_written(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        form.query_one("#field-email").value = "not an email"
        form.query_one("#field-lifetime_value").value = "a lot"
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is form
        assert "example.com" in str(form.query_one("#error-email").render())
        assert "amount" in str(form.query_one("#error-lifetime_value").render())
        assert not [o for o in app.replica.outbox.pending() if o.record_id == "cu_005"]
        await pilot.press("escape", "y")  # what was typed is thrown away after a yes
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen)


async def test_log_a_note_from_the_360(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#field-subject").value = "Asked about invoices"
        await pilot.press("f2")
        await settle(pilot)
        notes = app.replica.reads.activities(customer_id="cu_005", limit=5)
        assert notes[0]["subject"] == "Asked about invoices" and notes[0]["kind"] == "note"
        assert notes[0]["occurred_at"] == "2026-11-25T09:00:00Z"  # the app's clock, not the wall's
        assert app.screen.active_tab == "activity"


async def test_ticket_triage_assign_status_and_internal_note(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TicketQueueScreen)
        await pilot.press("v", "v")  # mine -> team -> all
        await pilot.pause()
        assert screen.queue_view == "all"
        table = screen.panel.table
        table.move_cursor(row=table.get_row_index("ti_003"))
        await pilot.pause()
        assert app.replica.get("ticket", "ti_003")["assignee_id"] is None

        await pilot.press("a")
        await settle(pilot)
        assert app.replica.get("ticket", "ti_003")["assignee_id"] == "us_ada"
        assert any(o.record_id == "ti_003" for o in app.replica.outbox.pending())

        # ti_003 is pending: the workflow allows open and solved only.
        await pilot.press("s")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ChoicePicker)
        assert [value for value, _ in picker.choices] == ["open", "solved"]
        await pilot.press("j", "enter")
        await pilot.pause()
        assert app.replica.get("ticket", "ti_003")["status"] == "solved"

        # Solved tickets leave the active queue; open the ticket itself for the note.
        await app.push_screen(TicketDetailScreen("ti_003"))
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, RecordForm)
        app.screen.query_one("#field-body").text = "Customer confirmed by phone."
        await pilot.press("f2")
        await settle(pilot)
        [note] = [a for a in app.replica.reads.activities(ticket_id="ti_003") if a["kind"] == "note"
                  and a["body"] == "Customer confirmed by phone."]
        assert note["internal"] is True and note["customer_id"] == app.replica.get("ticket", "ti_003")["customer_id"]


async def test_closed_ticket_offers_no_status_move(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(TicketDetailScreen("ti_008"))  # closed
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, TicketDetailScreen)
        assert any("final" in n for n in app.notified)


async def test_moving_a_deal_between_stages(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        deal_id = screen.table("lead").current_row()["id"]
        await pilot.press("greater_than_sign")
        await settle(pilot)
        assert app.replica.get("deal", deal_id)["stage"] == "qualified"
        assert screen.focused is screen.table("qualified")
        assert screen.table("qualified").current_row()["id"] == deal_id
        await pilot.press("w")  # an outcome asks when it closed first
        await pilot.pause()
        await pilot.press("f2")
        await settle(pilot)
        assert app.replica.get("deal", deal_id)["stage"] == "won"
        await pilot.press("less_than_sign", "y")  # reopening too
        await pilot.pause()
        assert app.replica.get("deal", deal_id)["stage"] == "negotiation"
        [op] = [o for o in app.replica.outbox.pending() if o.record_id == deal_id]
        assert op.fields["stage"] == "negotiation" and op.fields.get("close_date") in (None, "2026-11-25")


async def test_resolving_a_conflict_with_mine_queues_an_update(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "5")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        resolver = app.screen
        assert isinstance(resolver, ConflictResolveScreen)
        await pilot.press("t", "m", "a")
        await settle(pilot)
        assert app.replica.conflicts.unresolved() == []
        [op] = [o for o in app.replica.outbox.pending() if o.record_id == "cu_002"]
        assert (op.op, op.fields, op.base_version) == ("update", {"city": "Potsdam"}, 3)
        assert "No conflicts" in str(app.screen.query_one("#conflicts-intro").render())


async def test_rejected_op_fixed_and_resent_another_discarded(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "6")
        await pilot.pause()
        [contact_op, deal_op] = app.replica.outbox.rejected()
        assert contact_op.record_id == "co_003_1"

        await pilot.press("f")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        assert "refuses" in str(form.query_one("#error-email").render())
        form.query_one("#field-email").value = "carla@rossi.example"
        await pilot.press("f2")
        await settle(pilot)
        [resent] = [o for o in app.replica.outbox.pending() if o.record_id == "co_003_1"]
        assert resent.fields == {"email": "carla@rossi.example"} and resent.op_id != contact_op.op_id

        # The deal's change is the one left: discard it, after saying yes.
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert app.replica.outbox.rejected() == []
        assert app.replica.get("deal", deal_op.record_id)["stage"] == "won"
        assert "Nothing was rejected" in str(app.screen.query_one("#rejected-empty").render())


async def test_orders_are_one_window_onto_all_of_them(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_001", tab="orders"))
        await settle(pilot)  # laid out and drawn, however loaded the machine
        table = app.screen.query_one("#c360-orders")
        mine = sorted((o for o in ui_data.orders() if o["customer_id"] == "cu_001"),
                      key=lambda o: (o["order_date"], o["id"]), reverse=True)
        assert table.row_count == len(mine) == ui_data.RICH_ORDERS
        assert mine[0]["number"] in visible_text(table)
        await pilot.press("G")
        await pilot.pause()
        # The true last order is on screen, read without the ones between.
        assert table.current_row()["id"] == mine[-1]["id"]
        assert mine[-1]["number"] in visible_text(table) and mine[0]["number"] not in visible_text(table)
        await pilot.press("g")
        await pilot.pause()
        assert table.current_row()["id"] == mine[0]["id"]


async def test_filter_looks_through_all_rows_and_esc_clears_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_001", tab="orders"))
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"refunded")
        await pilot.pause()
        table = app.screen.query_one("#c360-orders")
        refunded = [o for o in ui_data.orders() if o["customer_id"] == "cu_001" and o["status"] == "refunded"]
        assert table.row_count == len(refunded) > 0
        assert all("refunded" in table.row_text(i) for i in range(table.row_count))
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == ui_data.RICH_ORDERS and isinstance(app.screen, Customer360Screen)


@pytest.mark.parametrize(("keys", "deleted"), [(("a",), True), (("t", "a"), False)],
                         ids=["delete-anyway", "keep"])
async def test_delete_conflict_delete_anyway_or_keep(make_app, open_replica, keys, deleted):
    replica = open_replica("full")
    ui_data.add_delete_conflict(replica)
    app = make_app(replica=replica)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "5")
        await pilot.pause()
        table = app.screen.query_one("#conflicts-table")
        [key] = [str(c.id) for c in replica.conflicts.unresolved() if c.kind == "delete"]
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConflictResolveScreen)
        await pilot.press(*keys)
        await settle(pilot)
        assert [c.kind for c in replica.conflicts.unresolved()] == ["fields"]
        pending_deletes = [o for o in replica.outbox.pending() if o.op == "delete" and o.record_id == "co_010_1"]
        assert (replica.get("contact", "co_010_1") is None) is deleted
        assert bool(pending_deletes) is deleted


async def test_new_customer_opens_its_360_with_the_pending_marker(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        form.query_one("#field-name").value = "Nadia Boulanger"
        form.query_one("#field-company").value = "Boulanger Audio"
        await pilot.press("f2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, Customer360Screen)
        record = app.replica.get("customer", screen.customer_id)
        assert (record["name"], record["territory"], record["owner_id"]) == ("Nadia Boulanger", "te_north", "us_ada")
        assert "pending sync" in header_text(screen)


async def test_add_contact_deal_and_ticket_from_the_360(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        for key, field, value in (("a", "name", "Ilse Petrova"), ("d", "title", "Print run"),
                                  ("t", "subject", "Toner empty")):
            await pilot.press(key)
            await pilot.pause()
            app.screen.query_one(f"#field-{field}").value = value
            await pilot.press("f2")
            await settle(pilot)
            assert isinstance(app.screen, Customer360Screen), key
        counts = app.replica.reads.customer_360("cu_005")["counts"]
        assert (counts["contacts"], counts["deals"], counts["tickets"]) == (3, 1, 2)
        [ticket] = [t for t in app.replica.reads.tickets_for_customer("cu_005") if t["subject"] == "Toner empty"]
        assert (ticket["status"], ticket["assignee_id"]) == ("new", "us_ada")
        assert app.screen.active_tab == "tickets"


async def test_queue_filters_and_reply(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await pilot.pause()
        screen = app.screen
        await pilot.press("P")
        await pilot.pause()
        await pilot.press("j", "enter")  # any, urgent
        await pilot.pause()
        table = screen.panel.table
        rows = [table.row_at(i) for i in range(table.row_count)]
        assert rows and {r["priority"] for r in rows} == {"urgent"}
        await pilot.press("F")
        await pilot.pause()
        picker = app.screen
        picker.query_one("OptionList").highlighted = [v for v, _ in picker.choices].index("any")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.status_filter == "any"

        ticket = screen.current_ticket()
        await pilot.press("r")
        await settle(pilot)
        form = app.screen
        assert form.query_one("#field-subject").value == f"Re: {ticket['subject']}"
        form.query_one("#field-body").text = "We have refunded the VAT difference."
        await pilot.press("f2")
        await settle(pilot)
        [reply] = [a for a in app.replica.reads.activities(ticket_id=ticket["id"]) if a["author_id"] == "us_ada"
                   and a["kind"] == "email"]
        assert reply["internal"] is False and reply["body"].startswith("We have refunded")
