"""Widgets and dialogs carry their own look: in a bare Textual app, without crm-tui's stylesheet
(screens/app.tcss), an empty list still says so in muted text, a dialog is a bordered box in the
middle of the screen, and the `:` line sits at the bottom."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.widget import Widget
from textual.widgets import Static

from cache.windows import ListWindow
from screens.pickers import CommandLine, ConfirmModal
from screens.tables import Column, ListPanel, ListSource, WindowTable

pytestmark = pytest.mark.anyio

SIZE = (80, 24)


class BareApp(App[None]):
    """Only Textual's and the widgets' own styles: no CSS_PATH, no CSS."""

    def __init__(self, *widgets: Widget) -> None:
        super().__init__()
        self.widgets = widgets

    def compose(self) -> ComposeResult:
        yield from self.widgets


class Muted(Static):
    """Text in the theme's muted colour, to compare with."""

    DEFAULT_CSS = "Muted { color: $text-muted; }"


def theme_colour(app: App[Any], name: str) -> Color:
    return Color.parse(app.theme_variables[name])


def empty_source() -> ListSource:
    return ListSource(columns=lambda wide: [Column("name", "name")], cells=lambda row, ctx: [row["name"]],
                      window=lambda: ListWindow([]))


async def test_an_empty_list_panel_shows_its_empty_text_muted_in_place_of_the_list() -> None:
    panel = ListPanel(empty_source(), empty="Nothing here yet.")
    muted = Muted("muted")
    app = BareApp(panel, muted)
    async with app.run_test(size=SIZE) as pilot:
        panel.reload()
        await pilot.pause()
        empty = panel.query_one(".empty-state", Static)
        assert empty.display and str(empty.content) == "Nothing here yet."
        assert empty.styles.color == muted.styles.color
        assert (empty.styles.padding.top, empty.styles.padding.left) == (1, 2)
        assert panel.query_one(WindowTable).size.height == 1  # the header only
        assert not panel.filter_box.display  # the filter box waits for `/`


async def test_a_dialog_is_a_bordered_box_in_the_middle_of_the_screen() -> None:
    app = BareApp()
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ConfirmModal("Discard this change?", "Your edit is dropped."))
        await pilot.pause()
        screen = app.screen
        box = screen.query_one(".dialog")
        assert box.styles.border_top == ("round", theme_colour(app, "primary"))
        assert box.styles.background == theme_colour(app, "surface")
        assert box.outer_size.width == 76
        assert box.region.x == (SIZE[0] - 76) // 2
        assert abs(box.region.y - (SIZE[1] - box.region.bottom)) <= 1  # as much room above as below
        title = screen.query_one(".dialog-title", Static)
        assert title.styles.text_style.bold and title.styles.color == theme_colour(app, "text-accent")
        detail = screen.query_one(".confirm-detail", Static)
        assert (detail.styles.padding.top, detail.styles.padding.bottom) == (1, 1)


async def test_the_command_line_sits_at_the_bottom_over_the_screen() -> None:
    app = BareApp()
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(CommandLine())
        await pilot.pause()
        line = app.screen.query_one(".command-line")
        assert line.outer_size.height < SIZE[1] // 2  # the hint over the prompt, not the whole screen
        assert line.region.bottom == SIZE[1] and line.outer_size.width == SIZE[0]
        assert app.screen.styles.background.a == 0  # the screen behind shows undimmed
        assert app.screen.query_one("#command-input").size.height == 1
