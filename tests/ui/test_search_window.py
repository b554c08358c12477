"""Search results are a window onto every match: the true count, `G` to the true last match,
paging past the first rows; typing stays instant (the first matches at once, every match
found by a worker on its own connection, a stale search dropped).

What a user sees is asserted (the summary line, the rows drawn) and what the app does is
counted (statements on the app's connection, searches run, counts taken), never timed.
"""

from __future__ import annotations

import re

import pytest
from textual import events

from cache.search import RANK_BELOW
from screens.search import LIMIT, SearchScreen
from support import ui_data
from support.pilot import settle, visible_text

pytestmark = pytest.mark.anyio

SIZE = (120, 36)
N = 544
NAME = "Quillfeather Holdings"


@pytest.fixture
def many(open_replica, make_app):
    replica = open_replica("full")
    ui_data.add_customers(replica, ui_data.many_customers(N, NAME))
    return make_app(replica=replica)


def summary(screen: SearchScreen) -> str:
    return str(screen.query_one("#search-summary").render())


async def test_G_on_search_results_shows_the_true_last_match(many):
    async with many.run_test(size=SIZE) as pilot:
        screen = many.screen
        assert isinstance(screen, SearchScreen)
        await pilot.press(*"quill")
        await settle(pilot)
        assert f"{N} matches · showing 1–" in summary(screen), summary(screen)
        await pilot.press("down", "G")
        await pilot.pause()
        last = f"{NAME} {N - 1:04d}"
        table = screen.results
        assert table.current_row()["title"] == last
        assert last in visible_text(table).splitlines()[-1]
        assert f"{N} matches · showing " in summary(screen) and f"–{N}" in summary(screen), summary(screen)
        # Paging up from the end reads matches far past the first LIMIT, in order.
        await pilot.press("pageup")
        await pilot.pause()
        at = table.cursor_row
        assert at > LIMIT and table.current_row()["title"] == f"{NAME} {at:04d}"


async def test_G_before_the_count_has_come_still_reaches_the_last_match(many):
    """`G` pressed at once after typing: the rest of the matches are found then, on the spot."""
    async with many.run_test(size=SIZE) as pilot:
        screen = many.screen
        screen.search_for("quill")
        screen.results.focus()
        await pilot.press("G")
        await pilot.pause()
        assert screen.results.current_row()["title"] == f"{NAME} {N - 1:04d}"
        await settle(pilot)
        assert screen.results.row_count == N and f"{N} matches" in summary(screen)


async def test_typing_reads_only_the_first_matches_on_the_app_connection(many):
    """Each keystroke reads a bounded number of rows on the app's connection: no count, never
    the whole match set; every match is found by a worker on its own connection."""
    async with many.run_test(size=SIZE) as pilot:
        screen = many.screen
        statements: list[str] = []
        many.replica.conn.set_trace_callback(statements.append)
        try:
            await pilot.press(*"quill")
            await pilot.pause()
        finally:
            many.replica.conn.set_trace_callback(None)
        assert not [s for s in statements if "count(" in s.lower()], statements
        limits = [int(m) for s in statements for m in re.findall(r"LIMIT (-?\d+)", s)]
        assert limits and all(0 <= n <= RANK_BELOW + 1 for n in limits), limits
        await settle(pilot)
        assert screen.results.row_count == N and f"{N} matches" in summary(screen)


async def test_a_burst_of_keys_searches_and_counts_only_the_last_text(many):
    async with many.run_test(size=SIZE) as pilot:
        screen = many.screen
        box = screen.search_box
        searches, counts = screen.searches, screen.counts_shown
        for ch in "quillfeather":
            box.post_message(events.Key(ch, ch))
        await settle(pilot)
        assert screen.query_text == "quillfeather"
        assert screen.searches - searches == 1
        assert screen.counts_shown - counts == 1
        assert f"{N} matches" in summary(screen)


async def test_each_key_typed_drops_the_count_of_the_text_before(many):
    """Keys one at a time: each starts a search for every match; only the last one's count is
    shown, and the list holds exactly its matches."""
    async with many.run_test(size=SIZE) as pilot:
        screen = many.screen
        counts = screen.counts_shown
        await pilot.press(*"quill")
        await pilot.press(*"feather holdings 01")
        await settle(pilot)
        # "quillfeather holdings 01" matches 0100 .. 0199 by name prefix (and only those).
        assert screen.results.row_count == 100
        assert "100 matches" in summary(screen)
        assert screen.counts_shown - counts >= 1
        rows = [screen.results.row_at(i)["title"] for i in range(100)]
        assert rows == [f"{NAME} {i:04d}" for i in range(100, 200)]
