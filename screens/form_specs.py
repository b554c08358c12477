"""Which form for which job: the fields, defaults and save call of each create/edit form.

Every save goes through ``app.save`` (the save queue: validated at once, on disk before the form
closes, applied to the replica and its outbox by the save worker), or ``outbox.resend`` for a
rejected op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_tui.core.domain import (
    CONVERSATION_KINDS,
    ORDER_REQUEST_STATUSES,
    TICKET_TRANSITIONS,
    entity,
    format_datetime,
    value_label,
)
from screens.display import money, stage_name
from screens.forms import Options, RecordForm

if TYPE_CHECKING:
    from cache.outbox import OutboxOp
    from screens.host import CrmHost

CUSTOMER_FIELDS = ["name", "company", "email", "phone", "city", "country", "tier", "territory", "owner_id", "tags",
                   "lifetime_value"]
CONTACT_FIELDS = ["name", "title", "email", "phone", "is_primary"]
TICKET_FIELDS = ["subject", "description", "priority", "assignee_id", "team"]
DEAL_FIELDS = ["title", "stage", "amount", "currency", "probability", "close_date", "owner_id"]
ACTIVITY_FIELDS = ["kind", "subject", "body", "internal", "occurred_at"]
CONVERSATION_FIELDS = ("subject", "body", "outcome", "duration_min", "contact_id", "occurred_at")


def _me(app: CrmHost) -> dict[str, Any]:
    return app.replica.reads.me() or {}


def user_options(app: CrmHost) -> Options:
    return [(u.get("name") or uid, uid) for uid, u in app.replica.reads.users().items()]


def territory_options(app: CrmHost) -> Options:
    return [(t.get("name") or tid, tid) for tid, t in app.replica.reads.territories().items()]


def writable_territories(app: CrmHost) -> Options:
    """The territories the signed-in user may put a customer in, theirs first in their own order:
    a sales rep only their own (the server refuses the others); agents and admins any."""
    known = territory_options(app)
    me = _me(app)
    if me.get("all_territories") or not me:
        return known
    by_id = {tid: label for label, tid in known}
    return [(by_id[tid], tid) for tid in me.get("territories") or [] if tid in by_id]


def ref_options(app: CrmHost) -> dict[str, Options]:
    users = user_options(app)
    return {"territory": territory_options(app), "owner_id": users, "assignee_id": users}


def record_currency(app: CrmHost, entity_name: str, record_id: str, record: dict[str, Any] | None) -> str | None:
    """The currency a record's amounts are in: its own currency field; a customer's lifetime
    value, the currency the customer trades in."""
    if entity_name == "customer":
        return app.replica.reads.customer_currency(record_id)
    return (record or {}).get("currency")


def _now(app: CrmHost) -> str:
    return format_datetime(app.now())


def customer_form(app: CrmHost, record: dict[str, Any] | None = None) -> RecordForm:
    """Edit ``record``, or a new customer (in one of the user's own territories: a rep's first
    one preselected; someone who may write any territory chooses)."""
    if record is None:
        me = _me(app)
        options = {**ref_options(app), "territory": writable_territories(app)}
        own = [tid for _, tid in options["territory"]]
        preselect = own[0] if own and not me.get("all_territories") else None
        return RecordForm(
            "customer", title="New customer", fields=CUSTOMER_FIELDS, creating=True, options=options,
            values={"territory": preselect, "owner_id": me.get("id")},
            save=lambda values: app.save("create", "customer", values), warn=lambda values: _duplicates(app, values),
        )
    rid = record["id"]
    return RecordForm(
        "customer", title=f"Edit customer · {record.get('name') or rid}", fields=CUSTOMER_FIELDS, values=record,
        options=ref_options(app), save=lambda values: app.save("update", "customer", values, record_id=rid),
        currency=app.replica.reads.customer_currency(rid),
    )


def _duplicates(app: CrmHost, values: dict[str, Any]) -> str | None:
    """A new customer whose name or email is already a customer's: say which."""
    like = app.replica.reads.customers_like(name=values.get("name"), email=values.get("email"))
    if not like:
        return None
    names = "; ".join(" · ".join(x for x in (c["name"], c.get("email"), c.get("city")) if x) for c in like)
    return f"Already in your replica with this name or email: {names}."


def _subject_or_body(values: dict[str, Any]) -> dict[str, str]:
    if (values.get("subject") or "").strip() or (values.get("body") or "").strip():
        return {}
    return {"subject": "say what it was about: a subject or a text"}


def _outcome_given(values: dict[str, Any]) -> dict[str, str]:
    """A call or a visit says what came of it (the server takes one without, for older clients)."""
    if values.get("kind") in CONVERSATION_KINDS and not values.get("outcome"):
        return {"outcome": f"say what came of the {values['kind']}"}
    return {}


def _conversation_check(values: dict[str, Any]) -> dict[str, str]:
    return {**_subject_or_body(values), **_outcome_given(values)}


def contact_options(app: CrmHost, customer_id: str) -> Options:
    """The customer's contacts, primary first, for "who was spoken to"."""
    return [(" · ".join(x for x in (c.get("name"), c.get("title")) if x) or c["id"], c["id"])
            for c in app.replica.reads.contacts(customer_id, limit=200)]


def contact_form(app: CrmHost, customer_id: str, record: dict[str, Any] | None = None) -> RecordForm:
    if record is None:
        return RecordForm(
            "contact", title="New contact", fields=CONTACT_FIELDS, creating=True, fixed={"customer_id": customer_id},
            values={"is_primary": False}, save=lambda values: app.save("create", "contact", values),
        )
    rid = record["id"]
    return RecordForm(
        "contact", title=f"Edit contact · {record.get('name') or rid}", fields=CONTACT_FIELDS, values=record,
        save=lambda values: app.save("update", "contact", values, record_id=rid),
    )


def ticket_form(app: CrmHost, customer_id: str, record: dict[str, Any] | None = None) -> RecordForm:
    options = ref_options(app)
    if record is None:
        me = _me(app)
        return RecordForm(
            "ticket", title="Open a ticket", fields=TICKET_FIELDS, creating=True, options=options,
            fixed={"customer_id": customer_id, "status": "new"},
            values={"priority": "normal", "assignee_id": me.get("id"), "team": me.get("team")},
            save=lambda values: app.save("create", "ticket", values),
        )
    rid = record["id"]
    status = record.get("status") or "new"
    # Only the moves the workflow allows are offered.
    options["status"] = [(value_label(s), s) for s in (status, *TICKET_TRANSITIONS.get(status, ()))]
    return RecordForm(
        "ticket", title=f"Edit ticket #{record.get('number') or rid}", fields=["status", *TICKET_FIELDS],
        values=record, options=options, save=lambda values: app.save("update", "ticket", values, record_id=rid),
    )


def deal_form(app: CrmHost, customer_id: str, record: dict[str, Any] | None = None) -> RecordForm:
    options = {"owner_id": user_options(app)}
    if record is None:
        return RecordForm(
            "deal", title="New deal", fields=DEAL_FIELDS, creating=True, options=options,
            fixed={"customer_id": customer_id},
            values={"stage": "lead", "currency": "EUR", "probability": 10, "owner_id": _me(app).get("id")},
            save=lambda values: app.save("create", "deal", values),
        )
    rid = record["id"]
    fields = [*DEAL_FIELDS, "lost_reason"] if record.get("stage") == "lost" else DEAL_FIELDS
    return RecordForm(
        "deal", title=f"Edit deal · {record.get('title') or rid}", fields=fields, values=record,
        options=options, save=lambda values: app.save("update", "deal", values, record_id=rid),
    )


def deal_outcome_form(app: CrmHost, record: dict[str, Any], stage: str) -> RecordForm:
    """Mark a deal won or lost: the date it closed (today unless changed), and for a lost deal
    why. Sent whole (the stage with them), so the server judges the closing as one change."""
    rid = record["id"]
    title = record.get("title") or rid
    fields = ["close_date", "lost_reason"] if stage == "lost" else ["close_date"]
    asked = "Say why it was lost, and when it closed." if stage == "lost" else "Say when it closed."
    return RecordForm(
        "deal", title=f"Mark {title} {value_label(stage)}", fields=fields, fixed={"stage": stage},
        values={"close_date": app.now().date().isoformat(), "lost_reason": record.get("lost_reason")},
        note=(f"It was marked {value_label(record.get('stage'))}; this marks it {value_label(stage)} instead. {asked}"
              if record.get("stage") in ("won", "lost") else f"It is now in {stage_name(record.get('stage'))}. {asked}"),
        only_changes=False, save=lambda values: app.save("update", "deal", values, record_id=rid),
    )


def _either(values: tuple[str, ...] | list[str]) -> str:
    """'paid, shipped or delivered': a few enum values as a sentence names them."""
    labels = [value_label(v) for v in values]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


def order_request_form(app: CrmHost, order: dict[str, Any], kind: str) -> RecordForm:
    """Record a cancellation or refund request for an order: why the customer asks."""
    what = "Cancellation" if kind == "cancel_request" else "Refund"
    number = order.get("number") or order["id"]
    return RecordForm(
        "order_event", title=f"{what} request · {number}", fields=["reason"], creating=True,
        fixed={"customer_id": order["customer_id"], "order_id": order["id"], "kind": kind,
               "occurred_at": _now(app)},
        note=(f"Order {number}: {value_label(order.get('status'))}, {money(order.get('amount'), order.get('currency'))}. "
              f"Requests are taken for {_either(ORDER_REQUEST_STATUSES[kind])} orders."),
        check=lambda values: {} if (values.get("reason") or "").strip() else {"reason": "say why the customer asks for it"},
        save=lambda values: app.save("create", "order_event", values),
    )


def activity_form(
    app: CrmHost,
    customer_id: str,
    *,
    kind: str = "note",
    title: str = "Log a note",
    ticket_id: str | None = None,
    deal_id: str | None = None,
    internal: bool = False,
    subject: str = "",
    fields: tuple[str, ...] = ("subject", "body", "occurred_at"),
) -> RecordForm:
    """A new activity of ``kind`` on a customer (and a ticket or a deal): notes, calls, replies."""
    fixed: dict[str, Any] = {"customer_id": customer_id, "kind": kind, "internal": internal}
    if ticket_id:
        fixed["ticket_id"] = ticket_id
    if deal_id:
        fixed["deal_id"] = deal_id
    values: dict[str, Any] = {"subject": subject, "occurred_at": _now(app)}
    if "occurred_at" not in fields:
        fixed["occurred_at"] = values["occurred_at"]
    options: dict[str, Options] = {}
    if kind in CONVERSATION_KINDS:
        fields = CONVERSATION_FIELDS
        options["contact_id"] = contact_options(app, customer_id)
        primary = options["contact_id"][0][1] if options["contact_id"] else None
        values["contact_id"] = primary
    return RecordForm(
        "activity", title=title, fields=list(fields), creating=True, fixed=fixed, values=values, options=options,
        save=lambda v: app.save("create", "activity", v), check=_conversation_check,
    )


def edit_activity_form(app: CrmHost, record: dict[str, Any]) -> RecordForm:
    rid = record["id"]
    fields, options = ACTIVITY_FIELDS, {}
    if record.get("kind") in CONVERSATION_KINDS:
        fields = [*ACTIVITY_FIELDS[:3], "outcome", "duration_min", "contact_id", *ACTIVITY_FIELDS[3:]]
        options["contact_id"] = contact_options(app, record["customer_id"])
    return RecordForm(
        "activity", title=f"Edit {record.get('kind') or 'activity'}", fields=fields, values=record, options=options,
        save=lambda values: app.save("update", "activity", values, record_id=rid),
        check=lambda values: _conversation_check({"kind": record.get("kind"), **values}),
    )


def resend_form(app: CrmHost, op: OutboxOp) -> RecordForm:
    """Fix a rejected op: its fields, prefilled, with the server's reasons beside them."""
    ent = entity(op.entity)
    error = op.error or {}
    if op.op == "create":
        names = [f.name for f in ent.writable_fields if not (f.kind == "ref" and f.immutable)]
        fixed = {f.name: op.fields.get(f.name) for f in ent.writable_fields if f.kind == "ref" and f.immutable}
    else:
        names = [n for n in op.fields if n in ent.by_name]
        fixed = {}
    current = app.replica.get(op.entity, op.record_id) or {}
    options = ref_options(app)
    if op.entity == "ticket" and "status" in names:
        base = op.base_values.get("status") or current.get("status") or "new"
        options["status"] = [(value_label(s), s) for s in dict.fromkeys((op.fields.get("status"), base,
                                                            *TICKET_TRANSITIONS.get(base, ()))) if s]
    field_errors = error.get("fields") if isinstance(error.get("fields"), dict) else {}
    return RecordForm(
        op.entity, title=f"Fix and re-send: {op.op} {ent.label.lower()}", fields=names, fixed=fixed,
        values={**current, **op.fields}, options=options, errors=field_errors, only_changes=False,
        currency=record_currency(app, op.entity, op.record_id, {**op.base_values, **current, **op.fields}),
        note=f"The server refused this change: {error.get('message') or 'no reason given'}",
        save=lambda values: app.save("resend", op.entity, values, record_id=str(op.seq)),
    )
