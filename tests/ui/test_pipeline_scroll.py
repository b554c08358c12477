"""Pipeline columns scroll by whole cards: after a move the moved card is fully in view.

A card is three lines; a column whose height is not a multiple of three used to stop between
cards (the top card cut in the middle), and after marking a deal won the Won column was left so.
"""

from __future__ import annotations

import datetime as dt

import pytest

from screens.pipeline import PipelineScreen
from support import ui_data
from support.pilot import settle, visible_text

pytestmark = pytest.mark.anyio

SIZES = [(80, 24), (160, 45), (80, 25), (160, 44)]


def more_won_deals(n: int = 12) -> list[dict]:
    out = []
    for i in range(n):
        deal = dict(ui_data.deals()[4])  # a won deal
        deal.update(id=f"de_won_{i:02d}", title=f"Won deal {i:02d}",
                    close_date=(ui_data.NOW - dt.timedelta(days=60 - i)).date().isoformat())
        out.append(deal)
    return out


def assert_whole_card_in_view(table, index: int) -> None:
    h = table.source.row_height
    view = table.scrollable_content_region.height
    assert table.scroll_y % h == 0, f"scrolled to line {table.scroll_y}, the middle of a card"
    assert table.scroll_y <= index * h and index * h + h <= table.scroll_y + view
    shown = visible_text(table).splitlines()
    deal = table.row_at(index)
    top = index * h - int(table.scroll_y)
    assert deal["title"][:4] in shown[top]  # the card's first line is its title (cut to the column)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_a_deal_marked_won_is_a_whole_card_in_a_scrolled_won_column(make_app, open_replica, size):
    replica = open_replica("full")
    replica.server_apply.apply_page(ui_data._page([ui_data._upsert("deal", more_won_deals())], "won", has_more=False,
                                          phase="feed"))
    app = make_app(replica=replica)
    async with app.run_test(size=size) as pilot:
        await pilot.press("escape", "3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        screen.table("proposal").focus()
        await pilot.pause()
        deal = screen.current_deal()
        await pilot.press("w")
        await pilot.pause()
        app.screen.query_one("#field-close_date").value = "2027-06-30"  # the last card in Won
        await pilot.press("f2")
        await settle(pilot)
        won = screen.table("won")
        assert won.has_focus and won.current_row()["id"] == deal["id"]
        assert won.cursor_row == won.row_count - 1
        assert_whole_card_in_view(won, won.cursor_row)
        # Walking up the column and back down, it stops only at whole cards.
        for key in ["k"] * 8 + ["j"] * 8:
            await pilot.press(key)
            await pilot.pause()
            assert_whole_card_in_view(won, won.cursor_row)
