"""One ticket: its state, its description and its conversation, with the triage keys of the queue."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.content import Content
from textual.widgets import DataTable, Static

from crm_tui.core.domain import value_label
from screens.base import CrmScreen
from screens.display import MARK_LABELS, MARK_TONES, MARKS, ago, plain, sla_text
from screens.reader import MessageReader
from screens.tables import Column, ListPanel, ListSource, RowContext, WindowTable
from screens.ticket_actions import TRIAGE_BINDINGS, TicketTriage


class TicketDetailScreen(TicketTriage, CrmScreen):
    LABEL = "Ticket"
    HELP = ("A ticket and its conversation, newest first. Replies (r) go to the customer; internal notes (i) "
            "stay in the team. a assigns it to you, s moves its status, p sets its priority, e edits it, "
            "o opens the customer, f makes a follow-up task about it. enter on a message shows it in full.")
    DEFAULT_CSS = """
    TicketDetailScreen .ticket-description {
        height: auto;
        max-height: 4;
        padding: 0 1;
        color: $text-muted;
        border-bottom: solid $primary-muted;
    }
    """
    BINDINGS: ClassVar = [*TRIAGE_BINDINGS]

    def __init__(self, ticket_id: str) -> None:
        super().__init__()
        self.ticket_id = ticket_id
        self.ticket: dict[str, Any] | None = None

    def compose_body(self):
        yield Static(id="ticket-header", classes="record-header")
        yield Static(id="ticket-description", classes="ticket-description")
        yield ListPanel(self._source(), empty="No replies or notes yet. r replies, i adds an internal note.",
                        table_id="ticket-activity", id="ticket-panel")

    def _source(self) -> ListSource:
        reads = self.replica.reads
        names: dict[str, str] = {}

        def author(uid: str | None) -> str:
            if uid and uid not in names:
                names[uid] = reads.user_name(uid)
            return names.get(uid or "", "")

        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            label = "internal" if row.get("internal") else ("to customer" if row.get("kind") == "email" else "")
            text = " — ".join(x for x in (row.get("subject"), row.get("body")) if x)
            return [ctx.mark(), plain(ago(row.get("occurred_at"), ctx.now)), plain(value_label(row.get("kind"))),
                    plain(author(row.get("author_id"))),
                    Text(label, style=ctx.tone("text-warning") if row.get("internal") else "", no_wrap=True),
                    plain(text)]

        def columns(wide: bool) -> list[Column]:
            return [Column("mark", "", 1), Column("when", "when", 12), Column("kind", "kind", 5),
                    Column("author", "by", 18 if wide else 12), Column("label", "", 11), Column("text", "text")]

        return ListSource(
            columns=columns, cells=cells, entity="activity", next_key=lambda r: (r["occurred_at"], r["id"]),
            fetch=lambda after, limit: reads.activities(ticket_id=self.ticket_id, before=after, limit=limit),
        )

    def refresh_data(self) -> None:
        self.ticket = self.replica.get("ticket", self.ticket_id)
        self._show_header()
        self.query_one("#ticket-panel", ListPanel).reload()

    def clock_moved(self) -> None:
        super().clock_moved()
        if self.is_mounted:
            self._show_header()  # its SLA ("overdue 5 min") ages too

    def _show_header(self) -> None:
        header = self.query_one("#ticket-header", Static)
        description = self.query_one("#ticket-description", Static)
        t = self.ticket
        if t is None:
            header.update(Content("This ticket is no longer in your replica. esc goes back."))
            description.display = False
            return
        state = self.replica.outbox.record_state("ticket", self.ticket_id)
        customer = self.replica.get("customer", t.get("customer_id") or "") or {}
        due, overdue = sla_text(t, self.now())
        first: list[str | tuple[str, str]] = [(f"#{t.get('number') or '?'} ", "bold"), (t.get("subject") or "", "bold")]
        if state:
            first.append((f"  {MARKS[state]} {MARK_LABELS[state]}", f"bold $text-{MARK_TONES[state]}"))
        second: list[str | tuple[str, str]] = [(value_label(t.get("status")), "bold"), f" · {value_label(t.get('priority'))}"]
        if due:
            second.append((f" · SLA {due}", "bold $text-error" if overdue else ""))
        assignee = self.replica.reads.user_name(t.get("assignee_id")) or "unassigned"
        second.append(f" · {assignee} · team {t.get('team') or '-'}")
        who = " · ".join(x for x in (customer.get("name"), customer.get("company")) if x)
        header.update(Content.assemble(*first, "\n", *second, "\n", (f"customer {who or t.get('customer_id')}",
                                                                      "$text-muted")))
        description.update(Content(t.get("description") or "(no description)"))
        description.display = True

    @on(DataTable.RowSelected, "#ticket-activity")
    def _read_message(self, event: DataTable.RowSelected) -> None:
        """A message longer than its row, read in full."""
        table = event.data_table
        row = table.current_row() if isinstance(table, WindowTable) else None
        if row is None:
            return
        reads = self.replica.reads
        label = "internal" if row.get("internal") else ("to the customer" if row.get("kind") == "email" else "")
        heading = " · ".join(x for x in (value_label(row.get("kind")), reads.user_name(row.get("author_id")),
                                         ago(row.get("occurred_at"), self.now()), label) if x)
        self.app.push_screen(MessageReader(heading, row.get("subject") or "", row.get("body") or ""))

    def current_ticket(self) -> dict[str, Any] | None:
        return self.replica.get("ticket", self.ticket_id)
