"""The footer shows each screen's primary keys at 80 columns (issue 10: a new user never found f
for a follow-up, or o and e on a ticket: they were only in help)."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from screens.chrome import CrmFooter
from screens.customer import Customer360Screen
from screens.help import binding_rows
from screens.pickers import ChoicePicker
from screens.ticket_detail import TicketDetailScreen
from support import ui_data
from support.pilot import footer_keys, settle

pytestmark = pytest.mark.anyio

SIZE = (80, 24)


async def shown(app, pilot, opener) -> list[str]:
    await opener(pilot)
    await settle(pilot)
    return footer_keys(app)


def push(screen):
    async def run(pilot):
        await pilot.app.push_screen(screen)
    return run


def section(key):
    async def run(pilot):
        await pilot.press("escape", key)
    return run


@pytest.mark.parametrize(("name", "opener", "wanted"), [
    ("customer", lambda: push(Customer360Screen("cu_005")), ["n Note", "c Call", "v Visit", "f Follow-up", "e Edit"]),
    ("ticket", lambda: push(TicketDetailScreen("ti_003")),
     ["r Reply", "i Note", "s Status", "a Assign me", "o Customer", "f Follow-up", "e Edit"]),
    ("queue", lambda: section("2"), ["r Reply", "s Status", "a Assign me", "o Customer", "f Follow-up", "e Edit"]),
    ("pipeline", lambda: section("3"), ["> Next stage", "w Won", "x Lost", "e Edit", "f Follow-up"]),
    ("today", lambda: section("8"), ["x Done/reopen", "e Edit", "o Customer"]),
])
async def test_the_footer_shows_the_primary_keys_at_80_columns(make_app, name, opener, wanted):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        keys = await shown(app, pilot, opener())
        missing = [k for k in wanted if k not in keys]
        assert not missing, f"{name}: the footer shows {keys}"


def order_detail():
    async def run(pilot):
        from screens.order_detail import OrderDetailScreen
        await pilot.app.push_screen(OrderDetailScreen(ui_data.ORDER_WITH_HISTORY))
    return run


SCREENS = [
    ("search", lambda: section("1")), ("queue", lambda: section("2")), ("pipeline", lambda: section("3")),
    ("sync", lambda: section("4")), ("conflicts", lambda: section("5")), ("rejected", lambda: section("6")),
    ("reports", lambda: section("7")), ("today", lambda: section("8")),
    ("customer", lambda: push(Customer360Screen("cu_005"))), ("ticket", lambda: push(TicketDetailScreen("ti_003"))),
    ("order", order_detail),
]


@pytest.mark.parametrize(("name", "opener"), SCREENS)
async def test_every_key_the_footer_shows_is_readable_at_80_columns(make_app, name, opener):
    """At 80 columns the ticket's footer ran off the screen ("p Pri…", and q, ? and f5 not at
    all). Each key the footer shows is whole; when not all fit, some give way (the order is in
    screens/chrome.py) and `? Help`, which lists them all, stays."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        keys = await shown(app, pilot, opener())
        drawn = [f"{k.key_display} {k.description}".strip() for k in app.screen.query(FooterKey)]
        assert keys == drawn, f"{name}: drawn {drawn}, readable {keys}"
        assert any(k.endswith(" Help") for k in keys), keys  # ? (f1 while the search box has the focus)
        footer = app.screen.query_one(CrmFooter)
        help_ids = {ident for _, _, ident in binding_rows(app, app.screen)}
        assert set(footer.left_out) <= help_ids, f"{name}: {footer.left_out} are in neither footer nor help"


@pytest.mark.parametrize(("name", "opener"), SCREENS)
async def test_a_wide_footer_shows_every_key(make_app, name, opener):
    app = make_app()
    async with app.run_test(size=(160, 45)) as pilot:
        await shown(app, pilot, opener())
        assert app.screen.query_one(CrmFooter).left_out == []


async def test_a_key_that_gave_way_still_works_and_help_names_it(make_app):
    """At 80 columns the ticket's `p Priority` gives way in the footer: p still sets the priority,
    and help lists it."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        keys = await shown(app, pilot, push(TicketDetailScreen("ti_003")))
        assert "p Priority" not in keys
        assert "p" in next(k for k, text, _ in binding_rows(app, app.screen) if text == "Priority")
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ChoicePicker) and "Priority" in app.screen.title_text
