"""One order: its number, status, amount and dates, its status history, the customer's tickets that
mention it; an agent records a cancellation or refund request from here."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import DataTable, Static

from crm_tui.core.domain import ORDER_REQUEST_STATUSES, value_label
from crm_tui.core.text import grouped, plural
from screens.base import CrmScreen
from screens.display import MARK_LABELS, MARK_TONES, MARKS, ago, money, plain
from screens.form_specs import order_request_form
from screens.navigation import open_customer, open_ticket
from screens.tables import Column, ListPanel, ListSource, RowContext, WindowTable


class OrderDetailScreen(CrmScreen):
    LABEL = "Order"
    HELP = ("One order: number, status, amount and dates; its history (every status it reached and the "
            "cancellation and refund requests recorded for it), and the customer's tickets that mention "
            "its number. x records a cancellation request (pending or paid orders), f a refund request (paid, "
            "shipped or delivered ones); each asks why, and only the one the order's status allows is offered. enter on a ticket opens it, o opens the "
            "customer. tab moves between the history and the tickets.")
    DEFAULT_CSS = """
    OrderDetailScreen {
        & .section-title {
            height: 1;
            padding: 0 1;
            background: $boost;
        }
        & #order-history-panel {
            height: 1fr;
            max-height: 12;
        }
        & #order-tickets-panel {
            height: 1fr;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "request('cancel_request')", "Cancel request", id="order.cancel_request"),
        Binding("f", "request('refund_request')", "Refund request", id="order.refund_request"),
        Binding("o", "customer", "Customer", id="order.customer"),
    ]

    def __init__(self, order_id: str) -> None:
        super().__init__()
        self.order_id = order_id
        self.order: dict[str, Any] | None = None

    def compose_body(self):
        yield Static(id="order-header", classes="record-header")
        yield Static(id="order-history-title", classes="section-title")
        yield ListPanel(self._history(), empty="No history recorded for this order.", table_id="order-history",
                        id="order-history-panel", classes="order-section")
        yield Static(id="order-tickets-title", classes="section-title")
        yield ListPanel(self._tickets(), empty="No ticket of this customer mentions this order.",
                        table_id="order-tickets", id="order-tickets-panel", classes="order-section")

    # ------------------------------------------------------------------ lists

    def _history(self) -> ListSource:
        reads = self.replica.reads
        names: dict[str, str] = {}

        def author(uid: str | None) -> str:
            if uid and uid not in names:
                names[uid] = reads.user_name(uid)
            return names.get(uid or "", "")

        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            kind = row.get("kind")
            if kind == "status":
                what = Text(value_label(row.get("status")), style="bold", no_wrap=True)
            else:
                what = Text(value_label(kind), style=ctx.tone("text-warning"), no_wrap=True)
            when = (row.get("occurred_at") or "").replace("T", " ").rstrip("Z")[:16]
            return [ctx.mark(), plain(when), what, plain(author(row.get("author_id")) or "-"),
                    plain(row.get("reason") or "")]

        def columns(wide: bool) -> list[Column]:
            return [Column("mark", "", 1), Column("when", "when", 16), Column("what", "what", 20),
                    Column("by", "by", 18 if wide else 10), Column("reason", "reason")]

        return ListSource(columns=columns, cells=cells, entity="order_event",
                          next_key=lambda r: (r["occurred_at"], r["id"]),
                          fetch=lambda after, limit: [] if after is not None else reads.order_history(self.order_id))

    def _tickets(self) -> ListSource:
        reads = self.replica.reads

        def fetch(after: Any, limit: int) -> list[dict[str, Any]]:
            order = self.order
            if after is not None or not order or not order.get("number"):
                return []
            return reads.tickets_mentioning(order.get("customer_id") or "", order["number"])

        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            return [ctx.mark(), plain(row.get("number")), plain(value_label(row.get("status"))),
                    plain(ago(row.get("created_at"), ctx.now)), plain(row.get("subject"))]

        def columns(wide: bool) -> list[Column]:
            return [Column("mark", "", 1), Column("number", "#", 5, ident=True), Column("status", "status", 7),
                    Column("opened", "opened", 12), Column("subject", "subject")]

        return ListSource(columns=columns, cells=cells, entity="ticket", next_key=lambda r: (r["created_at"], r["id"]),
                          fetch=fetch)

    # ------------------------------------------------------------------ data

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only the requests this order's status allows are offered (a delivered order can be
        # refunded, never cancelled): the footer shows what the key would do, not a refusal.
        if action == "request" and parameters and self.order is not None:
            return self.order.get("status") in ORDER_REQUEST_STATUSES.get(str(parameters[0]), ())
        return True

    def refresh_data(self) -> None:
        self.order = self.replica.get("order", self.order_id)
        self.refresh_bindings()
        self._show_header()
        for panel in self.query(ListPanel):
            panel.reload()
        history = self.query_one("#order-history", WindowTable).row_count
        tickets = self.query_one("#order-tickets", WindowTable).row_count
        self.query_one("#order-history-title", Static).update(
            Content.assemble(("History", "bold"), (f"  {plural(history, 'event')}", "$text-muted")))
        number = (self.order or {}).get("number") or "this order"
        self.query_one("#order-tickets-title", Static).update(
            Content.assemble((f"Tickets mentioning {number}", "bold"), (f"  {grouped(tickets)}", "$text-muted")))

    def clock_moved(self) -> None:
        super().clock_moved()
        if self.is_mounted:
            self._show_header()  # "updated 3 min ago" ages too

    def _show_header(self) -> None:
        header = self.query_one("#order-header", Static)
        o = self.order
        if o is None:
            header.update(Content("This order is no longer in your replica (deleted, or it left your territory). "
                                  "esc goes back."))
            return
        state = self.replica.outbox.record_state("order", self.order_id)
        customer = self.replica.get("customer", o.get("customer_id") or "") or {}
        first: list[str | tuple[str, str]] = [(o.get("number") or o["id"], "bold"), "  ",
                                              (value_label(o.get("status")), "bold $text-accent"), "  ",
                                              (money(o.get("amount"), o.get("currency")), "bold")]
        if state:
            first.append((f"  {MARKS[state]} {MARK_LABELS[state]}", f"bold $text-{MARK_TONES[state]}"))
        parts = [x for x in (
            f"ordered {o.get('order_date') or '-'}",
            f"created {ago(o.get('created_at'), self.now())}" if o.get("created_at") else "",
            f"updated {ago(o.get('updated_at'), self.now())}" if o.get("updated_at") else "",
            self._latest_request(o),
        ) if x]
        if len(" · ".join(parts)) > self.size.width - 2 and len(parts) > 2:
            parts = [p for p in parts if not p.startswith("created ")]  # one line on a narrow terminal
        dates = " · ".join(parts)
        who = " · ".join(x for x in (customer.get("name"), customer.get("company")) if x)
        header.update(Content.assemble(*first, "\n", (dates, "$text-muted"), "\n",
                                       (f"customer {who or o.get('customer_id')}", "$text-muted")))

    def _latest_request(self, order: dict[str, Any]) -> str:
        """'refund request just now': the newest request recorded since the order last changed
        (a request is an event of its own; the order's `updated` does not move for it)."""
        requests = [e for e in self.replica.reads.order_history(self.order_id)
                    if e.get("kind") in ORDER_REQUEST_STATUSES and (e.get("occurred_at") or "") > (order.get("updated_at") or "")]
        if not requests:
            return ""
        newest = max(requests, key=lambda e: e.get("occurred_at") or "")
        return f"{value_label(newest.get('kind'))} {ago(newest.get('occurred_at'), self.now())}"

    # ------------------------------------------------------------------ actions

    def action_request(self, kind: str) -> None:
        order = self.replica.get("order", self.order_id)
        if order is None:
            self.app.notify("This order is no longer in your replica.", severity="warning")
            return
        allowed = ORDER_REQUEST_STATUSES[kind]
        if order.get("status") not in allowed:
            what = "cancelled" if kind == "cancel_request" else "refunded"
            self.app.notify(f"A {order.get('status')} order cannot be {what} (only {', '.join(allowed)} ones).",
                            severity="warning")
            return

        def saved(result: dict[str, Any] | None) -> None:
            if result is not None:
                self.app.notify(f"{value_label(kind).capitalize()} recorded. It goes to the server with the next sync.",
                                timeout=3)
                self.crm.data_changed()

        self.app.push_screen(order_request_form(self.crm, order, kind), saved)

    def action_customer(self) -> None:
        if self.order is not None:
            open_customer(self.crm, self.order.get("customer_id"), tab="orders")

    @on(DataTable.RowSelected, "#order-tickets")
    def _open_ticket(self, event: DataTable.RowSelected) -> None:
        row = self.query_one("#order-tickets", WindowTable).current_row()
        if row is not None:
            open_ticket(self.crm, row["id"])
