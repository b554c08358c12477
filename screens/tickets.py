"""The ticket queue: mine, my team's, all or unassigned, soonest SLA first, overdue marked; triage
with one key."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import DataTable, Static

from crm_tui.core.domain import TICKET_PRIORITIES, TICKET_STATUSES, value_label
from crm_tui.core.text import counted, grouped, plural
from screens.base import CrmScreen
from screens.counting import CountApart
from screens.display import ACTIVE_TICKET_STATUSES, SLA_WIDTH, TEAM_WIDTH, first_name, plain, sla_text
from screens.exporting import ExportPlan, table_plan
from screens.navigation import open_ticket
from screens.pickers import ChoicePicker
from screens.tables import Column, ListPanel, ListSource, RowContext, WindowTable
from screens.ticket_actions import TRIAGE_BINDINGS, TicketTriage

VIEWS = ("mine", "team", "all", "unassigned")
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "active": ACTIVE_TICKET_STATUSES, **{s: (s,) for s in TICKET_STATUSES}, "any": TICKET_STATUSES,
}


class TicketQueueScreen(TicketTriage, CrmScreen):
    LABEL = "Ticket queue"
    HELP = ("Tickets by SLA due, soonest first; overdue ones in red. v switches between yours, your team's, "
            "all and the unassigned ones; F filters by status, P by priority. Triage with one key: a assigns to you, s moves the "
            "status (only the moves the workflow allows), p sets the priority, r replies, i adds an internal "
            "note, f makes a follow-up task about it. enter opens the ticket.")
    BINDINGS: ClassVar[list[BindingType]] = [
        *TRIAGE_BINDINGS,
        Binding("v", "cycle_view", "View", id="queue.view"),
        Binding("F", "filter_status", "Status filter", show=False, id="queue.filter_status"),
        Binding("P", "filter_priority", "Priority filter", show=False, id="queue.filter_priority"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.queue_view = "mine"
        self.status_filter = "active"
        self.priority_filter = "any"
        self._names: dict[str, str] = {}
        self._customers: dict[str, str] = {}
        # How many tickets of the view are overdue: counted apart (it grows with the queue),
        # None until the count for the view shown has come.
        self._overdue: int | None = 0
        self._overdue_of: tuple[str, str, str] | None = None  # the (view, status, priority) it is of
        self.overdue_counts = CountApart[int](self, "queue-overdue")
        self._counted_total: tuple[tuple[str, str, str], int] | None = None  # the last whole count, of which view

    def compose_body(self):
        yield Static(id="queue-bar", classes="toolbar")
        yield ListPanel(self._source(), empty="No tickets in this view. v switches views, F and P filter.",
                        table_id="queue-table", id="queue-panel")

    @property
    def me(self) -> dict[str, Any]:
        return self.replica.reads.me() or {}

    @property
    def panel(self) -> ListPanel:
        return self.query_one("#queue-panel", ListPanel)

    # ------------------------------------------------------------------ source

    def _query_args(self) -> dict[str, Any]:
        me = self.me
        return {"user_id": me.get("id"), "team": me.get("team"), "statuses": STATUS_FILTERS[self.status_filter],
                "priorities": () if self.priority_filter == "any" else (self.priority_filter,)}

    def _source(self) -> ListSource:
        def columns(wide: bool) -> list[Column]:
            # The number identifies the ticket; when the row does not fit, team goes first, then
            # the customer, then the assignee (the header names what went).
            return [Column("mark", "", 1), Column("number", "#", 5, ident=True), Column("priority", "priority", 8),
                    Column("status", "status", 7), Column("sla", "SLA", SLA_WIDTH), Column("subject", "subject"),
                    Column("customer", "customer", 22, give_way=2),
                    Column("assignee", "assignee", 18 if wide else 10, give_way=1),
                    Column("team", "team", TEAM_WIDTH, give_way=3)]

        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            due, overdue = sla_text(row, ctx.now)
            priority_tone = {"urgent": "text-error", "high": "text-warning"}.get(row.get("priority") or "")
            assignee = row.get("assignee_name") or self._user(row.get("assignee_id"))
            customer = row.get("customer_name") or self._customer(row.get("customer_id"))
            return [ctx.mark(), plain(row.get("number")),
                    Text(row.get("priority") or "", style=ctx.tone(priority_tone) if priority_tone else "",
                         no_wrap=True),
                    plain(value_label(row.get("status"))),
                    Text(due, style=ctx.tone("text-error") if overdue else "", no_wrap=True),
                    plain(row.get("subject")), plain(customer),
                    plain((assignee if ctx.wide else first_name(assignee)) or "unassigned"),
                    plain(row.get("team"))]

        return ListSource(columns=columns, cells=cells, entity="ticket",
                          window=lambda: self.replica.lists.ticket_queue(self.queue_view, **self._query_args()))

    def _user(self, uid: str | None) -> str:
        if not uid:
            return ""
        if uid not in self._names:
            self._names[uid] = self.replica.reads.user_name(uid)
        return self._names[uid]

    def _customer(self, cid: str | None) -> str:
        if not cid:
            return ""
        if cid not in self._customers:
            record = self.replica.get("customer", cid)
            self._customers[cid] = (record or {}).get("name") or cid
        return self._customers[cid]

    # ------------------------------------------------------------------ data

    def refresh_data(self) -> None:
        self._names.clear()
        self._customers.clear()
        if not self.me.get("id") and self.queue_view == "mine":
            self.queue_view = "all"
        if self.status_filter == "active" and self.priority_filter == "any":
            # Counted apart: the first rows paint at once, the overdue count follows.
            args, now, view = self._query_args(), self.now(), self.queue_view
            if self._overdue_of != (view, self.status_filter, self.priority_filter):
                # Another view: never an earlier view's count. The same view read again (a
                # save, a sync) keeps its last count until the new one comes.
                self._overdue, self._overdue_of = None, (view, self.status_filter, self.priority_filter)
            self.overdue_counts.ask(
                lambda replica: replica.reads.overdue_count(now, view, user_id=args["user_id"], team=args["team"]),
                self._overdue_counted)
        else:
            self.overdue_counts.drop()
            self._overdue, self._overdue_of = 0, None
        self.panel.reload()  # its Changed message redraws the bar

    def _overdue_counted(self, overdue: int) -> None:
        self._overdue = overdue
        self._show_bar()

    def on_unmount(self) -> None:
        self.overdue_counts.close()

    def _show_bar(self) -> None:
        table = self.panel.table
        overdue = self._overdue
        who = {"mine": "mine", "team": f"team {self.me.get('team') or '-'}", "all": "all tickets",
               "unassigned": "unassigned"}[self.queue_view]
        status = "active" if self.status_filter == "active" else f"status {self.status_filter}"
        priority = "any priority" if self.priority_filter == "any" else f"priority {self.priority_filter}"
        parts: list[str | tuple[str, str]] = [(who, "bold"), f" · {status} · {priority} · "]
        view = (self.queue_view, self.status_filter, self.priority_filter)
        whole_counting = table.unfiltered_counting if table.filter_text else table.counting
        if not whole_counting:
            self._counted_total = (view, table.unfiltered_total)
            parts.append((plural(table.unfiltered_total, "ticket"), "bold"))
        elif self._counted_total is not None and self._counted_total[0] == view:
            # The same view read again (a save, a sync): its last count until the new one comes.
            parts.append((plural(self._counted_total[1], "ticket"), "bold"))
        elif table.filter_text:
            parts.append(("counting tickets…", "bold"))
        else:  # the first rows are shown; the count over the whole view follows
            parts.append((f"{counted(table.unfiltered_total, 'ticket', at_least=True)} (counting…)", "bold"))
        if table.filter_text:
            if table.counting:  # the first rows are shown; the count over the whole queue follows
                parts.append((f" · {grouped(table.total)}+ match “{table.filter_text}” (counting…)", "bold"))
            else:
                parts.append((f" · {grouped(table.total)} match “{table.filter_text}”", "bold"))
        if overdue:
            parts.append((f" · {grouped(overdue)} overdue", "bold $text-error"))
        # The keys that change what is listed, in as many words as the line has room for.
        used = sum(len(p if isinstance(p, str) else p[0]) for p in parts)
        for hint in ("   v view · F status · P priority", " · v view · F/P filter", " · v view"):
            if used + len(hint) <= self.size.width - 2:
                parts.append((hint, "$text-muted"))
                break
        self.query_one("#queue-bar", Static).update(Content.assemble(*parts))

    def export_plan(self) -> ExportPlan:
        """`:export`: the whole queue of this view, status and priority filter (and `/` filter)."""
        who = {"mine": "my tickets", "team": f"team {self.me.get('team') or '-'}", "all": "all tickets",
               "unassigned": "unassigned tickets"}[self.queue_view]
        status = "active" if self.status_filter == "active" else f"status {self.status_filter}"
        priority = "any priority" if self.priority_filter == "any" else f"priority {self.priority_filter}"
        plan = table_plan(self, self.panel.table, "ticket queue", f"view {who}, {status}, {priority}")
        plan.noun = "ticket"
        return plan

    def current_ticket(self) -> dict[str, Any] | None:
        row = self.panel.table.current_row()
        return self.replica.get("ticket", row["id"]) if row else None

    # ------------------------------------------------------------------ views and filters

    def set_view(self, view: str) -> None:
        if view in VIEWS:
            self.queue_view = view
            self.refresh_data()

    def action_cycle_view(self) -> None:
        self.set_view(VIEWS[(VIEWS.index(self.queue_view) + 1) % len(VIEWS)])

    def action_filter_status(self) -> None:
        def chosen(value: str | None) -> None:
            if value:
                self.status_filter = value
                self.refresh_data()

        choices = [(k, "active (new, open, pending)" if k == "active" else k) for k in STATUS_FILTERS]
        self.app.push_screen(ChoicePicker("Show tickets with status", choices, current=self.status_filter), chosen)

    def action_filter_priority(self) -> None:
        def chosen(value: str | None) -> None:
            if value:
                self.priority_filter = value
                self.refresh_data()

        choices = [("any", "any"), *((p, p) for p in reversed(TICKET_PRIORITIES))]
        self.app.push_screen(ChoicePicker("Show tickets with priority", choices, current=self.priority_filter),
                             chosen)

    @on(WindowTable.Changed, "#queue-table")
    def _counted(self, event: WindowTable.Changed) -> None:
        self._show_bar()

    @on(DataTable.RowSelected, "#queue-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        row = self.panel.table.current_row()
        if row is not None:
            open_ticket(self.crm, row["id"])
