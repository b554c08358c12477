"""Reports: the team's figures at a glance, from the replica (cached until it changes)."""

from __future__ import annotations

from textual import work
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from cache.replica import Replica
from crm_tui.domain import TICKET_PRIORITIES, TICKET_STATUSES
from screens.base import CrmScreen
from screens.display import money, plain
from screens.tables import CrmTable

BAR = 24
MONTHS_SHOWN = 12


def bars(title: str, counts: dict[str, int], order: tuple[str, ...]) -> Content:
    top = max(counts.values(), default=0) or 1
    parts: list[str | tuple[str, str]] = [(title, "bold"), "\n"]
    for key in order:
        n = counts.get(key, 0)
        width = round(BAR * n / top)
        parts += [f"{key:<8} ", ("█" * width, "$accent"), (" " * (BAR - width)), f" {n}\n"]
    return Content.assemble(*parts)


class ReportsScreen(CrmScreen):
    LABEL = "Reports"
    HELP = ("Figures over what your replica holds: tickets by status, active tickets by priority, the deal "
            "win rate and revenue by month (cancelled and refunded orders left out).")

    def compose_body(self):
        with Horizontal(id="reports-body"):
            with Vertical(id="reports-left"):
                yield Static(id="report-status", classes="report-block")
                yield Static(id="report-priority", classes="report-block")
                yield Static(id="report-win", classes="report-block")
            with Vertical(id="reports-right"):
                yield Static(Content.styled("Revenue by month", "bold"), classes="report-title")
                yield CrmTable(id="report-revenue")

    def on_mount(self) -> None:
        self.query_one("#report-revenue", CrmTable).add_columns("month", "revenue")
        super().on_mount()
        self.query_one("#report-revenue", CrmTable).focus()

    def refresh_data(self) -> None:
        fresh = self.replica.reads.report_summary(cached_only=True)
        if fresh is not None:
            self._show(fresh, self.replica.reads.pipeline())
            return
        # Aggregating millions of orders takes seconds: never on the UI thread.
        self.query_one("#report-status", Static).update(Content.styled("Computing the figures…", "$text-muted"))
        self._compute()

    @work(thread=True, exclusive=True, exit_on_error=False, group="report", description="report")
    def _compute(self) -> None:
        # Its own connection to the replica, so the screens stay answerable meanwhile.
        with Replica(self.replica.path, self.replica.hot.directory, cache_mb=8, temp_in_memory=False) as replica:
            report, stages = replica.reads.report_summary(), replica.reads.pipeline()
        self.app.call_from_thread(self._show, report, stages)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "report" and event.state == WorkerState.ERROR:
            self.query_one("#report-status", Static).update(
                Content.styled(f"The figures could not be computed: {event.worker.error}", "$text-error"))

    def _show(self, report: dict, pipeline: list) -> None:
        if not self.is_mounted:
            return
        self.query_one("#report-status", Static).update(
            bars("Tickets by status", report.get("tickets_by_status") or {}, TICKET_STATUSES))
        self.query_one("#report-priority", Static).update(
            bars("Active tickets by priority", report.get("active_by_priority") or {},
                 tuple(reversed(TICKET_PRIORITIES))))
        stages = {s.stage: s.count for s in pipeline}
        rate = report.get("win_rate")
        win = (f"{rate * 100:.0f} %  ({stages.get('won', 0)} won, {stages.get('lost', 0)} lost)"
               if rate is not None else "no closed deals yet")
        self.query_one("#report-win", Static).update(
            Content.assemble(("Deal win rate", "bold"), "\n", (win, "$text-success" if rate else "")))
        table = self.query_one("#report-revenue", CrmTable)
        table.clear()
        rows = report.get("revenue_by_month") or []
        months: dict[str, list[str]] = {}
        for month, currency, amount in rows:
            months.setdefault(month, []).append(money(amount, currency))
        for month in list(months)[:MONTHS_SHOWN]:
            table.add_row(plain(month), plain(" + ".join(months[month])), key=month)
        if not months:
            table.add_row(plain("-"), plain("no orders yet"))
