"""Reports: revenue by month, the pipeline funnel and ticket SLAs, as charts, for a territory, an
owner and a period; computed off the UI thread, cached until the replica changes, exportable."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import RenderResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import DataTable, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from cache.reports import PERIODS, ReportFilter, csv_rows
from crm_tui.core.domain import format_amount, format_datetime
from crm_tui.core.text import grouped, plural
from screens.base import CrmScreen
from screens.display import compact_money, count_axis, figure, money_axis, plain, stage_name
from screens.pickers import ChoicePicker
from screens.tables import CrmTable

TABS = {"revenue": "Revenue by month", "funnel": "Pipeline funnel", "sla": "Ticket SLA by week"}
ALL = "*"


class FittedChart(PlotextPlot):
    """A chart titled with the longest of its wordings that fits its width: plotext leaves out a
    title wider than the chart (at 80 columns the funnel had none), so a narrow chart says the
    same in fewer words."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.titles: list[str] = []
        self.shown_title = ""

    def set_titles(self, *titles: str) -> None:
        """The chart's title, longest wording first."""
        self.titles = list(titles)
        self.refresh()

    def render(self) -> RenderResult:
        # plotext centres the title on the plot area (right of the axis labels) and leaves it out
        # when it does not fit there: the first wording that is drawn is kept.
        self.shown_title = ""
        if not self.titles:
            return super().render()
        drawn: RenderResult = ""
        for title in self.titles:
            self.plt.title(title)
            drawn = super().render()
            if isinstance(drawn, Text) and title in drawn.plain:
                self.shown_title = title
                break
        return drawn


class ReportsScreen(CrmScreen):
    LABEL = "Reports"
    HELP = ("Figures over what your replica holds, for a territory (t), an owner (o) and a period (p); l/h switch "
            "reports; `:export FILE` writes the report in front to CSV, with the filter in its first lines. "
            "Revenue: orders by order date, cancelled and refunded left out, per month and currency (territory and "
            "owner are the customer's); currencies are never added up (the replica has no exchange rates), so the "
            "chart shows one currency, at first the one most orders were in, and c (or enter on the table) picks "
            "another; the table beneath has every currency's orders, total and monthly average (over the months "
            "elapsed since its first sale in the period, this one up to today; JPY, KRW, IDR, HUF ... in whole "
            "units). Funnel: deals created in the period; a deal has reached a stage if it is "
            "in it or past it (won is past every stage; a lost deal only entered the funnel); conversion is the "
            "share that reached the next stage (owner: the deal's). Tickets: by the week they were opened (a week "
            "that began before the period is counted from the period's first day; the export gives its days). The "
            "first response is the first email (reply) or call on the ticket that is not internal, after it was "
            "opened; the SLA is met if it came by the SLA due time, breached if later or never and the due time "
            "has passed (owner: the assignee). Computed in the background and kept until the replica changes.")
    DEFAULT_CSS = """
    ReportsScreen {
        & #report-tabs {
            height: 1fr;
            & TabPane {
                padding: 0;
            }
            & TabPane > Vertical, & TabPane > Horizontal {
                height: 1fr;
            }
        }
        & .report-chart {
            height: 1fr;
            min-height: 6;
        }
        & #report-funnel .report-chart {
            width: 1fr;
        }
        /* As wide as its columns (every stage's conversion readable at 80 columns); the chart takes the rest. */
        & #report-funnel .report-table {
            width: auto;
            height: 1fr;
        }
        & #report-sla .report-table {
            height: 1fr;
            max-height: 8;
        }
        & #report-revenue .report-table {
            height: auto;
            max-height: 40%;  /* every currency on a tall terminal; the chart keeps the rest */
        }
        & .report-note {
            height: auto;
            padding: 0 1;
        }
    }
    """
    AUTO_FOCUS: ClassVar[str | None] = "ContentTabs"  # a table in a hidden tab would switch to it
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l,right_square_bracket", "tab(1)", "Next report", show=False, id="reports.next_tab"),
        Binding("h,left_square_bracket", "tab(-1)", "Previous report", show=False, id="reports.prev_tab"),
        Binding("t", "pick_territory", "Territory", id="reports.territory"),
        Binding("o", "pick_owner", "Owner", id="reports.owner"),
        Binding("p", "pick_period", "Period", id="reports.period"),
        Binding("c", "pick_currency", "Currency", id="reports.currency"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.territory: str | None = None
        self.owner: str | None = None
        self.months = 12
        self.currency: str | None = None  # the one charted; None: the one with the most orders
        # What the revenue chart shows: its currency, the month's amounts (minor units), the y axis.
        self.revenue_currency: str | None = None
        self.revenue_series: list[int] = []
        self.revenue_axis: tuple[list[float], list[str]] = ([], [])
        self.figures: dict[str, Any] | None = None
        self.shown_filter: ReportFilter | None = None

    def compose_body(self):
        yield Static(id="report-filter", classes="toolbar")
        with TabbedContent(id="report-tabs"):
            with TabPane(TABS["revenue"], id="report-revenue"), Vertical():
                yield FittedChart(id="revenue-chart", classes="report-chart")
                yield CrmTable(id="revenue-table", classes="report-table")
            with TabPane(TABS["funnel"], id="report-funnel"), Horizontal():
                yield FittedChart(id="funnel-chart", classes="report-chart")
                yield CrmTable(id="funnel-table", classes="report-table")
            with TabPane(TABS["sla"], id="report-sla"), Vertical():
                yield FittedChart(id="sla-chart", classes="report-chart")
                yield CrmTable(id="sla-table", classes="report-table")
        yield Static(id="report-state", classes="report-note")

    def on_mount(self) -> None:
        self.query_one("#revenue-table", CrmTable).add_columns("currency", "orders", "total", "per month")
        self.query_one("#funnel-table", CrmTable).add_columns("stage", "now", "reached", "conv.")
        self.query_one("#sla-table", CrmTable).add_columns(
            "week of", "opened", "answered", "met", "breached", "SLA met", "1st reply (median)")
        super().on_mount()

    # ------------------------------------------------------------------ filter

    def report_filter(self) -> ReportFilter:
        return ReportFilter(self.now().date().isoformat(), self.months, self.territory, self.owner)

    def _describe(self, flt: ReportFilter) -> str:
        territories, users = self.replica.reads.territories(), self.replica.reads.users()
        return flt.describe((territories.get(flt.territory or "") or {}).get("name"),
                            (users.get(flt.owner or "") or {}).get("name"))

    def _pick(self, title: str, choices: list[tuple[str, str]], current: str, apply) -> None:
        def chosen(value: str | None) -> None:
            if value is not None:
                apply(value)
                self.refresh_data()

        self.app.push_screen(ChoicePicker(title, choices, current=current), chosen)

    def action_pick_territory(self) -> None:
        choices = [(ALL, "All territories"), *((tid, t.get("name") or tid)
                                                for tid, t in self.replica.reads.territories().items())]
        self._pick("Territory", choices, self.territory or ALL,
                   lambda v: setattr(self, "territory", None if v == ALL else v))

    def action_pick_owner(self) -> None:
        me = self.replica.reads.me() or {}
        choices = [(ALL, "All owners")]
        if me.get("id"):
            choices.append((me["id"], f"Me ({me.get('name') or me['id']})"))
        choices += [(uid, u.get("name") or uid) for uid, u in self.replica.reads.users().items() if uid != me.get("id")]
        self._pick("Owner", choices, self.owner or ALL, lambda v: setattr(self, "owner", None if v == ALL else v))

    def action_pick_period(self) -> None:
        self._pick("Period", [(str(n), f"last {n} months") for n in PERIODS], str(self.months),
                   lambda v: setattr(self, "months", int(v)))

    def action_pick_currency(self) -> None:
        currencies = (self.figures or {}).get("currencies") or []
        if not currencies:
            self.app.notify("No revenue in this period: there is no currency to pick.", severity="warning")
            return
        choices = [(c["currency"], f"{c['currency']}  {c['orders']} orders · {compact_money(c['amount'], c['currency'])}")
                   for c in currencies]

        def chosen(value: str | None) -> None:
            if value is not None:
                self._chart_currency(value)

        self.app.push_screen(ChoicePicker("Currency", choices, current=self.revenue_currency), chosen)

    @on(DataTable.RowSelected, "#revenue-table")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self._chart_currency(event.row_key.value)

    def _chart_currency(self, currency: str) -> None:
        self.currency = currency
        if self.figures is not None and self.shown_filter is not None:
            self._show_revenue(self.shown_filter, self.figures["revenue"], self.figures["currencies"])

    def action_tab(self, step: int) -> None:
        tabs = self.query_one("#report-tabs", TabbedContent)
        keys = [f"report-{k}" for k in TABS]
        tabs.active = keys[(keys.index(tabs.active) + step) % len(keys)] if tabs.active in keys else keys[0]

    @property
    def active_report(self) -> str:
        return self.query_one("#report-tabs", TabbedContent).active.removeprefix("report-") or "revenue"

    # ------------------------------------------------------------------ data

    def refresh_data(self) -> None:
        flt = self.report_filter()
        keys = "   t territory · o owner · p period · c currency · l/h report · :export FILE" if self.size.width >= 120 else ""
        self.query_one("#report-filter", Static).update(Content.assemble((self._describe(flt), "bold"),
                                                                         (keys, "$text-muted")))
        fresh = self.replica.reports.figures(flt, self.now(), cached_only=True)
        if fresh is not None:
            self._show(flt, fresh)
            return
        # Aggregating a big replica takes seconds: never on the UI thread.
        self._state("Computing the figures…", "$text-muted")
        self._compute(flt)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report", description="report")
    def _compute(self, flt: ReportFilter) -> None:
        # Its own connection to the replica, so the screens stay answerable meanwhile.
        with self.replica.reopen(cache_mb=8, temp_in_memory=False) as replica:
            figures = replica.reports.figures(flt, self.now())
        self.app.call_from_thread(self._show, flt, figures)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "report" and event.state == WorkerState.ERROR:
            self._state(f"The figures could not be computed: {event.worker.error}", "$text-error")
        elif event.worker.group == "export" and event.state == WorkerState.ERROR:
            self.app.notify(f"Export failed: {event.worker.error}", severity="error")

    def _state(self, text: str, style: str) -> None:
        state = self.query_one("#report-state", Static)
        state.update(Content.styled(text, style))
        state.display = bool(text)

    def _show(self, flt: ReportFilter, figures: dict[str, Any]) -> None:
        if not self.is_mounted or flt != self.report_filter():
            return  # a newer filter's figures are on their way
        self.figures, self.shown_filter = figures, flt
        complete = set(self.replica.get_meta("complete_entities") or [])
        if self.replica.reads.has_customers() and not {"order", "deal", "ticket", "activity"} <= complete:
            self._state("The first sync is still bringing records: the figures grow as it goes on.", "$text-warning")
        else:
            self._state("", "")
        self._show_revenue(flt, figures["revenue"], figures["currencies"])
        self._show_funnel(figures["funnel"])
        self._show_sla(figures["sla"])

    def _show_revenue(self, flt: ReportFilter, rows: list[tuple[str, str, int]],
                      currencies: list[dict[str, Any]]) -> None:
        # One currency at a time: amounts in different currencies cannot share an axis.
        chart = self.query_one("#revenue-chart", FittedChart)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        months = flt.months_covered
        names = [c["currency"] for c in currencies]
        currency = self.currency if self.currency in names else (names[0] if names else None)
        self.revenue_currency = currency
        if currency is not None:
            by_month = {m: a for m, c, a in rows if c == currency}
            self.revenue_series = [by_month.get(m, 0) for m in months]
            labels = [dt.date.fromisoformat(m + "-01").strftime("%b %y") for m in months]
            plt.bar(labels, [a / 100 for a in self.revenue_series], width=0.6)
            # Which month labels fit is decided here, not left to plotext (whose choice depends
            # on what it drew before): every month when there is room, else every 2nd or 3rd.
            # A chart on a tab that is not in front has no width yet: it will have the screen's.
            width = chart.size.width or self.size.width
            step = max(1, -(-len(labels) * 8 // max(1, width - 20)))
            ticks = list(range(1, len(labels) + 1))
            plt.xticks(ticks[::-1][::step][::-1], labels[::-1][::step][::-1])  # type: ignore[arg-type]  # ints are numbers
            self.revenue_axis = money_axis(max(self.revenue_series) / 100, currency)
            plt.yticks(*self.revenue_axis)
            if len(names) > 1:
                chart.set_titles(f"Revenue by month in {currency} · 1 of {len(names)} currencies, c for another",
                                 f"Revenue by month in {currency} · 1 of {len(names)}, c for another",
                                 f"Revenue in {currency} · c for another", f"Revenue in {currency}")
            else:
                chart.set_titles(f"Revenue by month in {currency}", f"Revenue in {currency}")
        else:
            self.revenue_series, self.revenue_axis = [], ([], [])
            chart.set_titles("No orders in this period", "No orders")
        chart.refresh()
        table = self.query_one("#revenue-table", CrmTable)
        table.clear()
        for c in currencies:
            # Per month of the period that has happened since the currency's first sale in it.
            first = next((m for m, cur, a in rows if cur == c["currency"] and a), None)
            per_month = round(c["amount"] / flt.months_elapsed(since=first))
            table.add_row(plain(c["currency"]), figure(c["orders"]), plain(format_amount(c["amount"], c["currency"])),
                          plain(compact_money(per_month, c["currency"])), key=c["currency"])
        table.display = bool(currencies)  # the chart's title says there were no orders
        if currency is not None:
            table.move_cursor(row=names.index(currency))

    def _show_funnel(self, funnel: dict[str, Any]) -> None:
        stages = funnel["stages"]
        chart = self.query_one("#funnel-chart", FittedChart)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        if funnel["total"]:
            names = [stage_name(s["stage"]) for s in stages][::-1]
            reached = [s["reached"] for s in stages][::-1]
            plt.bar(names, reached, orientation="horizontal")
            plt.yticks(list(range(1, len(names) + 1)), names)  # every stage named, whatever plotext drew before
            plt.xticks(*count_axis(max(reached)))  # type: ignore[arg-type]  # whole deals, grouped: not 1421.8
            created, lost = grouped(funnel["total"]), grouped(funnel["lost"])
            chart.set_titles(f"Deals that reached each stage ({created} created, {lost} lost)",
                             f"Reached each stage: {created} created, {lost} lost",
                             f"Funnel: {created} created, {lost} lost", f"{created} created, {lost} lost")
        else:
            chart.set_titles("No deals created in this period", "No deals created", "No deals")
        chart.refresh()
        table = self.query_one("#funnel-table", CrmTable)
        table.clear()
        for s in stages:
            conv = "" if s["conversion"] is None else f"{s['conversion'] * 100:.0f} %"
            table.add_row(plain(stage_name(s["stage"])), figure(s["count"]), figure(s["reached"]), plain(conv), key=s["stage"])
        table.add_row(plain(stage_name("lost")), figure(funnel["lost"]), plain(""), plain(""), key="lost")

    def _show_sla(self, weeks: list[dict[str, Any]]) -> None:
        chart = self.query_one("#sla-chart", FittedChart)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        decided = [w for w in weeks if w["compliance"] is not None]
        if decided:
            # Numbers on the x axis, the weeks as tick labels (plotext reads "11-18" as a date).
            xs = list(range(len(decided)))
            # No legend: on a small chart the line ran through it; the title names the one line.
            plt.plot(xs, [round(w["compliance"] * 100, 1) for w in decided], marker="braille")
            step = max(1, len(xs) // 6)
            plt.xticks(xs[::step], [w["week"][5:] for w in decided][::step])  # type: ignore[arg-type]  # ints are numbers
            plt.ylim(0, 100)
            plt.yticks([0, 25, 50, 75, 100], ["0 %", "25 %", "50 %", "75 %", "100 %"])  # not 83.3, 66.7 ...
            chart.set_titles("Share of tickets that met their SLA, by week opened", "Tickets that met their SLA, by week",
                             "SLA met, by week")
        else:
            chart.set_titles("No tickets with a decided SLA in this period", "No decided SLAs in this period",
                             "No decided SLAs")
        chart.refresh()
        table = self.query_one("#sla-table", CrmTable)
        table.clear()
        for w in reversed(weeks):
            compliance = "" if w["compliance"] is None else f"{w['compliance'] * 100:.0f} %"
            median = "" if w["median_hours"] is None else _hours(w["median_hours"])
            table.add_row(plain(w["week"]), figure(w["opened"]), figure(w["responded"]), figure(w["met"]),
                          figure(w["breached"]), plain(compliance), plain(median), key=w["week"])

    # ------------------------------------------------------------------ export

    def export_csv(self, target: str) -> bool:
        """`:export FILE`: the report in front, with the filter that produced it, to CSV."""
        if self.figures is None or self.shown_filter is None:
            self.app.notify("The figures are still being computed; export when they are shown.", severity="warning")
            return False
        path = Path(target).expanduser()
        if path.is_dir() or not path.parent.is_dir():
            self.app.notify(f"Cannot write {path}: no such folder, or it is a folder.", severity="error")
            return False
        report = self.active_report
        header = [f"# crm-tui report: {TABS[report]}", f"# filter: {self._describe(self.shown_filter)}",
                  f"# computed from the local replica at {format_datetime(self.now())}"]
        self._export(path, header, report, self.figures[report])
        return True

    @work(thread=True, exit_on_error=False, group="export", description="export")
    def _export(self, path: Path, header: list[str], report: str, figures: Any) -> None:
        # Through the replica's export hook: the rows are sealed while they are written, and the
        # file appears at the target (0600) whole, or not at all.
        rows = 0
        with self.replica.export_file(path, overwrite=True) as fh:
            fh.writelines(line + "\n" for line in header)
            writer = csv.writer(fh)
            for row in csv_rows(report, figures):
                writer.writerow(row)
                rows += 1
        self.app.call_from_thread(self.app.notify, f"Exported {TABS[report].lower()} ({plural(rows - 1, 'row')}) to {path}")


def _hours(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"
