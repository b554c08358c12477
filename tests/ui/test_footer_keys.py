"""The footer shows each screen's primary keys at 80 columns (issue 10: a new user never found f
for a follow-up, or o and e on a ticket: they were only in help)."""

from __future__ import annotations

import pytest

from screens.customer import Customer360Screen
from screens.ticket_detail import TicketDetailScreen
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
