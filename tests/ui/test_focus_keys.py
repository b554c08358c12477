"""Where keys go on the search screen and after a modal, and `esc` typed quickly before a key
(issue 10, "all day in the app", items 10, 11, 13): the search box takes every key, digits too;
`esc` leaves it for the single-key commands (1–8, q) and a second `esc` clears it without going
back into it; a letter typed outside the box goes into it again. In tmux, `esc` and the key typed
right after it arrive together as `alt+<key>`: that is `esc`, then the key."""

from __future__ import annotations

import pytest
from textual._xterm_parser import XTermParser

from support.pilot import settle

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


