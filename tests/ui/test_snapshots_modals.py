"""Snapshots of every modal at 80x24 and 160x48: forms (with and without errors), pickers, the
conflict resolver, the rejected-op fix form, help, the command line and the palette."""

from __future__ import annotations

import pytest

from screens.customer import Customer360Screen
from support import ui_data
from support.pilot import lasting_toasts, settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture
def make_app(make_app):
    """Apps whose toasts stay up until the snapshot is taken (tests/ui/conftest.py)."""
    return lasting_toasts(make_app)


def on_customer(customer_id: str, *keys: str):
    async def run(pilot) -> None:
        await pilot.app.push_screen(Customer360Screen(customer_id))
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()

    return run


def in_section(section_key: str, *keys: str):
    async def run(pilot) -> None:
        await pilot.press("escape", section_key)
        await settle(pilot)  # what the screen counts apart has come
        await pilot.press(*keys)
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_form_edit_customer(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_customer("cu_005", "e"))


@pytest.mark.parametrize("size", SIZES)
def test_form_validation_errors(snap_compare, make_app, size):
    async def run(pilot):
        await on_customer("cu_005", "e")(pilot)
        form = pilot.app.screen
        form.query_one("#field-email").value = "not an email"
        form.query_one("#field-country").value = "Germany"
        form.query_one("#field-lifetime_value").value = "lots"
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_form_new_ticket(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_customer("cu_005", "t"))


@pytest.mark.parametrize("size", SIZES)
def test_form_new_deal(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_customer("cu_005", "d"))


@pytest.mark.parametrize("size", SIZES)
def test_form_log_call(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_customer("cu_005", "c"))


@pytest.mark.parametrize("size", SIZES)
def test_form_new_contact(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_customer("cu_005", "a"))


@pytest.mark.parametrize("size", SIZES)
def test_form_new_customer(snap_compare, make_app, size):
    async def run(pilot):
        await pilot.press("ctrl+n")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((160, 45), id="160x45")])
def test_form_new_customer_territory_dropdown(snap_compare, make_app, open_replica, size):
    # Someone who may write any of 14 territories opens the list: it is drawn whole, inside the screen.
    replica = open_replica("full")
    ui_data.many_territories(replica, 14)

    async def run(pilot):
        await pilot.press("ctrl+n")
        await pilot.pause()
        pilot.app.screen.query_one("#field-territory").focus()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(replica=replica), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_ticket_status_picker(snap_compare, make_app, size):
    # The first ticket in "mine" is new: only open, pending and solved are offered.
    assert snap_compare(make_app(), terminal_size=size, run_before=in_section("2", "s"))


@pytest.mark.parametrize("size", SIZES)
def test_ticket_reply_form(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=in_section("2", "r"))


@pytest.mark.parametrize("size", SIZES)
def test_conflict_resolver(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=in_section("5", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_rejected_fix_form(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=in_section("6", "f"))


@pytest.mark.parametrize("size", SIZES)
def test_rejected_discard_confirm(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=in_section("6", "j", "x"))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=in_section("2", "question_mark"))


@pytest.mark.parametrize("size", SIZES)
def test_command_line(snap_compare, make_app, size):
    async def run(pilot):
        await in_section("2", "colon")(pilot)
        pilot.app.screen.query_one("#command-input").value = "customer anna"

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_palette_customer_search(snap_compare, make_app, size):
    async def run(pilot):
        await pilot.press("ctrl+p")
        await pilot.pause()
        pilot.app.screen.query_one("CommandInput").value = "anna"
        await settle(pilot)  # the palette's search worker has gathered every hit

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_conflict_resolver_delete(snap_compare, make_app, open_replica, size):
    replica = open_replica("full")
    ui_data.add_delete_conflict(replica)
    assert snap_compare(make_app(replica=replica), terminal_size=size, run_before=in_section("5", "j", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_quit_asks_first(snap_compare, make_app, size):
    async def run(pilot):
        await pilot.press("escape", "q")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_customer_command_offers_a_choice(snap_compare, make_app, size):
    async def run(pilot):
        await pilot.press("escape", "colon")
        await pilot.pause()
        pilot.app.screen.query_one("#command-input").value = "customer an"
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_form_discard_asks_first(snap_compare, make_app, size):
    async def run(pilot):
        await pilot.app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("n")
        await pilot.pause()
        pilot.app.screen.query_one("#field-subject").value = "Half a thought"
        await pilot.press("escape")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


# ----------------------------------------------------------------------------- orders, outcomes


def on_order(order_id: str, *keys: str):
    async def run(pilot) -> None:
        from screens.order_detail import OrderDetailScreen

        await pilot.app.push_screen(OrderDetailScreen(order_id))
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_form_refund_request(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_order("or_0001", "f"))


@pytest.mark.parametrize("size", SIZES)
def test_form_cancel_request_without_a_reason(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_order("or_0002", "x", "f2"))


@pytest.mark.parametrize("size", SIZES)
def test_form_refund_request_offline(snap_compare, make_app, runners, size):
    async def run(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await on_order("or_0001", "f")(pilot)

    assert snap_compare(make_app(sync_runner=runners.offline), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_form_log_visit_without_an_outcome(snap_compare, make_app, size):
    async def run(pilot) -> None:
        await on_customer("cu_001", "v")(pilot)
        pilot.app.screen.query_one("#field-subject").value = "Site survey"
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


def on_deal(stage: str, *keys: str):
    async def run(pilot) -> None:
        await pilot.press("escape", "3")
        await settle(pilot)  # the stage totals come from a worker
        pilot.app.screen.table(stage).focus()
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_form_mark_won(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_deal("proposal", "w"))


@pytest.mark.parametrize("size", SIZES)
def test_form_mark_lost_without_a_reason(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_deal("negotiation", "x", "f2"))


@pytest.mark.parametrize("size", SIZES)
def test_form_mark_lost_offline(snap_compare, make_app, runners, size):
    async def run(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await on_deal("negotiation", "x")(pilot)

    assert snap_compare(make_app(sync_runner=runners.offline), terminal_size=size, run_before=run)
