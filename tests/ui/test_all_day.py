"""A day in the app in tmux (issue 10, "all day in the app"): what a new user found, each as they
would notice it: quitting, focus in forms, esc in search, the pipeline's totals and outcomes, the
order detail, the conflict dialog, the customer picker, order search results, the ticket queue."""

from __future__ import annotations

import pytest

from screens.pickers import ConfirmModal
from support.pilot import command, settle

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
