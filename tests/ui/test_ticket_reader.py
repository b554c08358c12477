"""A ticket's messages read in full (issue 10: a reply longer than its row was cut off for good):
enter on a message opens it, wrapped and scrollable; esc goes back to the thread."""

from __future__ import annotations

import pytest

from screens.reader import MessageReader
from screens.ticket_detail import TicketDetailScreen
from support.pilot import settle

pytestmark = pytest.mark.anyio

LONG_BODY = ("Hello, thanks for the quick answer. We tried the steps you sent: cleared the cache, signed out "
             "and in again, and re-ran the export from the billing page. The export still stops at 80 per cent "
             "with no error shown, and the file it leaves has only the first 412 rows. Our finance team needs "
             "the full list by Thursday for the quarter close. Could you look at the job logs for our account? "
             "The last attempt was this morning around 9:40. ENDS-WITH-THIS-LINE")


def with_long_reply(replica) -> None:
    ticket = replica.get("ticket", "ti_003")
    replica.writes.create("activity", {
        "customer_id": ticket["customer_id"], "ticket_id": "ti_003", "kind": "email", "internal": False,
        "subject": "Re: export stops at 80%", "body": LONG_BODY,
        "occurred_at": "2026-11-25T08:40:00Z",  # 20 min before the tests' now: the newest
    })


async def open_longest_message(pilot) -> None:
    await pilot.app.push_screen(TicketDetailScreen("ti_003"))
    await settle(pilot)
    await pilot.press("enter")  # the newest message, the long reply, is the first row
    await settle(pilot)


async def test_enter_on_a_message_shows_all_of_it_and_esc_goes_back(open_replica, make_app):
    replica = open_replica("full")
    with_long_reply(replica)
    app = make_app(replica=replica)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_longest_message(pilot)
        reader = app.screen
        assert isinstance(reader, MessageReader)
        text = " ".join(str(reader.query_one("#reader-text").render()).split())
        assert LONG_BODY in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TicketDetailScreen)


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((160, 45), id="160x45")])
def test_message_reader(snap_compare, open_replica, make_app, size):
    replica = open_replica("full")
    with_long_reply(replica)
    assert snap_compare(make_app(replica=replica), terminal_size=size, run_before=open_longest_message)
