"""Keys typed right after a screen-opening key reach the new screen (issue 10: a new user in tmux
lost the first letters of a name after `1`, and a key pressed at once after opening a customer acted
on the list below). ``type_at_once`` hands the app all keys in one read, as a terminal does."""

from __future__ import annotations

import pytest

from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.search import SearchScreen
from screens.ticket_detail import TicketDetailScreen
from screens.tickets import TicketQueueScreen
from support.pilot import settle, type_at_once

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


async def test_a_name_typed_at_once_after_1_is_all_in_the_search_box(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.switch_mode("tickets")
        await settle(pilot)
        await type_at_once(pilot, "1", *"anna")
        assert isinstance(app.screen, SearchScreen)
        assert app.screen.search_box.value == "anna"
        assert app.screen.query_text == "anna"


async def test_1_after_esc_left_the_box_types_into_it_again(make_app):
    """esc leaves the box so digits are commands; `1` is the search key: what follows is a query."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        await pilot.press("1", *"anna")
        await settle(pilot)
        assert app.screen.search_box.value == "anna"


@pytest.mark.parametrize(("key", "mode", "table"), [
    ("2", "tickets", "queue-table"), ("3", "pipeline", "stage-table-lead"), ("4", "sync", "sync-history"),
    ("6", "rejected", "rejected-table"), ("8", "today", "today-table"),
])
async def test_a_key_at_once_after_a_section_key_moves_that_sections_list(make_app, key, mode, table):
    """Binding keys found the new section before the fix too (Textual looks bindings up when the key
    bubbles to the app); this keeps it so now that keys wait for the switch."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.switch_mode("today" if mode != "today" else "tickets")
        await settle(pilot)
        below = app.focused
        assert below is not None and below.cursor_row == 0
        await type_at_once(pilot, key, "j")
        assert app.current_mode == mode
        assert app.focused is not None and app.focused.id == table
        assert app.focused.cursor_row == 1
        assert below.cursor_row == 0  # the list of the section left behind did not move


async def test_a_key_at_once_after_opening_a_customer_acts_on_the_customer(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"anna", "down")
        await settle(pilot)
        await type_at_once(pilot, "enter", "n")
        assert isinstance(app.screen, RecordForm)  # the note form, for the customer just opened
        assert [type(s) for s in app.screen_stack[1:-1]] == [Customer360Screen]


async def test_a_key_at_once_after_opening_a_ticket_acts_on_the_ticket(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        queue = app.screen
        row = queue.query_one("#queue-table").cursor_row
        await type_at_once(pilot, "enter", "j", "o")
        # j moved nothing in the queue below; o opened the customer from the ticket.
        assert queue.query_one("#queue-table").cursor_row == row
        assert [type(s) for s in app.screen_stack] == [TicketQueueScreen, TicketDetailScreen, Customer360Screen]


async def test_a_name_typed_at_once_after_ctrl_n_is_all_in_the_form(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await type_at_once(pilot, "ctrl+n", *"Zed", "space", *"Ltd")
        assert isinstance(app.screen, RecordForm)
        assert app.screen.query_one("#field-name").value == "Zed Ltd"


async def test_a_key_at_once_after_opening_an_order_acts_on_the_order(make_app):
    from screens.order_detail import OrderDetailScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_001", tab="orders"))
        await settle(pilot)
        await type_at_once(pilot, "enter", "o")
        # o is the order's: back to its customer, on top of the order.
        assert [type(s) for s in app.screen_stack[1:]] == [Customer360Screen, OrderDetailScreen, Customer360Screen]
