"""The one mapping between crm-tui records and BottleCRM records: fields, enums, and what has
no counterpart on either side.

:data:`FIELDS` is THE table; docs/gateway.md carries the same rows (tests/server/
test_gateway_mapping.py keeps the two in step), and the converters below read nothing else.

Directions:

* ``both`` — pulled from BottleCRM and written back to it.
* ``pull`` — BottleCRM sets it; a client may not change it (rejected as ``validation``).
* ``gateway`` — no counterpart in BottleCRM: kept in the gateway's mirror, shared by everyone who
  syncs through this gateway, never sent upstream and never overwritten by a pull.
* ``upstream`` — a BottleCRM field with no crm-tui counterpart: never read, never written (a
  PATCH sends only mapped fields, so it keeps its value).

Enums map both ways through :data:`ENUMS`. Where several BottleCRM values map onto one crm-tui
value (or back), the mapping is lossy; the puller keeps the mirror's value whenever it maps to
the upstream's current value, so a lossy pair never flaps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_tui.core.domain import format_datetime, parse_datetime


@dataclass(frozen=True, slots=True)
class FieldMap:
    """One row of the mapping table."""

    entity: str  # crm-tui entity ("customer"), or the module for upstream-only rows
    field: str | None  # crm-tui field; None for a BottleCRM field with no counterpart
    upstream: str | None  # BottleCRM field(s); None for a crm-tui field with no counterpart
    direction: str  # both | pull | gateway | upstream
    note: str  # what the gateway does with it


# crm-tui entity -> BottleCRM module
MODULE_OF: dict[str, str] = {"customer": "accounts", "contact": "contacts", "ticket": "cases", "deal": "opportunities"}
ENTITY_OF: dict[str, str] = {m: e for e, m in MODULE_OF.items()}

# What crm-tui entities the gateway cannot mirror, and why (a write of one is rejected with this).
UNMAPPED_ENTITIES: dict[str, str] = {
    "order": "BottleCRM has no orders (its invoices are a different thing); orders cannot be created through this gateway",
    "activity": "BottleCRM lists interactions and comments only per parent record; activities are not mirrored by this gateway",
    "task": "BottleCRM's tasks are not mirrored by this gateway; tasks and follow-ups cannot be created through it",
    "order_event": "BottleCRM has no orders, so no order history or cancellation and refund requests either",
}

F = FieldMap
FIELDS: tuple[FieldMap, ...] = (
    F("customer", "name", "name", "both", "as is"),
    F("customer", "company", None, "gateway", "a BottleCRM account is itself the company"),
    F("customer", "email", "email", "both", "as is"),
    F("customer", "phone", "phone", "both", "BottleCRM accepts 7-25 of digits, spaces and + ( ) - . (its message comes back as a rejection)"),
    F("customer", "city", "city", "both", "as is"),
    F("customer", "country", "country", "both", "ISO 3166 two-letter code on both sides"),
    F("customer", "tier", None, "gateway", "kept in the mirror"),
    F("customer", "territory", None, "gateway", "every account is put in the gateway's territory (--territory)"),
    F("customer", "owner_id", None, "gateway", "BottleCRM's assigned_to lists profiles, not crm-tui users"),
    F("customer", "tags", None, "gateway", "BottleCRM tags are records of their own"),
    F("customer", "lifetime_value", None, "gateway", "kept in the mirror"),
    F("customer", "created_at", "created_at", "pull", "to the second, UTC"),
    F("customer", "updated_at", None, "pull", "when the gateway saw the account change (accounts have no updated_at)"),
    F("accounts", None, "website, industry, number_of_employees, annual_revenue, currency, address_line, state, postcode, description, teams, contacts, is_active",
      "upstream", "left as they are; closed (inactive) accounts are mirrored like open ones"),
    F("contact", "customer_id", "account", "both", "a contact without an account is not mirrored (crm-tui contacts belong to a customer)"),
    F("contact", "name", "first_name, last_name", "both", "the last word is the last name; BottleCRM rejects a one-word name"),
    F("contact", "title", "title", "both", "as is"),
    F("contact", "email", "email", "both", "as is"),
    F("contact", "phone", "phone", "both", "as for customers"),
    F("contact", "is_primary", None, "gateway", "kept in the mirror"),
    F("contact", "created_at", "created_at", "pull", "to the second, UTC"),
    F("contact", "updated_at", "updated_at", "pull", "to the second, UTC (the only module that serialises it)"),
    F("contacts", None, "organization, department, do_not_call, linkedin_url, address, description, source, teams, assigned_to, is_active",
      "upstream", "left as they are"),
    F("ticket", "customer_id", "account", "both", "a case without an account is not mirrored"),
    F("ticket", "number", None, "gateway", "numbered by the gateway when it first sees the case"),
    F("ticket", "subject", "name", "both", "BottleCRM allows 64 characters (its message comes back as a rejection)"),
    F("ticket", "description", "description", "both", "as is"),
    F("ticket", "status", "status", "both", "see the status table"),
    F("ticket", "priority", "priority", "both", "see the priority table"),
    F("ticket", "assignee_id", None, "gateway", "BottleCRM's assigned_to lists profiles, not crm-tui users"),
    F("ticket", "team", None, "gateway", "BottleCRM teams are records of their own"),
    F("ticket", "sla_due", "resolution_sla_deadline", "pull",
      "BottleCRM's SLA policy sets it; none while BottleCRM pauses the SLA (a paused deadline moves with the clock on every read)"),
    F("ticket", "created_at", "created_at", "pull", "to the second, UTC"),
    F("ticket", "updated_at", None, "pull", "when the gateway saw the case change"),
    F("cases", None, "case_type, closed_on, contacts, teams, tags, parent, escalations, SLA timers, comments, attachments",
      "upstream", "left as they are"),
    F("deal", "customer_id", "account", "both", "an opportunity without an account is not mirrored"),
    F("deal", "title", "name", "both", "as is"),
    F("deal", "stage", "stage", "both", "see the stage table; a create goes into the default pipeline"),
    F("deal", "amount", "amount", "both", "decimal string upstream, minor units (cents) here"),
    F("deal", "currency", "currency", "both", "BottleCRM knows 14 currencies (its message comes back as a rejection)"),
    F("deal", "probability", "probability", "both", "as is"),
    F("deal", "close_date", "closed_on", "both", "BottleCRM requires it on a create"),
    F("deal", "owner_id", None, "gateway", "BottleCRM's assigned_to lists profiles, not crm-tui users"),
    F("deal", "lost_reason", None, "gateway", "kept in the mirror (BottleCRM has no field for it)"),
    F("deal", "created_at", "created_at", "pull", "to the second, UTC"),
    F("deal", "updated_at", None, "pull", "when the gateway saw the opportunity change"),
    F("opportunities", None, "pipeline, opportunity_type, lead_source, line_items, contacts, teams, tags, description",
      "upstream", "left as they are"),
)

# Enums: crm-tui value -> BottleCRM value (written), and BottleCRM value -> crm-tui value (pulled).
ENUMS: dict[tuple[str, str], tuple[dict[str, str], dict[str, str]]] = {
    ("ticket", "status"): (
        {"new": "New", "open": "Assigned", "pending": "Pending", "solved": "Closed", "closed": "Closed"},
        {"New": "new", "Assigned": "open", "Pending": "pending", "Closed": "solved", "Rejected": "closed", "Duplicate": "closed"},
    ),
    ("ticket", "priority"): (
        {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"},
        {"Low": "low", "Normal": "normal", "High": "high", "Urgent": "urgent"},
    ),
    ("deal", "stage"): (
        {"lead": "PROSPECTING", "qualified": "QUALIFICATION", "proposal": "PROPOSAL", "negotiation": "NEGOTIATION",
         "won": "CLOSED_WON", "lost": "CLOSED_LOST"},
        {"PROSPECTING": "lead", "QUALIFICATION": "qualified", "PROPOSAL": "proposal", "NEGOTIATION": "negotiation",
         "CLOSED_WON": "won", "CLOSED_LOST": "lost"},
    ),
}
# A stage of another pipeline is mapped by its kind (BottleCRM's stage_kind).
STAGE_BY_KIND = {"open": "lead", "won": "won", "lost": "lost"}


def rows_for(entity: str, direction: str | None = None) -> list[FieldMap]:
    """The table's rows for one crm-tui entity (optionally of one direction)."""
    return [r for r in FIELDS if r.entity == entity and r.field and (direction is None or r.direction == direction)]


def mapped_fields(entity: str) -> tuple[str, ...]:
    """crm-tui fields whose value comes from BottleCRM (directions ``both`` and ``pull``)."""
    return tuple(r.field for r in rows_for(entity) if r.direction in ("both", "pull") and r.upstream)  # type: ignore[misc]


def writable_upstream(entity: str) -> tuple[str, ...]:
    """crm-tui fields a client write sends to BottleCRM."""
    return tuple(r.field for r in rows_for(entity, "both"))  # type: ignore[misc]


def pull_only(entity: str) -> tuple[str, ...]:
    """crm-tui fields BottleCRM sets and a client may not change."""
    return tuple(r.field for r in rows_for(entity, "pull"))  # type: ignore[misc]


# ----------------------------------------------------------------------------- values


def ref_id(value: Any) -> str | None:
    """A BottleCRM reference: sent as an id string by some modules, as ``{"id": ...}`` by others."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _datetime(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return format_datetime(parse_datetime(value))
    except ValueError:
        return None


def _money(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except (InvalidOperation, ValueError):
        return None


def _money_up(minor: int | None) -> str | None:
    if minor is None:
        return None
    return str((Decimal(minor) / 100).quantize(Decimal("0.01")))


def _date(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def split_name(name: str) -> tuple[str, str]:
    """'Mary Ann Smith' -> ('Mary Ann', 'Smith'); a single word is a first name only."""
    parts = name.strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")


def enum_from(entity: str, field: str, value: Any) -> str | None:
    """A BottleCRM enum value as crm-tui's, or None when it has no counterpart."""
    return ENUMS[(entity, field)][1].get(value) if isinstance(value, str) else None


def enum_to(entity: str, field: str, value: str | None) -> str | None:
    """A crm-tui enum value as BottleCRM's."""
    return None if value is None else ENUMS[(entity, field)][0][value]


# ----------------------------------------------------------------------------- records

Resolve = Callable[[str, str], str | None]  # (crm-tui entity, BottleCRM id) -> mirror id, or None


def from_upstream(entity: str, row: Mapping[str, Any], resolve: Resolve) -> dict[str, Any] | None:
    """The mapped crm-tui fields of a BottleCRM row (directions ``both`` and ``pull`` only).

    None when the row cannot be mirrored: its account is unknown to the mirror or missing (a
    contact, case or opportunity without an account), or a required value has no counterpart.
    """
    out: dict[str, Any] = {"created_at": _datetime(row.get("created_at"))}
    if entity != "customer":
        account = ref_id(row.get("account"))
        customer_id = resolve("customer", account) if account else None
        if customer_id is None:
            return None
        out["customer_id"] = customer_id
    if entity == "customer":
        out.update(name=_text(row.get("name")), email=_text(row.get("email")), phone=_text(row.get("phone")),
                   city=_text(row.get("city")), country=_text(row.get("country")))
        if not out["name"]:
            return None
    elif entity == "contact":
        name = " ".join(p for p in (_text(row.get("first_name")), _text(row.get("last_name"))) if p)
        if not name:
            return None
        out.update(name=name, title=_text(row.get("title")), email=_text(row.get("email")),
                   phone=_text(row.get("phone")), updated_at=_datetime(row.get("updated_at")))
    elif entity == "ticket":
        out.update(subject=_text(row.get("name")), description=row.get("description") or None,
                   status=enum_from("ticket", "status", row.get("status")),
                   priority=enum_from("ticket", "priority", row.get("priority")),
                   # A paused SLA's deadline is "now + what is left", different on every read.
                   sla_due=None if row.get("sla_paused_at") else _datetime(row.get("resolution_sla_deadline")))
        if not out["subject"] or out["status"] is None or out["priority"] is None:
            return None
    elif entity == "deal":
        stage = enum_from("deal", "stage", row.get("stage")) or STAGE_BY_KIND.get(row.get("stage_kind") or "")
        out.update(title=_text(row.get("name")), stage=stage, amount=_money(row.get("amount")),
                   currency=_text(row.get("currency")), probability=row.get("probability"),
                   close_date=_date(row.get("closed_on")))
        if not out["title"] or stage is None:
            return None
    else:
        raise KeyError(entity)
    return out


def to_upstream(entity: str, fields: Mapping[str, Any], upstream_id_of: Callable[[str, str], str | None]) -> dict[str, Any]:
    """The BottleCRM body for the crm-tui ``fields`` of a write (only ``both`` fields are sent).

    ``upstream_id_of(entity, mirror id)`` translates references. Raises KeyError for a reference
    the mirror cannot translate.
    """
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in writable_upstream(entity):
            continue
        if name == "customer_id":
            account = upstream_id_of("customer", value)
            if account is None:
                raise KeyError(value)
            body["account"] = account
        elif entity == "contact" and name == "name":
            body["first_name"], body["last_name"] = split_name(value or "")
        elif (entity, name) in ENUMS:
            body[_upstream_name(entity, name)] = enum_to(entity, name, value)
        elif entity == "deal" and name == "amount":
            body["amount"] = _money_up(value)
        else:
            body[_upstream_name(entity, name)] = value if value is not None else ("" if _blankable(entity, name) else None)
    return body


def _upstream_name(entity: str, field: str) -> str:
    for r in rows_for(entity):
        if r.field == field and r.upstream:
            return r.upstream
    raise KeyError(field)


def _blankable(entity: str, field: str) -> bool:
    # BottleCRM's email and phone take "" for "none"; its text fields take null.
    return field in ("email", "phone")


def field_of(entity: str, upstream_field: str) -> str:
    """The crm-tui field a BottleCRM validation message is about (its own name if unmapped)."""
    if entity == "contact" and upstream_field in ("first_name", "last_name"):
        return "name"
    if upstream_field == "account":
        return "customer_id"
    for r in rows_for(entity):
        if r.upstream == upstream_field:
            return r.field  # type: ignore[return-value]
    return upstream_field


def same_upstream(entity: str, field: str, mirror_value: Any, pulled_value: Any) -> bool:
    """True when the mirror's value stands for the pulled one (a lossy enum pair included)."""
    if mirror_value == pulled_value:
        return True
    if (entity, field) in ENUMS and mirror_value is not None and pulled_value is not None:
        to_up, _ = ENUMS[(entity, field)]
        return to_up.get(mirror_value) == to_up.get(pulled_value)
    return False


# ----------------------------------------------------------------------------- the table in docs/gateway.md


def doc_rows() -> list[tuple[str, str, str, str, str]]:
    """The field table as docs/gateway.md shows it: (crm-tui, field, BottleCRM, direction, note)."""
    return [(r.entity, r.field or "—", r.upstream or "—", r.direction, r.note) for r in FIELDS]


def enum_doc_rows() -> list[tuple[str, str, str, str]]:
    """The enum tables as docs/gateway.md shows them: (field, crm-tui value, written as, pulled from)."""
    rows = []
    for (entity, name), (to_up, from_up) in ENUMS.items():
        for ours, theirs in to_up.items():
            pulled = ", ".join(k for k, v in from_up.items() if v == ours) or "—"
            rows.append((f"{entity}.{name}", ours, theirs, pulled))
    return rows
