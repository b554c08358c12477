"""The reports screen: charts off the UI thread, filters by territory, owner and period, and
`:export FILE` writing the report in front with the filter that produced it."""

from __future__ import annotations

import csv

import pytest

from cache.reports import ReportFilter
from screens.pickers import ChoicePicker
from screens.reports import ReportsScreen
from support import ui_data
from support.pilot import command as typed_command
from support.pilot import settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


async def command(pilot, text: str) -> None:
    await typed_command(pilot, text)
    await settle(pilot)  # the report is computed off the UI thread


async def _reports(pilot) -> ReportsScreen:
    await pilot.press("escape", "7")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ReportsScreen)
    return pilot.app.screen


async def test_a_territory_filter_changes_the_figures_and_the_export_says_so(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _reports(pilot)
        everything = sum(a for _, _, a in screen.figures["revenue"])
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, ChoicePicker)
        await pilot.press("j", "enter")  # the first territory after "All territories": North
        await settle(pilot)
        assert screen.territory == "te_north"
        north = replica_sum = sum(a for _, _, a in screen.figures["revenue"])
        assert 0 < north < everything
        assert "North" in str(screen.query_one("#report-filter").render())
        assert replica_sum == sum(a for _, _, a in app.replica.reports.revenue_by_month(
            ReportFilter(ui_data.NOW.date().isoformat(), 12, territory="te_north")))

        target = tmp_path / "north.csv"
        await command(pilot, f"export {target}")
        lines = target.read_text().splitlines()
        assert lines[0] == "# crm-tui report: Revenue by month"
        assert lines[1].startswith("# filter: North · all owners · 12 months")
        rows = list(csv.reader(lines[3:]))
        assert rows[0] == ["month", "currency", "revenue"]
        assert round(sum(float(r[2]) for r in rows[1:]) * 100) == north
        assert (target.stat().st_mode & 0o777) == 0o600


async def test_switching_reports_and_exporting_the_funnel(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _reports(pilot)
        await pilot.press("l")
        await pilot.pause()
        assert screen.active_report == "funnel"
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("k", "enter")  # 6 months instead of 12
        await settle(pilot)
        assert screen.months == 6
        target = tmp_path / "funnel.csv"
        await command(pilot, f"export {target}")
        rows = list(csv.reader(target.read_text().splitlines()[3:]))
        assert rows[0][0] == "stage" and [r[0] for r in rows[1:]] == ["lead", "qualified", "proposal",
                                                                       "negotiation", "won", "lost"]


async def test_export_to_a_folder_that_does_not_exist_is_one_clear_line(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _reports(pilot)
        await command(pilot, f"export {tmp_path / 'nowhere' / 'x.csv'}")
        assert any("no such folder" in n for n in app.notified)


async def test_export_elsewhere_says_there_is_nothing_to_export(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await command(pilot, "export x.csv")
        assert any("Nothing to export" in n for n in app.notified)
