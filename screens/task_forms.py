"""Tasks and follow-ups: the task form, one-key follow-ups from a customer, a ticket or a deal,
and completing or reopening a task.

A due time is typed as people say it (``tomorrow``, ``fri 10:00``, ``+2d``, or a date and time;
``crm_tui.core.agenda.parse_due``); a new follow-up is due tomorrow at 09:00 and owned by whoever
makes it. Every save goes through ``app.save`` like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cache.errors import ReplicaError
from crm_tui.core.agenda import completion, due_text, parse_due
from crm_tui.core.domain import ValidationError
from screens.forms import RecordForm

if TYPE_CHECKING:
    from screens.host import CrmHost

TASK_FIELDS = ["title", "due_at", "owner_id", "notes"]


def _me(app: CrmHost) -> dict[str, Any]:
    return app.replica.reads.me() or {}


def _owners(app: CrmHost) -> list[tuple[str, Any]]:
    """Who may own a task: the users the replica knows, and the signed-in user in any case
    (before the first sync has brought the staff directory)."""
    owners = [(u.get("name") or uid, uid) for uid, u in app.replica.reads.users().items()]
    me = _me(app)
    if me.get("id") and me["id"] not in {uid for _, uid in owners}:
        owners.insert(0, (me.get("name") or me["id"], me["id"]))
    return owners


def _due_text(value: str) -> str:
    """'2026-12-01 09:30' for a due time on the minute (seconds only when there are some, so an
    untouched field never changes the task)."""
    text = str(value).replace("T", " ").rstrip("Z")
    return text[:-3] if text.endswith(":00") and len(text) == 19 else text


def task_form(app: CrmHost, customer_id: str, *, ticket_id: str | None = None, deal_id: str | None = None,
              title: str = "", record: dict[str, Any] | None = None) -> RecordForm:
    """A new follow-up on a customer (about one of its tickets or deals), or edit ``record``."""
    parsers = {"due_at": lambda text: parse_due(text, app.now())}
    formats: dict[str, Callable[[Any], str]] = {"due_at": _due_text}
    options = {"owner_id": _owners(app)}
    if record is not None:
        rid = record["id"]
        return RecordForm(
            "task", title=f"Edit task · {record.get('title') or rid}", fields=TASK_FIELDS, values=record,
            options=options, parsers=parsers, formats=formats,
            save=lambda values: app.save("update", "task", values, record_id=rid),
        )
    fixed: dict[str, Any] = {"customer_id": customer_id, "status": "open"}
    if ticket_id:
        fixed["ticket_id"] = ticket_id
    if deal_id:
        fixed["deal_id"] = deal_id
    return RecordForm(
        "task", title="New follow-up", fields=TASK_FIELDS, creating=True, fixed=fixed, options=options,
        parsers=parsers, formats=formats, values={"title": title, "due_at": parse_due("tomorrow", app.now()),
                                 "owner_id": _me(app).get("id")},
        save=lambda values: app.save("create", "task", values),
    )


def follow_up(app: CrmHost, customer_id: str | None, *, ticket: dict[str, Any] | None = None,
              deal: dict[str, Any] | None = None) -> bool:
    """Open the form for a follow-up on a customer, a ticket or a deal (the one key `f`).
    False, with a message, when there is nothing to follow up."""
    customer = app.replica.get("customer", customer_id) if customer_id else None
    if customer is None:
        app.notify("No customer to follow up: it is not in your replica.", severity="warning")
        return False
    if ticket is not None:
        title = f"Follow up #{ticket.get('number') or ticket['id']}: {ticket.get('subject') or ''}".rstrip(": ")
    elif deal is not None:
        title = f"Follow up: {deal.get('title') or deal['id']}"
    else:
        title = f"Follow up with {customer.get('name') or customer_id}"
    form = task_form(app, customer["id"], ticket_id=ticket["id"] if ticket else None,
                     deal_id=deal["id"] if deal else None, title=title[:200])

    def saved(result: dict[str, Any] | None) -> None:
        if result is None:
            return
        app.notify(f"Follow-up saved. {app.key_for('app.today')} shows it under Today; it goes to the server "
                   "with the next sync.", timeout=4)
        app.data_changed()

    app.push_screen(form, saved)
    return True


def set_done(app: CrmHost, task: dict[str, Any], done: bool) -> bool:
    """Complete (``done``) or reopen a task; says what happened. False if it could not be saved."""
    if (task.get("status") == "done") == done:
        app.notify(f"Already {'done' if done else 'open'}: {task.get('title')}")
        return False
    try:
        app.save("update", "task", completion(done, app.now()), record_id=task["id"])
    except (ValidationError, ReplicaError) as exc:
        app.notify(str(exc), title="Not saved", severity="error")
        return False
    if done:
        app.notify(f"Done: {task.get('title')}", timeout=3)
    else:
        app.notify(f"Reopened: {task.get('title')} (due {due_text(task.get('due_at'), app.now())})", timeout=3)
    app.data_changed()
    return True
