"""Snapshots of every screen at 80x24 and 160x48: full, empty, bootstrapping, offline and failed-sync states.

Update with ``pytest tests/ui --snapshot-update`` and look at each SVG before committing it.
"""

from __future__ import annotations

import pytest

from crm_tui.core.syncstate import SyncEvent
from screens.customer import Customer360Screen
from screens.messages import SyncProgress
from screens.order_detail import OrderDetailScreen
from screens.ticket_detail import TicketDetailScreen
from support.pilot import lasting_toasts, settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture
def make_app(make_app):
    """Apps whose toasts stay up until the snapshot is taken (tests/ui/conftest.py)."""
    return lasting_toasts(make_app)


async def type_text(pilot, text: str) -> None:
    """Type into the search box (as one edit: typing is not what these snapshots are about)."""
    pilot.app.screen.query_one("#search-input").value = text
    await settle(pilot)


def section(key: str):
    async def run(pilot) -> None:
        await pilot.press("escape", key)
        await settle(pilot)  # what a screen counts apart (a queue's overdue tickets) has come

    return run


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize("size", SIZES)
def test_search_home(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_search_results(snap_compare, make_app, size):
    async def run(pilot):
        await type_text(pilot, "an")
        await pilot.press("enter")

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_search_no_match(snap_compare, make_app, size):
    async def run(pilot):
        await type_text(pilot, "zebra crossing")

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_search_empty_replica(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_search_while_bootstrapping(snap_compare, make_app, size):
    async def run(pilot):
        await type_text(pilot, "a")

    assert snap_compare(make_app("bootstrapping"), terminal_size=size, run_before=run)


# ----------------------------------------------------------------------------- customer 360


def customer(customer_id: str, *keys: str):
    async def run(pilot) -> None:
        await pilot.app.push_screen(Customer360Screen(customer_id))
        await settle(pilot)  # the tabs are mounted before a key moves between them
        if keys:
            await pilot.press(*keys)
            await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_customer_360_contacts(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=customer("cu_001"))


@pytest.mark.parametrize("size", SIZES)
def test_customer_360_orders(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=customer("cu_001", "l"))


@pytest.mark.parametrize("size", SIZES)
def test_customer_360_tickets(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=customer("cu_001", "l", "l"))


@pytest.mark.parametrize("size", SIZES)
def test_customer_360_deals(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=customer("cu_001", "l", "l", "l"))


@pytest.mark.parametrize("size", SIZES)
def test_customer_360_tasks(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=customer("cu_001", "h", "h"))


@pytest.mark.parametrize("size", SIZES)
def test_customer_360_activity(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=customer("cu_001", "h"))


@pytest.mark.parametrize("size", SIZES)
def test_customer_360_conflict_marker(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=customer("cu_002"))


# ----------------------------------------------------------------------------- order detail


def order(order_id: str):
    async def run(pilot) -> None:
        await pilot.app.push_screen(OrderDetailScreen(order_id))
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_order_detail(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=order("or_0001"))


@pytest.mark.parametrize("size", SIZES)
def test_order_detail_without_history(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=order("or_0002"))


@pytest.mark.parametrize("size", SIZES)
def test_order_detail_offline(snap_compare, make_app, runners, size):
    async def run(pilot) -> None:
        await after_sync()(pilot)
        await order("or_0001")(pilot)

    assert snap_compare(make_app(sync_runner=runners.offline), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_order_detail_of_an_order_no_longer_in_the_replica(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=order("or_0001"))


# ----------------------------------------------------------------------------- tickets


@pytest.mark.parametrize("size", SIZES)
def test_ticket_queue_mine(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=section("2"))


@pytest.mark.parametrize("size", SIZES)
def test_ticket_queue_all(snap_compare, make_app, size):
    async def run(pilot):
        await section("2")(pilot)
        await pilot.press("v", "v")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_ticket_queue_unassigned(snap_compare, make_app, size):
    async def run(pilot):
        await section("2")(pilot)
        await pilot.press("v", "v", "v")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_ticket_queue_empty(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=section("2"))


@pytest.mark.parametrize("size", SIZES)
def test_ticket_detail(snap_compare, make_app, size):
    async def run(pilot):
        await pilot.app.push_screen(TicketDetailScreen("ti_003"))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


# ----------------------------------------------------------------------------- pipeline, reports


@pytest.mark.parametrize("size", SIZES)
def test_pipeline(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=section("3"))


@pytest.mark.parametrize("size", SIZES)
def test_pipeline_empty(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=section("3"))


async def reports_computed(pilot) -> None:
    await pilot.press("escape", "7")
    await pilot.app.workers.wait_for_complete()  # the figures are computed off the UI thread
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_reports(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=reports_computed)


@pytest.mark.parametrize("size", SIZES)
def test_reports_empty(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=reports_computed)


def report_tab(steps: int):
    async def run(pilot) -> None:
        await reports_computed(pilot)
        for _ in range(steps):
            await pilot.press("l")
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_reports_funnel(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=report_tab(1))


@pytest.mark.parametrize("size", SIZES)
def test_reports_sla(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=report_tab(2))


@pytest.mark.parametrize("size", SIZES)
def test_reports_while_bootstrapping(snap_compare, make_app, size):
    assert snap_compare(make_app("bootstrapping"), terminal_size=size, run_before=report_tab(1))


@pytest.mark.parametrize("size", SIZES)
def test_reports_offline(snap_compare, make_app, runners, size):
    app = make_app(sync_runner=runners.offline)
    assert snap_compare(app, terminal_size=size, run_before=report_tab(2))


# ----------------------------------------------------------------------------- sync, conflicts, rejected


@pytest.mark.parametrize("size", SIZES)
def test_sync_offline_no_server(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=section("4"))


@pytest.mark.parametrize("size", SIZES)
def test_sync_pending_tab(snap_compare, make_app, size):
    async def run(pilot):
        await section("4")(pilot)
        pilot.app.screen.query_one("#sync-tabs").active = "sync-pending-tab"
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_sync_quarantine_tab(snap_compare, make_app, size):
    async def run(pilot):
        await section("4")(pilot)
        pilot.app.screen.query_one("#sync-tabs").active = "sync-quarantine-tab"
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


def after_sync(key: str | None = None):
    async def run(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if key:
            await section(key)(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_sync_failed(snap_compare, make_app, runners, size):
    app = make_app(sync_runner=runners.failing)
    assert snap_compare(app, terminal_size=size, run_before=after_sync("4"))


@pytest.mark.parametrize("size", SIZES)
def test_sync_server_unreachable(snap_compare, make_app, runners, size):
    app = make_app(sync_runner=runners.offline)
    assert snap_compare(app, terminal_size=size, run_before=after_sync())


@pytest.mark.parametrize("size", SIZES)
def test_sync_by_daemon(snap_compare, make_app, runners, size):
    app = make_app(sync_runner=runners.daemon)
    assert snap_compare(app, terminal_size=size, run_before=after_sync("4"))


@pytest.mark.parametrize("size", SIZES)
def test_sync_empty(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=section("4"))


@pytest.mark.parametrize("size", SIZES)
def test_conflicts(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=section("5"))


@pytest.mark.parametrize("size", SIZES)
def test_conflicts_empty(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=section("5"))


@pytest.mark.parametrize("size", SIZES)
def test_rejected(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=section("6"))


@pytest.mark.parametrize("size", SIZES)
def test_rejected_empty(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=section("6"))


@pytest.mark.parametrize("size", SIZES)
def test_syncing_with_bootstrap_progress(snap_compare, make_app, runners, size):
    # The worker's messages, as the app receives them mid-sync.
    async def run(pilot):
        await section("4")(pilot)
        pilot.app.sync_state = "syncing"
        pilot.app.post_message(SyncProgress(SyncEvent("snapshot", "snapshot: customer 1,200/30,000", 1200, 30000)))
        await pilot.pause()

    app = make_app("bootstrapping", sync_runner=runners.ok, sync_in_app=False)
    assert snap_compare(app, terminal_size=size, run_before=run)
