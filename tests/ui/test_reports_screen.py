"""The reports screen: charts off the UI thread, filters by territory, owner and period, and
`:export FILE` writing the report in front with the filter that produced it."""

from __future__ import annotations

import csv
import datetime as dt
import re

import pytest

from cache.reports import ReportFilter, csv_rows
from crm_tui.core.domain import format_money
from screens.display import compact_money, count_axis, money, money_axis, stage_name
from screens.pickers import ChoicePicker
from screens.reports import ReportsScreen
from support import ui_data
from support.pilot import command as typed_command
from support.pilot import screen_lines, settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)
TODAY = ui_data.NOW.date().isoformat()


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
        # On screen the stages are named as the pipeline's columns name them (the file keeps ids).
        table = screen.query_one("#funnel-table")
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert names == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


@pytest.mark.parametrize("top, labels", [
    (5_687, ["0", "2,000", "4,000"]),  # a new user saw 0.0 1421.8 2843.5 4265.2 5687.0 deals
    (7, ["0", "2", "4", "6"]),
    (3, ["0", "1", "2", "3"]),
    (0, ["0"]),
])
def test_the_funnel_axis_counts_whole_deals_grouped(top, labels):
    ticks, texts = count_axis(top)
    assert texts == labels and all(isinstance(t, int) for t in ticks) and ticks[-1] <= max(top, 0)


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


def _revenue_expected(currency: str) -> tuple[list[int], int]:
    """Per month of the last 12 (oldest first) and in all, the revenue in ``currency``, summed here
    from the seeded orders."""
    today = ui_data.NOW.date().isoformat()
    months = ReportFilter(today, 12).months_covered
    per_month = dict.fromkeys(months, 0)
    for o in ui_data.orders():
        if o["currency"] == currency and o["status"] not in ("cancelled", "refunded") and o["order_date"][:7] in per_month:
            per_month[o["order_date"][:7]] += o["amount"]
    return list(per_month.values()), sum(per_month.values())


def _orders_in(currency: str) -> int:
    months = set(ReportFilter(ui_data.NOW.date().isoformat(), 12).months_covered)
    return sum(o["currency"] == currency and o["status"] not in ("cancelled", "refunded")
               and o["order_date"][:7] in months for o in ui_data.orders())


async def test_revenue_charts_one_currency_and_lists_every_currency_beneath(make_app):
    """A new user saw 27 currencies drawn as 27 series in one chart. The chart shows one currency
    (the one most orders were in; `c` picks another) on a money axis, and the table beneath has
    every currency with its orders and total."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _reports(pilot)
        assert screen.revenue_currency == "EUR"  # 3 orders in 4 are in EUR
        eur_months, eur_total = _revenue_expected("EUR")
        assert screen.revenue_series == eur_months
        table = screen.query_one("#revenue-table")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[0] for r in rows] == ["EUR", "USD"]
        assert rows[0][1:3] == [str(_orders_in("EUR")), format_money(eur_total)]
        assert rows[1][1:3] == [str(_orders_in("USD")), format_money(_revenue_expected("USD")[1])]
        assert all(label.endswith(" EUR") for label in screen.revenue_axis[1][1:])

        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ChoicePicker)
        await pilot.press("j", "enter")  # USD, the second currency
        await settle(pilot)
        assert screen.revenue_currency == "USD"
        assert screen.revenue_series == _revenue_expected("USD")[0]
        assert all(label.endswith(" USD") for label in screen.revenue_axis[1][1:])


@pytest.mark.parametrize(("top", "currency", "labels"), [
    (1_234_567.891, "EUR", ["0", "500k EUR", "1M EUR"]),
    (350_000, "USD", ["0", "100k USD", "200k USD", "300k USD"]),
    (2_600_000, "JPY", ["0", "1M JPY", "2M JPY"]),
    (1_800, "GBP", ["0", "500 GBP", "1k GBP", "1.5k GBP"]),
    (0, "EUR", ["0"]),
])
def test_money_axis_reads_as_money(top, currency, labels):
    ticks, texts = money_axis(top, currency)
    assert texts == labels and ticks[0] == 0 and ticks[-1] <= max(top, 0) and len(ticks) == len(texts)


def test_zero_decimal_currencies_are_shown_in_whole_units():
    """A new user saw JPY totals with cents (2,632,203.80): the yen, won, rupiah and forint have
    none in use. Amounts keep their hundredths; they are shown (and exported) in whole units."""
    assert money(263_220_380, "JPY") == "2,632,204 JPY"
    assert money(940_000_000, "KRW") == "9,400,000 KRW"
    assert money(-23_049, "HUF") == "-230 HUF"
    assert money(123_450, "EUR") == "1,234.50 EUR"
    assert list(csv_rows("revenue", [("2026-11", "JPY", 263_220_380), ("2026-11", "EUR", 123_450)]))[1:] == [
        ["2026-11", "JPY", "2632204"], ["2026-11", "EUR", "1234.50"]]


async def test_the_revenue_table_shows_yen_without_cents(make_app, replica):
    replica.writes.create("order", {"customer_id": "cu_001", "order_date": TODAY,
                                    "amount": 263_220_380, "currency": "JPY", "status": "delivered"})
    app = make_app(replica=replica)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _reports(pilot)
        table = screen.query_one("#revenue-table")
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows["JPY"][1:3] == ["1", "2,632,204"]
        assert rows["EUR"][2] == format_money(_revenue_expected("EUR")[1])  # cents where there are cents


async def test_per_month_divides_by_the_months_that_have_happened(make_app):
    """"per month" was the 12-month total divided by 12 while the period's last month had run 25
    days of 30: it divides by the months elapsed since the currency's first sale in the period."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await _reports(pilot)
        table = screen.query_one("#revenue-table")
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        for currency in ("EUR", "USD"):
            per_month, total = _revenue_expected(currency)
            first = next(i for i, amount in enumerate(per_month) if amount)
            elapsed = (11 - first) + 25 / 30  # whole months from the first sale, and 25 days of November
            assert rows[currency][3] == compact_money(round(total / elapsed), currency), currency


MONTH_LABELS = [dt.date(2025 + (m > 0), (11 + m) % 12 + 1, 1).strftime("%b %y") for m in range(12)]  # Dec 25 ..


async def test_the_revenue_axis_names_several_months_at_80_columns(make_app):
    """A new user at 80x24 saw one month on the revenue chart's axis ("Dec 26"): figures that came
    while another report was in front were drawn on a chart without a width. Every 2nd or 3rd
    month is named, whenever the figures came."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _reports(pilot)
        for keys in ((), ("l", "t", "j", "enter"), ("l", "t", "k", "enter")):  # filtered on another tab
            await pilot.press(*keys)
            await settle(pilot)
            await pilot.press(*(("h",) if keys else ()))
            await pilot.pause()
            assert screen.active_report == "revenue"
            axis = screen.query_one("#revenue-chart").render().plain.splitlines()[-1]
            named = [m for m in MONTH_LABELS if m in axis]
            assert len(named) >= 4 and named[-1] == "Nov 26", (keys, axis)


async def test_the_sla_chart_has_no_legend_for_its_line_to_cross(make_app):
    """At 80x24 the SLA line ran through its legend box. The chart has one line, which its title
    names; nothing is drawn inside the plot but the line."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _reports(pilot)
        await pilot.press("l", "l")
        await pilot.pause()
        lines = screen.query_one("#sla-chart").render().plain.splitlines()
        assert "met their SLA" in lines[0]
        top = next(i for i, line in enumerate(lines) if "┌" in line)
        bottom = next(i for i, line in enumerate(lines) if "└" in line)
        left = lines[top].index("┌")
        canvas = [line[left + 1:line.rindex("│")] for line in lines[top + 1:bottom]]
        assert not any(ch.isalpha() for line in canvas for ch in line), canvas


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_the_funnel_title_and_every_column_are_readable(make_app, size):
    """At 80x24 a new user saw a funnel without its title and the conversion column cut ("conv").
    The chart is titled (in fewer words where it is narrow) and every stage's row shows its deals
    now, reached and the conversion to the next stage, headed in full."""
    app = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await _reports(pilot)
        await pilot.press("l")
        await settle(pilot)
        lines = screen_lines(app)
        funnel = screen.figures["funnel"]
        assert any(f"{funnel['total']} created, {funnel['lost']} lost" in line for line in lines), lines
        header = next(line for line in lines if re.search(r"stage\s+now\s+reached", line))
        assert re.search(r"reached\s+conv\. ", header + " "), header
        for s in funnel["stages"]:
            conv = "" if s["conversion"] is None else f"{s['conversion'] * 100:.0f} %"
            row = rf"{stage_name(s['stage'])}\s+{s['count']}\s+{s['reached']}\s+{re.escape(conv)}(\s|$)"
            assert any(re.search(row, line + " ") for line in lines), (row, lines)
        assert any(re.search(rf"Lost\s+{funnel['lost']}(\s|$)", line) for line in lines)


@pytest.mark.parametrize(("kind", "tab", "words"), [
    ("full", 0, "Revenue"), ("full", 1, "created"), ("full", 2, "SLA"),
    ("empty", 0, "No orders"), ("empty", 1, "No deals"), ("empty", 2, "No "),
])
async def test_every_report_is_titled_at_70_and_80_columns(make_app, kind, tab, words):
    """Each chart's title is drawn on a narrow terminal (plotext leaves out a title wider than
    the chart: it says the same in fewer words)."""
    for width in (70, 80):
        app = make_app(kind)
        async with app.run_test(size=(width, 24)) as pilot:
            screen = await _reports(pilot)
            await pilot.press(*["l"] * tab)
            await settle(pilot)
            chart = screen.query_one(f"#{screen.active_report}-chart")
            first = chart.render().plain.splitlines()[0].strip()
            assert words in first, (width, first)


def test_the_funnel_export_names_each_stage_beside_its_id():
    """The funnel's file said `negotiation` where the screen says Negotiation: both are in it."""
    figures = {"stages": [{"stage": "lead", "count": 4, "reached": 24, "conversion": 0.6667},
                          {"stage": "negotiation", "count": 5, "reached": 8, "conversion": 0.375}], "lost": 4}
    rows = list(csv_rows("funnel", figures))
    assert rows[0][:2] == ["stage", "stage name"]
    assert [r[:2] for r in rows[1:]] == [["lead", "Lead"], ["negotiation", "Negotiation"], ["lost", "Lost"]]
