"""Snapshots of the Today section and the task form at 80x24 and 160x45: with data, empty,
bootstrapping and offline (the clock frozen at ui_data.NOW).

Update with ``pytest tests/ui --snapshot-update`` and look at each SVG before committing it.
"""

from __future__ import annotations

import pytest

from screens.customer import Customer360Screen
from screens.task_forms import task_form
from support.pilot import settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 45), id="160x45")]


async def today(pilot) -> None:
    await pilot.app.workers.wait_for_complete()  # an offline app's first sync attempt has ended
    await pilot.pause()
    await pilot.press("escape", "8")
    await settle(pilot)  # the bar's counts come from a worker


def follow_up_form(*keys: str):
    async def run(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.app.push_screen(Customer360Screen("cu_001"))
        await pilot.pause()
        await pilot.press("f", *keys)
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_today(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=today)


@pytest.mark.parametrize("size", SIZES)
def test_today_done_tasks(snap_compare, make_app, size):
    async def run(pilot):
        await today(pilot)
        await pilot.press("D")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_today_empty(snap_compare, make_app, size):
    assert snap_compare(make_app("empty"), terminal_size=size, run_before=today)


@pytest.mark.parametrize("size", SIZES)
def test_today_while_bootstrapping(snap_compare, make_app, size):
    assert snap_compare(make_app("bootstrapping"), terminal_size=size, run_before=today)


@pytest.mark.parametrize("size", SIZES)
def test_today_offline(snap_compare, make_app, runners, size):
    assert snap_compare(make_app(sync_runner=runners.offline), terminal_size=size, run_before=today)


@pytest.mark.parametrize("size", SIZES)
def test_task_form(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=follow_up_form())


@pytest.mark.parametrize("size", SIZES)
def test_task_form_bad_due_time(snap_compare, make_app, size):
    async def run(pilot):
        await follow_up_form()(pilot)
        pilot.app.screen.query_one("#field-due_at").value = "next blursday"
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_task_form_empty(snap_compare, make_app, size):
    # An empty replica has no customer to press f on, and no users to own a task: the form as
    # it opens then (owner "(none)").
    async def run(pilot):
        await pilot.app.push_screen(task_form(pilot.app, "cu_001", title="Follow up"))
        await pilot.pause()

    assert snap_compare(make_app("empty"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_task_form_while_bootstrapping(snap_compare, make_app, size):
    assert snap_compare(make_app("bootstrapping"), terminal_size=size, run_before=follow_up_form())


@pytest.mark.parametrize("size", SIZES)
def test_task_form_offline(snap_compare, make_app, runners, size):
    assert snap_compare(make_app(sync_runner=runners.offline), terminal_size=size, run_before=follow_up_form())
