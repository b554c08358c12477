"""Where keys go on the search screen and after a modal, and `esc` typed quickly before a key
(issue 10, "all day in the app", items 10, 11, 13): the search box takes every key, digits too;
`esc` leaves it for the single-key commands (1–8, q) and a second `esc` clears it without going
back into it; a letter typed outside the box goes into it again. In tmux, `esc` and the key typed
right after it arrive together as `alt+<key>`: that is `esc`, then the key."""

from __future__ import annotations

import pytest
from textual._xterm_parser import XTermParser

from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.help import HelpScreen
from screens.pickers import ChoicePicker, ConfirmModal
from screens.search import SearchScreen
from support.pilot import command, footer_keys, settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


async def terminal_alt(pilot, character: str) -> None:
    """`esc` and ``character`` as a terminal under tmux hands them over, in one read: the key
    event Textual's own parser makes of them (``alt+q`` with the character "q")."""
    (event,) = XTermParser()._sequence_to_key_events(character, alt=True)
    assert event.key.startswith("alt+") and event.character == character
    event.set_sender(pilot.app)
    pilot.app._driver.send_message(event)
    await settle(pilot)
    for _ in range(200):  # until the app has handled both halves
        if not (pilot.app.type_ahead.busy or pilot.app.type_ahead.waiting):
            break
        await pilot.pause(0.01)
    await settle(pilot)


# ----------------------------------------------------------------------------- esc in the search box


@pytest.mark.parametrize("query", ["schmidt", "zzqx"])  # with results, and with none
async def test_esc_esc_then_2_shows_the_ticket_queue_and_the_box_is_empty(make_app, query):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*query)
        await settle(pilot)
        await pilot.press("escape", "escape")
        await settle(pilot)
        assert screen.search_box.value == "" and not screen.search_box.has_focus
        await pilot.press("2")
        await settle(pilot)
        assert app.current_mode == "tickets"
        await pilot.press("escape")  # the queue's esc goes home
        await settle(pilot)
        assert app.screen is screen and screen.search_box.value == ""


async def test_q_after_esc_cleared_the_box_asks_to_quit_instead_of_searching_for_q(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"anna", "escape", "escape", "q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and app.screen.question == "Quit crm-tui?"


async def test_a_letter_typed_on_the_results_goes_into_the_box_and_list_keys_still_move(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*"schmidt")
        await settle(pilot)
        await pilot.press("escape")  # on the results, the query kept
        await settle(pilot)
        assert screen.results.has_focus
        await pilot.press("j")  # a list key moves in the results
        await settle(pilot)
        assert screen.results.cursor_row == 1 and screen.search_box.value == "schmidt"
        await pilot.press("x")  # no key here means x: it is typed, after what is there
        await settle(pilot)
        assert screen.search_box.has_focus and screen.search_box.value == "schmidtx"
        await pilot.press("backspace", "escape", "escape", *"bruno")  # cleared, then a new search
        await settle(pilot)
        assert screen.search_box.value == "bruno" and screen.query_text == "bruno"


# ----------------------------------------------------------------------------- digits in the box, and how to leave it


async def test_digits_type_into_the_box_and_the_footer_and_hint_say_how_to_switch_sections(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        hint = str(screen.query_one("#search-empty").render())
        assert "esc leaves the box, then 1–8 switch sections and q quits" in hint
        keys = footer_keys(app)
        assert "esc Leave box" in keys and "/ Search" not in keys  # / is a character in the box
        await pilot.press(*"0176")  # a phone number's first digits
        await settle(pilot)
        assert screen.search_box.value == "0176" and app.current_mode == "search"
        await pilot.press("escape")
        await settle(pilot)
        assert "esc Leave box" not in footer_keys(app)
        await pilot.press("2")
        await settle(pilot)
        assert app.current_mode == "tickets"


async def test_help_in_the_box_lists_esc_as_leaving_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert ("esc", "Leave box", "search.leave") in help_screen.rows
        assert "esc leaves it" in help_screen.help_text


# ----------------------------------------------------------------------------- alt+key is esc, then the key


async def test_alt_2_in_the_search_box_switches_to_tickets(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*"anna")
        await settle(pilot)
        await terminal_alt(pilot, "2")
        assert app.current_mode == "tickets"
        assert screen.search_box.value == "anna"  # esc left the box keeping the query; no "2" typed


async def _filled_note(pilot) -> RecordForm:
    await pilot.app.push_screen(Customer360Screen("cu_005"))
    await pilot.press("n")
    await settle(pilot)
    form = pilot.app.screen
    assert isinstance(form, RecordForm)
    await pilot.press(*"Half")
    await settle(pilot)
    assert form.query_one("#field-subject").value == "Half"
    return form


@pytest.mark.parametrize("how", ["alt+q", "esc then q"])
async def test_alt_q_on_a_filled_form_is_esc_then_q(make_app, how):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await _filled_note(pilot)
        if how == "alt+q":
            await terminal_alt(pilot, "q")
        else:
            await pilot.press("escape", "q")
            await settle(pilot)
        # The form asks before it throws the text away; q does not quit over the question.
        assert isinstance(app.screen, ConfirmModal) and app.screen.question == "Discard this form?"
        assert app.is_running and form.query_one("#field-subject").value == "Half"
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is form and form.query_one("#field-subject").value == "Half"


@pytest.mark.parametrize("how", ["alt+q", "esc then q"])
async def test_alt_q_on_an_untouched_form_closes_it_then_asks_to_quit(make_app, how):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, RecordForm)
        if how == "alt+q":
            await terminal_alt(pilot, "q")
        else:
            await pilot.press("escape", "q")
            await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and app.screen.question == "Quit crm-tui?"
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, Customer360Screen)


async def test_an_alt_key_bound_in_the_keymap_keeps_its_binding_and_types_nothing(make_app):
    app = make_app(keymap={"app.tickets": "alt+t"})
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await terminal_alt(pilot, "t")  # the cursor is in the search box
        assert app.current_mode == "tickets"
        assert screen.search_box.value == ""


# ----------------------------------------------------------------------------- keys the keymap moved, while a box has the focus


@pytest.mark.parametrize("where", ["search box", "list filter"])
async def test_a_section_key_moved_by_the_keymap_works_while_a_box_has_the_focus(make_app, where):
    """Textual left the keys a box types out of the bindings before it applied the keymap: with
    `app.tickets` moved from 2 to f9, f9 did nothing while the cursor was in a box."""
    app = make_app(keymap={"app.tickets": "f9", "app.today": "f8"})
    async with app.run_test(size=SIZE) as pilot:
        if where == "list filter":
            await pilot.press("f9", "slash", "x")
            await settle(pilot)
        box = app.focused
        assert box is not None and box.check_consume_key("2", "2")  # the cursor is in a box
        await pilot.press("f8" if where == "list filter" else "f9")
        await settle(pilot)
        assert app.current_mode == ("today" if where == "list filter" else "tickets")


# ----------------------------------------------------------------------------- focus after a modal


async def _open_and_close(pilot, opener: str) -> None:
    app = pilot.app
    below = app.screen
    if opener == "picker":
        await command(pilot, "customer an")  # several match: a picker asks which
        await settle(pilot)
        assert isinstance(app.screen, ChoicePicker)
    elif opener.startswith("picker:"):  # a screen's own picker, by its key
        await pilot.press(opener.removeprefix("picker:"))
        await settle(pilot)
        assert isinstance(app.screen, ChoicePicker)
    else:
        await pilot.press(opener)
        await settle(pilot)
    assert app.screen is not below
    await pilot.press("escape")
    await settle(pilot)
    assert app.screen is below


@pytest.mark.parametrize("opener", ["f1", "ctrl+p"])
async def test_after_a_modal_opened_from_the_box_the_cursor_is_back_in_the_box(make_app, opener):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*"ann")
        await settle(pilot)
        await _open_and_close(pilot, opener)
        assert screen.search_box.has_focus
        await pilot.press("a", "2")
        await settle(pilot)
        assert screen.search_box.value == "anna2" and app.current_mode == "search"


@pytest.mark.parametrize("opener", ["f1", "question_mark", "colon", "ctrl+p", "picker"])
@pytest.mark.parametrize("where", ["results", "nowhere"])
async def test_after_a_modal_the_focus_is_where_it_was_and_2_switches(make_app, opener, where):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press(*"schmidt", "escape")  # on the results, the query kept
        if where == "nowhere":
            await pilot.press("escape")  # the search cleared, out of the box
        await settle(pilot)
        before = app.focused
        assert before is (screen.results if where == "results" else None)
        await _open_and_close(pilot, opener)
        assert app.focused is before
        await pilot.press("2")
        await settle(pilot)
        assert app.current_mode == "tickets"


@pytest.mark.slow  # the whole matrix (21 apps): `make test-slow`; the cases above keep `make test` honest
@pytest.mark.parametrize("key", ["2", "3", "4", "5", "6", "7", "8"])
@pytest.mark.parametrize("opener", ["question_mark", "ctrl+p", "colon"])
async def test_every_section_keeps_its_focus_after_a_modal_and_its_section_keys_work(make_app, key, opener):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", key)
        await settle(pilot)
        below, before = app.screen, app.focused
        await _open_and_close(pilot, opener)
        assert app.screen is below and app.focused is before
        await pilot.press("1")
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen) and app.screen.search_box.has_focus


@pytest.mark.parametrize(("key", "picker"), [("7", "t"), ("7", "p"), ("2", "F"), ("2", "P")])
async def test_after_a_sections_picker_its_focus_is_back_and_section_keys_work(make_app, key, picker):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", key)
        await settle(pilot)
        below, before = app.screen, app.focused
        await _open_and_close(pilot, f"picker:{picker}")
        assert app.screen is below and app.focused is before
        await pilot.press("8")
        await settle(pilot)
        assert app.current_mode == "today"


async def test_keys_typed_after_esc_left_a_list_filter_are_commands(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await settle(pilot)
        await pilot.press("slash", *"x1")  # a filter box takes digits too
        await settle(pilot)
        box = app.screen.query_one(".list-filter")
        assert box.has_focus and box.value == "x1"
        await pilot.press("escape", "3")  # esc clears the filter and leaves the box
        await settle(pilot)
        assert app.current_mode == "pipeline"
