"""Opening records: a customer's 360 view, a ticket, an order; shared by lists, `:` commands and the palette."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from screens.host import CrmHost


def open_customer(app: CrmHost, customer_id: str | None, tab: str = "contacts") -> bool:
    """Push the customer 360 view; False (with a message) if the replica does not hold it."""
    if not customer_id or app.replica.get("customer", customer_id) is None:
        app.notify(f"No customer {customer_id!r} in your replica.", severity="warning")
        return False
    app.push_screen(app.record_screen("customer", customer_id, tab=tab))
    return True


def open_ticket(app: CrmHost, ticket_id: str | None) -> bool:
    if not ticket_id or app.replica.get("ticket", ticket_id) is None:
        app.notify(f"No ticket {ticket_id!r} in your replica.", severity="warning")
        return False
    app.push_screen(app.record_screen("ticket", ticket_id))
    return True


def open_order(app: CrmHost, order_id: str | None) -> bool:
    """Push an order's detail; False (with a message) if the replica does not hold it."""
    if not order_id or app.replica.get("order", order_id) is None:
        app.notify(f"No order {order_id!r} in your replica.", severity="warning")
        return False
    app.push_screen(app.record_screen("order", order_id))
    return True


CHOICES = 20


def customer_matches(app: CrmHost, text: str) -> tuple[list[tuple[str, str]], int, bool]:
    """The customers ``text`` names, as (customer id, label) pairs, best first (at most CHOICES),
    how many records matched in all, and whether that count was capped (more matched: the
    search counts up to a bound): an id names one; else the search's hits (a contact stands
    for its customer)."""
    text = text.strip()
    if not text:
        return [], 0, False
    if app.replica.get("customer", text) is not None:
        return [(text, text)], 1, False
    result = app.replica.search(text, limit=CHOICES)
    out: dict[str, str] = {}
    for hit in result.hits:
        if hit.customer_id and hit.customer_id not in out:
            label = hit.title if hit.kind == "customer" else f"{hit.title} ({hit.kind})"
            out[hit.customer_id] = f"{label} · {hit.detail}" if hit.detail else label
    return list(out.items()), max(result.total, len(out)), result.capped


def find_ticket(app: CrmHost, text: str) -> str | None:
    """A ticket id from an id or a number like 1042 / #1042."""
    text = text.strip()
    if not text:
        return None
    if app.replica.get("ticket", text) is not None:
        return text
    for hit in app.replica.search(text if text.startswith("#") else f"#{text}", limit=5).hits:
        if hit.kind == "ticket":
            return hit.id
    return None
