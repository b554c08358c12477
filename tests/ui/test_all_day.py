"""A day in the app in tmux (issue 10, "all day in the app"): what a new user found, each as they
would notice it: quitting, focus in forms, esc in search, the pipeline's totals and outcomes, the
order detail, the conflict dialog, the customer picker, order search results, the ticket queue."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from crm_tui.core.domain import DEAL_STAGES, format_money
from screens import form_specs, task_forms
from screens.display import compact_money
from screens.forms import RecordForm
from screens.order_detail import OrderDetailScreen
from screens.pickers import ChoicePicker, ConfirmModal
from support import ui_data
from support.pilot import command, footer_keys, settle, visible_text

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


def _confirm_text(app) -> str:
    screen = app.screen
    assert isinstance(screen, ConfirmModal), f"no question asked; the screen is {type(screen).__name__}"
    return f"{screen.question} {screen.detail}"


# ----------------------------------------------------------------------------- every way to quit asks


@pytest.mark.parametrize("how", [":q", ":quit", ":exit", "ctrl+q", "palette"])
async def test_every_way_to_quit_asks_when_changes_are_unsent(make_app, how):
    app = make_app()  # the full replica holds 2 edits made offline, not yet sent
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        if how.startswith(":"):
            await command(pilot, how[1:])
        elif how == "palette":
            await pilot.press("ctrl+p")
            await pilot.pause()
            app.screen.query_one("CommandInput").value = "Quit"
            await settle(pilot)
            await pilot.press("enter")
        else:
            await pilot.press(how)
        await settle(pilot)
        assert app.is_running
        assert "2 saved changes not yet on the server" in _confirm_text(app)
        await pilot.press("n")
        await settle(pilot)
        assert app.is_running and not isinstance(app.screen, ConfirmModal)
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert not app.is_running


async def test_colon_q_bang_quits_without_asking(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await command(pilot, "q!")
        await settle(pilot)
        assert not app.is_running


# ----------------------------------------------------------------------------- where a form starts


async def test_reply_starts_in_the_body_and_typing_keeps_the_subject(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        ticket = app.screen.current_ticket()
        await pilot.press("r")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, RecordForm)
        await pilot.press(*"Thanks")
        await pilot.pause()
        assert form.query_one("#field-subject").value == f"Re: {ticket['subject']}"
        assert form.query_one("#field-body").text == "Thanks"


def _focused_value(widget) -> str:
    if isinstance(widget, Select):
        return "" if widget.value == Select.NULL else str(widget.value)
    return widget.text if hasattr(widget, "text") and not hasattr(widget, "value") else widget.value


FORMS = {
    "new customer": lambda app: form_specs.customer_form(app),
    "new contact": lambda app: form_specs.contact_form(app, "cu_001"),
    "open a ticket": lambda app: form_specs.ticket_form(app, "cu_001"),
    "new deal": lambda app: form_specs.deal_form(app, "cu_001"),
    "log a note": lambda app: form_specs.activity_form(app, "cu_001"),
    "log a call": lambda app: form_specs.activity_form(app, "cu_001", kind="call", title="Log a call"),
    "internal note": lambda app: form_specs.activity_form(app, "cu_001", internal=True, subject="Internal note",
                                                          ticket_id="ti_001", fields=("subject", "body")),
    "mark lost": lambda app: form_specs.deal_outcome_form(app, app.replica.get("deal", "de_001"), "lost"),
    "refund request": lambda app: form_specs.order_request_form(
        app, app.replica.reads.orders("cu_001")[0], "refund_request"),
    "follow-up": lambda app: task_forms.task_form(app, "cu_001", title="Follow up with Keller"),
}


@pytest.mark.parametrize("name", list(FORMS))
async def test_a_new_form_starts_in_a_field_to_fill_never_on_a_prefilled_one(make_app, name):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        form = FORMS[name](app)
        await app.push_screen(form)
        await settle(pilot)
        focused = app.focused
        assert focused is not None and focused.id and focused.id.startswith("field-")
        assert _focused_value(focused) == "", f"{name}: starts on {focused.id}, prefilled {_focused_value(focused)!r}"


async def test_a_form_with_every_field_prefilled_starts_with_nothing_selected(make_app):
    # Editing a contact: typing adds to the name, never replaces it.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await settle(pilot)
        contact = app.replica.reads.contacts("cu_001", limit=1)[0]
        await app.push_screen(form_specs.contact_form(app, "cu_001", contact))
        await settle(pilot)
        await pilot.press(*" Jr")
        await pilot.pause()
        assert app.screen.query_one("#field-name").value == f"{contact['name']} Jr"


# ----------------------------------------------------------------------------- esc in the search box


async def test_esc_in_the_search_box_leaves_it_keeping_the_query_then_esc_clears(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*"schmidt")
        await settle(pilot)
        found = screen.results.total
        assert found > 1
        assert "esc leaves the box" in str(screen.query_one("#search-summary").render())
        await pilot.press("escape")
        await settle(pilot)
        # Out of the box, on the results: the query and its results stay, G moves in them.
        assert screen.search_box.value == "schmidt" and screen.results.total == found
        assert screen.results.has_focus
        assert "esc clears the search" in str(screen.query_one("#search-summary").render())
        await pilot.press("G")
        await settle(pilot)
        assert screen.search_box.value == "schmidt"
        assert screen.results.cursor_row == found - 1
        await pilot.press("escape")
        await settle(pilot)
        # esc again clears it, still out of the box (1–8 and q are commands); a letter typed next
        # starts a new search.
        assert screen.search_box.value == "" and not screen.search_box.has_focus
        await pilot.press(*"anna")
        await settle(pilot)
        assert screen.search_box.value == "anna" and screen.search_box.has_focus


async def test_esc_in_a_box_whose_query_found_nothing_leaves_the_box_keeping_the_query(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*"zzqx")
        await settle(pilot)
        assert screen.results.total == 0
        await pilot.press("escape")
        await settle(pilot)
        assert screen.search_box.value == "zzqx" and not screen.search_box.has_focus
        await pilot.press("2")  # single keys are commands again
        await settle(pilot)
        assert app.current_mode == "tickets"


# ----------------------------------------------------------------------------- pipeline


async def _on_deal(pilot, stage: str, deal_id: str):
    await pilot.press("escape", "3")
    await settle(pilot)
    screen = pilot.app.screen
    table = screen.table(stage)
    table.focus()
    table.move_cursor(row=table.get_row_index(deal_id), animate=False)
    await pilot.pause()
    return screen


async def test_stage_totals_lead_with_the_currency_of_most_deals(make_app):
    app = make_app()
    deal = {**app.replica.get("deal", "de_001"), "id": "de_aed", "currency": "AED", "amount": 1_200_000_00,
            "stage": "lead", "version": 1}
    ui_data.add_records(app.replica, "deal", [deal])
    async with app.run_test(size=(160, 48)) as pilot:
        await _on_deal(pilot, "lead", "de_aed")
        header = str(app.screen.query_one("#stage-header-lead").render())
        lead = [d for d in ui_data.deals() if d["stage"] == "lead"]
        most = max(("EUR", "USD"), key=lambda c: sum(d["currency"] == c for d in lead))
        totals = header.split(" · ", 1)[1]
        assert totals.split(" + ")[0].endswith(most), header
        assert totals.split(" + ")[-1].endswith("AED"), header  # one deal: last


@pytest.mark.parametrize(("stage", "deal_id", "key", "says"), [
    ("won", "de_011", "x", "was won; mark it lost instead?"),
    ("lost", "de_012", "w", "was lost; mark it won instead?"),
])
async def test_changing_an_outcome_asks_first(make_app, stage, deal_id, key, says):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _on_deal(pilot, stage, deal_id)
        await pilot.press(key)
        await settle(pilot)
        assert says in _confirm_text(app)
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, (ConfirmModal, RecordForm))
        assert app.replica.get("deal", deal_id)["stage"] == stage
        await pilot.press(key, "y")
        await settle(pilot)
        assert isinstance(app.screen, RecordForm)  # then the outcome's own form, as ever


# ----------------------------------------------------------------------------- order detail


async def test_a_delivered_order_offers_a_refund_request_only_and_its_header_shows_the_request(make_app):
    app = make_app()
    order_id = "or_0007"
    assert app.replica.get("order", order_id)["status"] == "delivered"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await app.push_screen(OrderDetailScreen(order_id))
        await settle(pilot)
        keys = footer_keys(app)
        assert "f Refund request" in keys
        assert not any(k.startswith("x ") for k in keys), keys  # a delivered order cannot be cancelled
        header = app.screen.query_one("#order-header")
        assert "refund request" not in str(header.render())
        await pilot.press("f")
        await settle(pilot)
        await pilot.press(*"Arrived broken", "f2")
        await settle(pilot)
        assert isinstance(app.screen, OrderDetailScreen)
        assert "refund request just now" in str(header.render())


# ----------------------------------------------------------------------------- conflicts


async def test_the_conflict_dialog_says_what_is_known_of_the_other_change(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "5")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        text = str(app.screen.query_one(".conflict-explain").render())
        assert "someone else" not in text
        # The protocol carries no author for a change, only its time and version: said as such.
        assert "changed on the server" in text and "version 3" in text and " ago" in text


# ----------------------------------------------------------------------------- the customer picker


async def test_customer_picker_counts_what_it_lists_and_is_wide_enough_at_wide_terminals(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("escape")
        await command(pilot, "customer an")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ChoicePicker)
        labels = [label for _value, label in picker.choices]
        via_contact = sum(" (contact)" in label for label in labels)
        assert via_contact and via_contact < len(labels)
        title = picker.title_text
        direct = len(labels) - via_contact
        assert f"{direct} customer{'s' if direct != 1 else ''}" in title, title
        assert f"{via_contact} through a contact" in title, title
        # Each entry on one line: the picker is as wide as its longest entry (within the screen).
        options = picker.query_one("OptionList")
        assert options.option_count == len(labels)
        longest = max(len(label) for label in labels)
        assert options.scrollable_content_region.width >= min(longest, 160 - 12), (longest, options.size)


# ----------------------------------------------------------------------------- order search results


async def test_an_order_found_by_number_shows_its_customer_and_amount(make_app):
    app = make_app()
    order = app.replica.get("order", "or_0007")
    customer = app.replica.get("customer", order["customer_id"])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*order["number"])
        await settle(pilot)
        row = app.screen.results.current_row()
        assert row["kind"] == "order" and row["title"] == order["number"]
        assert customer["name"] in row["detail"], row["detail"]
        assert format_money(order["amount"], order["currency"]) in row["detail"], row["detail"]
        assert "delivered" in row["detail"] and order["order_date"] in row["detail"]


# ----------------------------------------------------------------------------- the ticket queue


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_an_unassigned_ticket_reads_the_same_at_any_width_and_the_bar_fits(make_app, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        app.screen.set_view("all")
        await settle(pilot)
        shown = visible_text(app.screen.panel.table)
        assert "unassigned" in shown
        assert not any(line.rstrip().endswith(" -") for line in shown.splitlines())
        bar = str(app.screen.query_one("#queue-bar").render())
        assert len(bar) <= size[0] - 1, bar  # nothing cut off at the right
        assert "v view" in bar  # how to change the view is said at any width


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_stage_totals_are_never_cut(make_app, size):
    """At 80 columns the pipeline's stage headers read `4 · 238k U…`: an amount without its
    currency. Each header shows its count, and its totals whole (a currency that does not fit is
    counted, `+1`), never cut."""
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("escape", "3")
        await settle(pilot)
        summaries = {s.stage: s for s in app.replica.reads.pipeline()}
        for stage in DEAL_STAGES:
            header = app.screen.query_one(f"#stage-header-{stage}")
            text = str(header.render())
            lines = text.splitlines()
            assert all(len(line) <= header.size.width for line in lines), (stage, lines)
            assert "…" not in text
            summary = summaries[stage]
            lead = compact_money(*next(iter(summary.totals.items()))[::-1])
            assert lead in text and str(summary.count) in text, (stage, text)
            others = len(summary.totals) - 1
            assert all(compact_money(v, c) in text for c, v in summary.totals.items()) or f"+{others}" in text


@pytest.mark.parametrize(("totals", "width", "shown"), [
    ({"USD": 124_000_00, "EUR": 150_000_00}, 11, "124k USD +1"),
    ({"USD": 124_000_00, "EUR": 150_000_00}, 19, "124k USD + 150k EUR"),
    # The demo's 26 currencies in a 11-cell column: the lead amount whole, '+' for the others.
    ({"EUR": 11_400_000_00, **{f"C{i:02d}": 100 for i in range(25)}}, 11, "11.4M EUR +"),
    ({"EUR": 11_400_000_00, **{f"C{i:02d}": 100 for i in range(25)}}, 13, "11.4M EUR +25"),
    ({}, 11, "-"),
])
def test_stage_totals_fit_their_column_whole(totals, width, shown):
    from screens.pipeline import fit_totals

    assert fit_totals(totals, width) == shown
