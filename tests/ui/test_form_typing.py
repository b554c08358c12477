"""Forms typed into as a user does, keys arriving together as a terminal (or tmux) sends them
(issue 10, "all day in the app"): what every field shows when the form is saved is what is saved."""

from __future__ import annotations

import re
from typing import Any

import pytest
from textual.widgets import Select, TextArea
from textual.widgets._select import SelectOverlay

from crm_tui.core.syncstate import SyncReport
from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.order_detail import OrderDetailScreen
from screens.search import SearchScreen
from support import ui_data
from support.pilot import open_call_form, settle, type_at_once

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


async def typed_together(pilot, *keys: str) -> None:
    """Keys read from the terminal in one go, as a fast typist or `tmux send-keys` sends them:
    all of them reach the app before it has handled the first."""
    await type_at_once(pilot, *keys)


def activity_ops(app) -> list[Any]:
    return [o for o in app.replica.outbox.pending() if o.entity == "activity" and o.fields.get("outcome")]


async def test_minutes_typed_right_after_choosing_the_outcome_of_a_call_are_saved(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER))
        await pilot.pause()
        # c opens the form; subject, tab past the text, the outcome dropdown: open, one down, choose;
        # tab, minutes, save.
        await typed_together(pilot, "c", *"Renewal", "tab", "tab", "enter", "down", "enter", "tab", "2", "5", "f2")
        assert not isinstance(app.screen, RecordForm)
        [op] = activity_ops(app)
        assert {k: op.fields[k] for k in ("subject", "outcome", "duration_min")} == {
            "subject": "Renewal", "outcome": "reached", "duration_min": 25}


# What a user types into an empty box of each kind (a filled box is typed again as it reads).
TYPED = {"email": "typed@example.com", "phone": "+49 30 5550100", "currency": "EUR", "country": "DE",
         "close_date": "2026-12-31", "due_at": "2026-12-01 10:00", "tags": "vip", "probability": "40",
         "amount": "1200", "lifetime_value": "1200", "duration_min": "25"}


def keys_for_every_field(form: RecordForm) -> tuple[list[str], dict[str, str]]:
    """Keys that fill each field in turn (a dropdown: open, one down, choose; a box: cleared and
    typed), tab between them; and the text each box should then show."""
    keys: list[str] = []
    expected: dict[str, str] = {}
    for name in form.field_names:
        widget = form.query_one(f"#field-{name}")
        if isinstance(widget, Select):
            keys += ["enter", "down", "enter"]
        elif isinstance(widget, TextArea):
            text = f"Typed {name}"
            keys += ["ctrl+a", *text] if not widget.text else list(text)
            expected[name] = widget.text + text if widget.text else text
        else:
            text = widget.value or TYPED.get(name, f"Typed {name}")
            keys += ["end", "ctrl+u", *text]
            expected[name] = text
        keys.append("tab")
    return keys, expected


async def open_order_request(app, pilot) -> None:
    await app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER))
    await pilot.pause()
    await pilot.press("l", "enter")  # the Orders tab, its newest order
    await pilot.pause()
    assert isinstance(app.screen, OrderDetailScreen)
    await pilot.press("f")  # a refund request: why the customer asks


async def open_new_customer(app, pilot) -> None:
    await app.push_screen(SearchScreen())
    await pilot.pause()
    await pilot.press("ctrl+n")


def from_customer(key: str):
    async def open_form(app, pilot) -> None:
        await app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER))
        await pilot.pause()
        await pilot.press(key)
    return open_form


FORMS = {
    "customer": ("customer", open_new_customer),
    "contact": ("contact", from_customer("a")),
    "ticket": ("ticket", from_customer("t")),
    "deal": ("deal", from_customer("d")),
    "note": ("activity", from_customer("n")),
    "visit": ("activity", from_customer("v")),
    "task": ("task", from_customer("f")),
    "order request": ("order_event", open_order_request),
}


@pytest.mark.parametrize("form_name", FORMS)
async def test_every_field_of_a_form_filled_in_one_go_is_saved_as_shown(make_app, form_name):
    entity_name, open_form = FORMS[form_name]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_form(app, pilot)
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        # From the top (a form with prefilled fields starts lower down, in the first one to fill).
        form.query_one(f"#field-{form.field_names[0]}").focus()
        await pilot.pause()
        keys, expected = keys_for_every_field(form)
        await typed_together(pilot, *keys)
        shown = {name: (w.text if isinstance(w, TextArea) else w.value)
                 for name in expected for w in [form.query_one(f"#field-{name}")]}
        assert shown == expected
        values, errors = form.collect()
        assert not errors
        before = {op.seq for op in app.replica.outbox.pending()}
        await typed_together(pilot, "f2")
        assert app.screen is not form, str(form.query_one("#form-error").render())
        [op] = [o for o in app.replica.outbox.pending() if o.seq not in before and o.entity == entity_name]
        assert {k: op.fields.get(k) for k in values} == values


# ----------------------------------------------------------------------------- errors and hints


def hint(form: RecordForm, name: str) -> str:
    label = form.query_one(f"#error-{name}")
    return str(label.render()) if label.display else ""


async def test_a_refused_save_puts_the_cursor_on_the_first_wrong_field_and_a_fixed_field_loses_its_hint(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_call_form(pilot)
        await pilot.press(*"Renewal", "tab", "tab", "tab", *"ten", "f2")  # no outcome, minutes in words
        await pilot.pause()
        assert app.screen is form
        assert "say what came of the call" in hint(form, "outcome")
        assert "whole number" in hint(form, "duration_min")
        assert app.focused is form.query_one("#field-outcome")  # the first field that is wrong
        await pilot.press("enter", "down", "enter")  # an outcome chosen: its hint goes at once
        await pilot.pause()
        assert hint(form, "outcome") == ""
        assert "whole number" in hint(form, "duration_min")  # the other one is still wrong
        await pilot.press("tab", "ctrl+u", "1")
        await pilot.pause()
        assert app.focused is form.query_one("#field-duration_min")
        assert hint(form, "duration_min") == ""
        await pilot.press("backspace", *"x")  # wrong again: the hint says so again
        await pilot.pause()
        assert "whole number" in hint(form, "duration_min")


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_the_territory_dropdown_of_a_new_customer_is_drawn_whole_on_screen(make_app, open_replica, size):
    replica = open_replica("full")
    ui_data.many_territories(replica, 14)
    app = make_app(replica=replica)
    async with app.run_test(size=size) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        territory = app.screen.query_one("#field-territory")
        territory.focus()
        await pilot.press("enter")
        await pilot.pause()
        overlay = territory.query_one(SelectOverlay)
        assert overlay.region.height >= 8  # a useful part of the list at once, the rest a scroll away
        assert app.screen.region.contains_region(overlay.region)
        await pilot.press("end", "enter")  # the last territory is reachable and chosen
        await pilot.pause()
        assert territory.value == "te_west"


# ----------------------------------------------------------------------------- wording


async def test_forms_say_stages_and_statuses_in_words(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "3")  # the pipeline
        await pilot.pause()
        app.screen.table("negotiation").focus()
        await pilot.press("x")  # mark the deal lost
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        note = str(form.query_one(".form-note").render())
        assert note == "It is now in Negotiation. Say why it was lost, and when it closed."
        await pilot.press("escape")
        await pilot.pause()
        await open_order_request(app, pilot)
        await pilot.pause()
        note = str(app.screen.query_one(".form-note").render())
        assert note.endswith("Requests are taken for paid, shipped or delivered orders.")


# ----------------------------------------------------------------------------- counts


async def test_counts_in_the_thousands_are_grouped_wherever_a_user_reads_them(make_app, open_replica):
    replica = open_replica("full")
    ui_data.a_busy_year(replica)
    app = make_app(replica=replica)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("escape", "2")  # the ticket queue, mine
        await settle(pilot)
        bar = str(app.screen.query_one("#queue-bar").render())
        assert re.search(r"· 1,4\d\d tickets · 1,4\d\d overdue", bar), bar
        await pilot.press("8")  # today
        await settle(pilot)
        bar = str(app.screen.query_one("#today-bar").render())
        assert re.search(r"· 1,2\d\d overdue", bar), bar
        await pilot.press("3")  # the pipeline
        await settle(pilot)
        header = str(app.screen.query_one("#stage-header-lead").render())
        assert re.match(r"Lead\n1,10\d · ", header), header
        await pilot.press("7")  # reports: the funnel's figures
        await settle(pilot)
        funnel = app.screen.query_one("#funnel-table")
        lead = [str(cell) for cell in funnel.get_row("lead")]
        assert re.fullmatch(r"1,1\d\d", lead[2]), lead
        await app.push_screen(Customer360Screen("cu_001"))
        await settle(pilot)
        labels = {str(tab.label) for tab in app.screen.query("Tab")}
        assert any(label.startswith("Tickets 1,4") for label in labels), labels
        assert any(label.startswith("Deals 1,10") for label in labels), labels


def a_big_sync(on_event, periodic: bool = False) -> SyncReport:
    return SyncReport(ok=True, pushed=1418, pulled=25_000, conflicts=1, rejected=1200)


async def test_a_sync_that_moved_thousands_says_so_grouped(make_app):
    app = make_app(sync_runner=a_big_sync)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await settle(pilot)
        assert any(n.startswith("synced: pushed 1,418, pulled 25,000, 1 conflict, 1,200 rejected")
                   for n in app.notified), app.notified
