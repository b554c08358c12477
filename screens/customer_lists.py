"""The lists of the customer 360 view: the window each tab shows and how it draws a row."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text

from crm_tui.core.agenda import bucket, due_text
from crm_tui.core.domain import value_label
from screens.display import ORDER_NUMBER_WIDTH, SLA_WIDTH, ago, money, plain, short_time, sla_text
from screens.tables import Column, ListSource, RowContext

if TYPE_CHECKING:
    from screens.host import CrmHost

# tab key -> (label, empty-state text)
TABS = {
    "contacts": ("Contacts", "No contacts yet. a adds one."),
    "orders": ("Orders", "No orders in your replica for this customer."),
    "tickets": ("Tickets", "No tickets. t opens one."),
    "deals": ("Deals", "No deals. d adds one."),
    "tasks": ("Tasks", "No tasks. f makes a follow-up."),
    "activity": ("Activity", "No activity yet. n logs a note, c a call."),
}

def conversation_summary(row: dict[str, Any], contact_name: Callable[[str], str]) -> str:
    """'reached · 12 min · with Kim Weber' for a call or a visit; '' for anything else."""
    parts = []
    if row.get("outcome"):
        parts.append(value_label(row["outcome"]))
    if row.get("duration_min") is not None:
        parts.append(f"{row['duration_min']} min")
    if row.get("contact_id"):
        name = contact_name(row["contact_id"])
        parts.append(f"with {name}" if name else "")
    return " · ".join(p for p in parts if p)


def customer_sources(app: CrmHost, customer_id: str) -> dict[str, ListSource]:
    reads = app.replica.reads
    lists = app.replica.lists
    names: dict[str, str] = {}

    def user(uid: str | None) -> str:
        if not uid:
            return ""
        if uid not in names:
            names[uid] = reads.user_name(uid)
        return names[uid]

    contact_names: dict[str, str] = {}

    def contact(contact_id: str) -> str:
        if contact_id not in contact_names:
            contact_names[contact_id] = (app.replica.get("contact", contact_id) or {}).get("name") or ""
        return contact_names[contact_id]

    def contact_cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
        return [ctx.mark(), plain(row.get("name")), plain(row.get("title")), plain(row.get("phone")),
                plain(row.get("email")), plain("primary" if row.get("is_primary") else "")]

    def contact_columns(wide: bool) -> list[Column]:
        return [Column("mark", "", 1), Column("name", "name", min_width=20), Column("title", "title", 18, give_way=1),
                Column("phone", "phone", 16), Column("email", "email", 32, give_way=2), Column("primary", "", 7)]

    def order_cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
        return [ctx.mark(), plain(row.get("number")), plain(row.get("order_date")), plain(value_label(row.get("status"))),
                Text(money(row.get("amount"), row.get("currency")), justify="right", no_wrap=True), plain("")]

    def ticket_cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
        due, overdue = sla_text(row, ctx.now)
        return [ctx.mark(), plain(row.get("number")), plain(value_label(row.get("status"))), plain(value_label(row.get("priority"))),
                Text(due, style=ctx.tone("text-error") if overdue else "", no_wrap=True), plain(row.get("subject")),
                plain(user(row.get("assignee_id")))]

    def ticket_columns(wide: bool) -> list[Column]:
        return [Column("mark", "", 1), Column("number", "#", 5, ident=True), Column("status", "status", 7),
                Column("priority", "priority", 8), Column("sla", "SLA", SLA_WIDTH), Column("subject", "subject"),
                Column("assignee", "assignee", 18, give_way=1)]

    def deal_cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
        return [ctx.mark(), plain(row.get("title")), plain(value_label(row.get("stage"))),
                Text(money(row.get("amount"), row.get("currency")), justify="right", no_wrap=True),
                plain(row.get("close_date")), plain(user(row.get("owner_id")))]

    def deal_columns(wide: bool) -> list[Column]:
        return [Column("mark", "", 1), Column("title", "title"), Column("stage", "stage", 11),
                Column("amount", "amount", 17), Column("close", "closes", 10), Column("owner", "owner", 18, give_way=1)]

    def activity_cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
        text = row.get("subject") or row.get("body") or ""
        said = conversation_summary(row, contact)
        if said:
            text = f"{text} · {said}" if text else said
        cells = [ctx.mark(), plain(ago(row.get("occurred_at"), ctx.now)), plain(value_label(row.get("kind"))), plain(text),
                 plain(user(row.get("author_id"))),
                 Text("internal" if row.get("internal") else "", style=ctx.tone("text-warning"), no_wrap=True)]
        return cells

    def activity_columns(wide: bool) -> list[Column]:
        return [Column("mark", "", 1), Column("when", "when", 12), Column("kind", "kind", 5),
                Column("subject", "subject"), Column("author", "by", 18 if wide else 12),
                Column("internal", "", 8)]

    def task_cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
        if row.get("status") == "done":
            due = Text(f"done {short_time(row.get('done_at'))[5:]}", style=ctx.tone("text-success"), no_wrap=True)
        else:
            tone = {"overdue": "text-error", "today": "text-warning"}.get(bucket(row.get("due_at"), ctx.now))
            due = Text(due_text(row.get("due_at"), ctx.now), style=ctx.tone(tone) if tone else "", no_wrap=True)
        return [ctx.mark(), due, plain(row.get("title")), plain(user(row.get("owner_id")))]

    def task_columns(wide: bool) -> list[Column]:
        return [Column("mark", "", 1), Column("due", "due", 16), Column("title", "task"),
                Column("owner", "owner", 18 if wide else 12)]

    return {
        "contacts": ListSource(
            columns=contact_columns, entity="contact", cells=contact_cells,
            window=lambda: lists.contacts(customer_id),
        ),
        "orders": ListSource(
            columns=lambda wide: [Column("mark", "", 1), Column("number", "number", ORDER_NUMBER_WIDTH, ident=True),
                                  Column("date", "date", 10),
                                  Column("status", "status", 9), Column("amount", "amount", 17),
                                  Column("pad", "")],
            entity="order", cells=order_cells, window=lambda: lists.orders(customer_id),
        ),
        "tickets": ListSource(
            columns=ticket_columns, entity="ticket", cells=ticket_cells,
            window=lambda: lists.customer_tickets(customer_id),
        ),
        "deals": ListSource(
            columns=deal_columns, entity="deal", cells=deal_cells,
            window=lambda: lists.customer_deals(customer_id),
        ),
        "tasks": ListSource(
            columns=task_columns, entity="task", cells=task_cells, next_key=app.replica.tasks.customer_key,
            fetch=lambda after, limit: app.replica.tasks.for_customer(customer_id, after=after, limit=limit),
        ),
        "activity": ListSource(
            columns=activity_columns, entity="activity", cells=activity_cells,
            window=lambda: lists.activities(customer_id),
        ),
    }
