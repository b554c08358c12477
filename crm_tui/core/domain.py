"""The CRM domain: entities, their fields, and the validation rules.

Written once, here, and used by everyone: the server validates batch ops with it, the replica
builds its tables from it, the sync engine checks pulled records against it, and the forms parse
what a user types with it. Nothing here touches a database, the network or the terminal.

Wire formats (what a value looks like in JSON and in both databases):

=========  ==========================================  ============================
kind       JSON value                                  SQLite column
=========  ==========================================  ============================
str, text  string                                      TEXT
int        integer                                     INTEGER
money      integer, in minor units (cents)             INTEGER
bool       true / false                                INTEGER 0/1
date       "YYYY-MM-DD"                                TEXT
datetime   "YYYY-MM-DDTHH:MM:SSZ" (UTC)                TEXT
enum       one of the field's choices                  TEXT
ref        the id of another record, or null           TEXT
tags       list of short strings                       TEXT (JSON array)
=========  ==========================================  ============================
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from crm_tui.core.ids import ID_RE as ID_RE  # re-exported: the domain checks ids with it

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}\Z")
PHONE_RE = re.compile(r"^\+?[0-9 ()./\-]{3,40}\Z")
TAG_RE = re.compile(r"^[\w\-.:/ ]{1,40}\Z", re.UNICODE)
CURRENCY_RE = re.compile(r"^[A-Z]{3}\Z")
COUNTRY_RE = re.compile(r"^[A-Z]{2}\Z")

INT_MIN, INT_MAX = -(2**53), 2**53
MONEY_MAX = 10**15  # minor units: ten trillion in major units is more than any order we will see
MAX_TAGS = 20


class ValidationError(ValueError):
    """One or more fields are invalid. ``errors`` maps field name -> a message a person can act on."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str
    label: str
    required: bool = False
    max_len: int | None = None
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    ref: str | None = None
    writable: bool = True  # False: only the server sets it (numbers, timestamps)
    immutable: bool = False  # settable on create, never changed afterwards
    pattern: re.Pattern[str] | None = None
    pattern_hint: str = ""

    @property
    def sql_type(self) -> str:
        return "INTEGER" if self.kind in ("int", "money", "bool") else "TEXT"


@dataclass(frozen=True, slots=True)
class Entity:
    name: str  # singular, used on the wire: "customer"
    table: str  # plural, used for tables and URLs: "customers"
    label: str
    fields: tuple[Field, ...]
    # How the record hangs off a customer, which is what a sales rep's scope is made of.
    # "self" for customers, "customer_id" for records attached to one, None for global records.
    anchor: str | None
    admin_only: bool = False  # only admins may write it
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def columns(self) -> tuple[str, ...]:
        """Wire columns, in order: id, the fields, version."""
        return ("id", *(f.name for f in self.fields), "version")

    @property
    def writable_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.writable)


def _f(name: str, kind: str, label: str | None = None, **kw: Any) -> Field:
    return Field(name=name, kind=kind, label=label or name.replace("_", " ").capitalize(), **kw)


TIERS = ("bronze", "silver", "gold", "platinum")
ROLES = ("agent", "sales", "admin")
ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
TICKET_STATUSES = ("new", "open", "pending", "solved", "closed")
ACTIVE_TICKET_STATUSES = TICKET_STATUSES[:3]  # still to be worked on: the queue, SLAs, "open tickets"
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
DEAL_STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
ACTIVITY_KINDS = ("note", "call", "email", "visit")
# What came of a call or a visit; only those two kinds carry an outcome, a duration and a contact.
ACTIVITY_OUTCOMES = ("reached", "voicemail", "no_answer", "follow_up", "resolved", "not_interested")
CONVERSATION_KINDS = ("call", "visit")
# An order's history: status changes (recorded by the server) and what agents ask for.
ORDER_EVENT_KINDS = ("status", "cancel_request", "refund_request")
ORDER_REQUEST_KINDS = ("cancel_request", "refund_request")
# Which orders a request may be recorded for: an order not yet shipped can be cancelled; one
# that was paid for can be refunded. Cancelled and refunded orders take no more requests.
ORDER_REQUEST_STATUSES: dict[str, tuple[str, ...]] = {
    "cancel_request": ("pending", "paid"),
    "refund_request": ("paid", "shipped", "delivered"),
}
TASK_STATUSES = ("open", "done")

# How an enum value reads on screen and in `crm-tui agenda`; the protocol, the replica and CSV
# exports keep the value itself. A value not named here reads as itself, with spaces for "_".
VALUE_LABELS = {
    "no_answer": "no answer", "follow_up": "follow-up", "not_interested": "not interested",
    "cancel_request": "cancellation request", "refund_request": "refund request",
}


def value_label(value: object) -> str:
    """What people read for an enum value (``no_answer`` -> ``no answer``); "" for None."""
    if value is None:
        return ""
    text = str(value)
    return VALUE_LABELS.get(text, text.replace("_", " "))

def stage_label(stage: object) -> str:
    """A deal stage as the pipeline's columns name it: 'Negotiation' for ``negotiation``."""
    return value_label(stage).capitalize()


def record_title(entity_name: str, record_id: str, record: Mapping[str, Any] | None) -> str:
    """How a person recognises a record: a name, a ticket number, a deal title; else its id."""
    if not record:
        return record_id
    if entity_name == "ticket" and record.get("number"):
        return f"#{record['number']} {record.get('subject') or ''}".strip()
    if entity_name == "order" and record.get("number"):
        return str(record["number"])
    for key in ("name", "title", "subject"):
        if record.get(key):
            return str(record[key])
    return record_id


# The ticket workflow: new -> open -> pending -> solved -> closed, with the moves agents need
# (straight to solved, back to open, reopen a solved ticket). Closed is final.
TICKET_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("open", "pending", "solved"),
    "open": ("pending", "solved"),
    "pending": ("open", "solved"),
    "solved": ("open", "closed"),
    "closed": (),
}

# Hours from creation to the SLA due time, by priority.
SLA_HOURS = {"urgent": 4, "high": 8, "normal": 24, "low": 72}

_CREATED = _f("created_at", "datetime", "Created", writable=False)
_UPDATED = _f("updated_at", "datetime", "Updated", writable=False)

TERRITORY = Entity(
    "territory", "territories", "Territory",
    (
        _f("name", "str", required=True, max_len=100),
        _f("region", "str", max_len=100),
    ),
    anchor=None, admin_only=True,
)

USER = Entity(
    "user", "users", "User",
    (
        _f("name", "str", required=True, max_len=100),
        _f("email", "str", max_len=254, pattern=EMAIL_RE, pattern_hint="an address like name@example.com"),
        _f("role", "enum", required=True, choices=ROLES),
        _f("team", "str", max_len=60),
        _f("territories", "tags", "Territories"),
        _f("active", "bool"),
    ),
    anchor=None, admin_only=True,
)

CUSTOMER = Entity(
    "customer", "customers", "Customer",
    (
        _f("name", "str", required=True, max_len=200),
        _f("company", "str", max_len=200),
        _f("email", "str", max_len=254, pattern=EMAIL_RE, pattern_hint="an address like name@example.com"),
        _f("phone", "str", max_len=40, pattern=PHONE_RE, pattern_hint="digits, spaces and + ( ) - . /"),
        _f("city", "str", max_len=100),
        _f("country", "str", max_len=2, pattern=COUNTRY_RE, pattern_hint="a two-letter code like DE"),
        _f("tier", "enum", choices=TIERS),
        _f("territory", "ref", required=True, ref="territory"),
        _f("owner_id", "ref", "Owner", ref="user"),
        _f("tags", "tags"),
        _f("lifetime_value", "money", "Lifetime value", min=0, max=MONEY_MAX),
        _CREATED,
        _UPDATED,
    ),
    anchor="self",
)

CONTACT = Entity(
    "contact", "contacts", "Contact",
    (
        _f("customer_id", "ref", "Customer", required=True, ref="customer", immutable=True),
        _f("name", "str", required=True, max_len=200),
        _f("title", "str", max_len=100),
        _f("email", "str", max_len=254, pattern=EMAIL_RE, pattern_hint="an address like name@example.com"),
        _f("phone", "str", max_len=40, pattern=PHONE_RE, pattern_hint="digits, spaces and + ( ) - . /"),
        _f("is_primary", "bool", "Primary"),
        _CREATED,
        _UPDATED,
    ),
    anchor="customer_id",
)

ORDER = Entity(
    "order", "orders", "Order",
    (
        _f("customer_id", "ref", "Customer", required=True, ref="customer", immutable=True),
        _f("number", "str", max_len=40, writable=False),
        _f("order_date", "date", "Date", required=True),
        _f("amount", "money", required=True, min=0, max=MONEY_MAX),
        _f("currency", "str", required=True, max_len=3, pattern=CURRENCY_RE, pattern_hint="a code like EUR"),
        _f("status", "enum", required=True, choices=ORDER_STATUSES),
        _CREATED,
        _UPDATED,
    ),
    anchor="customer_id",
)

TICKET = Entity(
    "ticket", "tickets", "Ticket",
    (
        _f("customer_id", "ref", "Customer", required=True, ref="customer", immutable=True),
        _f("number", "int", writable=False),
        _f("subject", "str", required=True, max_len=200),
        _f("description", "text", max_len=20000),
        _f("status", "enum", required=True, choices=TICKET_STATUSES),
        _f("priority", "enum", required=True, choices=TICKET_PRIORITIES),
        _f("assignee_id", "ref", "Assignee", ref="user"),
        _f("team", "str", max_len=60),
        _f("sla_due", "datetime", "SLA due"),
        _CREATED,
        _UPDATED,
    ),
    anchor="customer_id",
)

DEAL = Entity(
    "deal", "deals", "Deal",
    (
        _f("customer_id", "ref", "Customer", required=True, ref="customer", immutable=True),
        _f("title", "str", required=True, max_len=200),
        _f("stage", "enum", required=True, choices=DEAL_STAGES),
        _f("amount", "money", min=0, max=MONEY_MAX),
        _f("currency", "str", max_len=3, pattern=CURRENCY_RE, pattern_hint="a code like EUR"),
        _f("probability", "int", min=0, max=100),
        _f("close_date", "date", "Close date"),
        _f("owner_id", "ref", "Owner", ref="user"),
        _CREATED,
        _UPDATED,
        _f("lost_reason", "str", "Lost reason", max_len=500),
    ),
    anchor="customer_id",
)

ACTIVITY = Entity(
    "activity", "activities", "Activity",
    (
        _f("customer_id", "ref", "Customer", required=True, ref="customer", immutable=True),
        _f("kind", "enum", required=True, choices=ACTIVITY_KINDS),
        _f("subject", "str", max_len=200),
        _f("body", "text", max_len=20000),
        _f("ticket_id", "ref", "Ticket", ref="ticket", immutable=True),
        _f("deal_id", "ref", "Deal", ref="deal", immutable=True),
        _f("author_id", "ref", "Author", ref="user", writable=False),
        _f("internal", "bool", "Internal"),
        _f("occurred_at", "datetime", "When", required=True),
        _CREATED,
        _UPDATED,
        _f("outcome", "enum", choices=ACTIVITY_OUTCOMES),
        _f("duration_min", "int", "Minutes", min=0, max=24 * 60),
        _f("contact_id", "ref", "Contact", ref="contact"),
    ),
    anchor="customer_id",
)

ORDER_EVENT = Entity(
    "order_event", "order_events", "Order event",
    (
        _f("customer_id", "ref", "Customer", required=True, ref="customer", immutable=True),
        _f("order_id", "ref", "Order", required=True, ref="order", immutable=True),
        _f("kind", "enum", required=True, choices=ORDER_EVENT_KINDS, immutable=True),
        _f("status", "enum", choices=ORDER_STATUSES, immutable=True),
        _f("reason", "text", max_len=2000),
        _f("author_id", "ref", "Author", ref="user", writable=False),
        _f("occurred_at", "datetime", "When", required=True),
        _CREATED,
        _UPDATED,
    ),
    anchor="customer_id",
)

# A follow-up someone owes a customer: due at a time, owned by a user, optionally about one of the
# customer's tickets or deals. ``done_at`` is set when it is completed and cleared when reopened.
TASK = Entity(
    "task", "tasks", "Task",
    (
        _f("customer_id", "ref", "Customer", required=True, ref="customer", immutable=True),
        _f("title", "str", required=True, max_len=200),
        _f("notes", "text", max_len=20000),
        _f("due_at", "datetime", "Due", required=True),
        _f("owner_id", "ref", "Owner", ref="user"),
        _f("status", "enum", required=True, choices=TASK_STATUSES),
        _f("ticket_id", "ref", "Ticket", ref="ticket", immutable=True),
        _f("deal_id", "ref", "Deal", ref="deal", immutable=True),
        _f("done_at", "datetime", "Done"),
        _CREATED,
        _UPDATED,
    ),
    anchor="customer_id",
)

# Bootstrap order: what search needs first (customers, contacts), then the long history. New
# entities go at the end: a snapshot cursor counts entities in this order.
ENTITIES: dict[str, Entity] = {
    e.name: e for e in (TERRITORY, USER, CUSTOMER, CONTACT, TICKET, DEAL, ORDER, ACTIVITY, TASK, ORDER_EVENT)
}
BY_TABLE: dict[str, Entity] = {e.table: e for e in ENTITIES.values()}
CUSTOMER_CHILDREN: tuple[Entity, ...] = tuple(e for e in ENTITIES.values() if e.anchor == "customer_id")


def entity(name: str) -> Entity:
    """The entity called ``name`` (singular or table name); KeyError names the valid ones."""
    e = ENTITIES.get(name) or BY_TABLE.get(name)
    if e is None:
        raise KeyError(f"unknown entity {name!r}; expected one of {', '.join(ENTITIES)}")
    return e


# ----------------------------------------------------------------------------- values


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def format_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> dt.datetime:
    """Parse an ISO 8601 date-time; naive values are taken as UTC. Raises ValueError."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0)


# Currencies shown without a fractional part: ISO 4217's zero-minor-unit currencies, and HUF and
# IDR, whose subunits are out of use (CLDR gives them no cash digits; prices are whole forints and
# rupiah). Amounts are still stored in hundredths of the currency, like every other.
ZERO_DECIMAL_CURRENCIES = frozenset((
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
    "XAF", "XOF", "XPF", "HUF", "IDR",
))


def currency_decimals(currency: str | None) -> int:
    """Decimal places an amount in ``currency`` is shown with: 0 for JPY, KRW, IDR, HUF ..., else 2."""
    return 0 if currency in ZERO_DECIMAL_CURRENCIES else 2


def format_major(minor: int, currency: str | None = None) -> str:
    """An amount in major units as plain digits with the currency's decimals, for files:
    '1234.50', '2632204' for JPY (rounded half up to the whole yen)."""
    return format_amount(minor, currency).replace(",", "")


def format_amount(minor: int, currency: str | None = None) -> str:
    """An amount with thousands separators and the currency's decimals, no currency code:
    '1,234.50', '2,632,204' for JPY (rounded half up to the whole yen)."""
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(int(minor)), 100)
    if currency_decimals(currency) == 0:
        return f"{sign}{major + (cents >= 50):,}"
    return f"{sign}{major:,}.{cents:02d}"


def format_money(minor: int | None, currency: str | None = None) -> str:
    """'1,234.50 EUR', '2,632,204 JPY' (no cents where the currency has none), '' for None."""
    if minor is None:
        return ""
    text = format_amount(minor, currency)
    return f"{text} {currency}" if currency else text


def parse_money(text: str, currency: str | None = None) -> int:
    """'1,234.5' -> 123450 minor units. Raises ValueError with a readable message. In a currency
    shown without decimals (JPY, KRW ...) an amount with a fractional part is refused, not
    rounded: '12000.50' for yen is a typo or another currency's amount, and the user says which."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    whole = currency_decimals(currency) == 0
    example = "12000" if whole else "1234.50"
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount; type digits like {example}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount; type digits like {example}")
    if whole and amount != amount.to_integral_value():
        nearest = format_amount(int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP)) * 100, currency)
        raise ValueError(f"{currency} has no decimals: type a whole amount, like {nearest}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("at most two decimal places")
    return int(amount * 100)


def _check_scalar(f: Field, value: Any) -> Any:
    """Check one wire value against its field; returns the normalised value or raises ValueError."""
    if value is None:
        if f.required:
            raise ValueError("is required")
        return None
    k = f.kind
    if k in ("str", "text", "enum", "ref"):
        if not isinstance(value, str):
            raise ValueError("must be text")
        value = value.strip() if k != "text" else value
        if value == "":
            if f.required:
                raise ValueError("is required")
            return None
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        # The format hint says more than a length limit ("a two-letter code like DE").
        if f.pattern is not None and not f.pattern.match(value):
            raise ValueError(f"should be {f.pattern_hint}" if f.pattern_hint else "has the wrong format")
        if f.max_len is not None and len(value) > f.max_len:
            raise ValueError(f"at most {f.max_len} characters")
        if k == "enum" and value not in f.choices:
            raise ValueError(f"must be one of {', '.join(f.choices)}")
        if k == "ref" and not ID_RE.match(value):
            raise ValueError("is not a valid id")
        return value
    if k in ("int", "money"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number" if k == "int" else "must be an amount in minor units")
        lo = f.min if f.min is not None else INT_MIN
        hi = f.max if f.max is not None else INT_MAX
        if not lo <= value <= hi:
            if k == "money":
                raise ValueError(f"must be between {format_money(lo)} and {format_money(hi)}")
            raise ValueError(f"must be between {lo} and {hi}")
        return value
    if k == "bool":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if k == "date":
        if not isinstance(value, str):
            raise ValueError("must be a date like 2026-01-31")
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise ValueError("must be a date like 2026-01-31") from None
    if k == "datetime":
        if not isinstance(value, str):
            raise ValueError("must be a date and time like 2026-01-31T09:30:00Z")
        try:
            return format_datetime(parse_datetime(value))
        except ValueError:
            raise ValueError("must be a date and time like 2026-01-31T09:30:00Z") from None
    if k == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ValueError("must be a list of tags")
        tags: list[str] = []
        for t in value:
            t = t.strip()
            if not t:
                continue
            if not TAG_RE.match(t):
                raise ValueError(f"tag {t[:40]!r} may use letters, digits, spaces and - . : / only (40 at most)")
            if t not in tags:
                tags.append(t)
        if len(tags) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags")
        return tags
    raise AssertionError(f"unknown field kind {k}")


def validate_fields(
    ent: Entity,
    values: Mapping[str, Any],
    *,
    creating: bool,
    allow_server_fields: bool = False,
) -> dict[str, Any]:
    """Validate the changed fields of an op (or a whole new record when ``creating``).

    Returns the normalised values. Raises ValidationError naming every bad field: unknown
    fields, server-only fields (unless ``allow_server_fields``), immutable fields on update,
    missing required fields on create, and values of the wrong type or out of range.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, value in values.items():
        f = ent.by_name.get(name) if isinstance(name, str) else None
        if f is None:
            errors[str(name)[:64]] = "is not a field of " + ent.name
            continue
        if not f.writable and not allow_server_fields:
            errors[name] = "is set by the server"
            continue
        if f.immutable and not creating:
            errors[name] = "cannot be changed after the record is created"
            continue
        try:
            clean[name] = _check_scalar(f, value)
        except ValueError as exc:
            errors[name] = str(exc)
    if creating:
        for f in ent.fields:
            if f.required and f.writable and clean.get(f.name) is None and f.name not in errors:
                errors[f.name] = "is required"
    if errors:
        raise ValidationError(errors)
    return clean


def validate_record(ent: Entity, record: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a whole record as the server sends it (server-set fields included).

    Used by the client on everything it pulls: a malformed record raises ValidationError and
    is never written to the replica.
    """
    errors: dict[str, str] = {}
    rid = record.get("id")
    if not isinstance(rid, str) or not ID_RE.match(rid):
        errors["id"] = "is not a valid id"
    version = record.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        errors["version"] = "must be a non-negative integer"
    clean: dict[str, Any] = {"id": rid, "version": version}
    for f in ent.fields:
        try:
            clean[f.name] = _check_scalar(f, record.get(f.name))
        except ValueError as exc:
            errors[f.name] = str(exc)
    if errors:
        raise ValidationError(errors)
    return clean


def validate_id(value: Any) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ValidationError({"id": "must be 1-64 letters, digits, '-' or '_'"})
    return value


def check_ticket_transition(old: str | None, new: str) -> None:
    """Raise ValidationError if a ticket may not move from ``old`` to ``new``."""
    if old is None or old == new:
        return
    allowed = TICKET_TRANSITIONS.get(old, ())
    if new not in allowed:
        hint = ", ".join(allowed) if allowed else "nothing (closed tickets are final)"
        raise ValidationError({"status": f"a {old} ticket can move to {hint}, not {new}"})


def check_activity(record: Mapping[str, Any]) -> None:
    """Raise ValidationError if an activity (as it would be stored) breaks the rules for its kind:
    only calls and visits have an outcome, a duration and a contact spoken to."""
    if record.get("kind") in CONVERSATION_KINDS:
        return
    errors = {name: f"only calls and visits have {label}"
              for name, label in (("outcome", "an outcome"), ("duration_min", "a duration"),
                                  ("contact_id", "a contact spoken to"))
              if record.get(name) is not None}
    if errors:
        raise ValidationError(errors)


def check_deal_outcome(record: Mapping[str, Any], changed: Iterable[str]) -> None:
    """Raise ValidationError if a deal (as it would be stored) was just marked won or lost without
    what closing it needs: a close date, and for a lost deal the reason. ``changed`` names the
    fields the write sets; a deal that was already closed is not judged again."""
    changed = set(changed)
    if record.get("stage") not in ("won", "lost") or "stage" not in changed:
        return
    errors: dict[str, str] = {}
    if not record.get("close_date"):
        errors["close_date"] = f"a {record['stage']} deal needs the date it closed"
    if record["stage"] == "lost" and not (record.get("lost_reason") or "").strip():
        errors["lost_reason"] = "say why the deal was lost"
    if errors:
        raise ValidationError(errors)


def reopened_deal_clears(before: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """What else a write must clear when it moves a won or lost deal back to an open stage: it is
    no longer closed, so the date it closed and why it was lost go (a close date the same write
    sets, as the new expected one, stays). ``{}`` for every other write."""
    if before.get("stage") not in ("won", "lost") or changes.get("stage", before.get("stage")) in ("won", "lost"):
        return {}
    return {name: None for name in ("close_date", "lost_reason")
            if name not in changes and before.get(name) is not None}


def check_order_event(record: Mapping[str, Any], order: Mapping[str, Any] | None, *, creating: bool) -> None:
    """Raise ValidationError if a client may not write this order event (as it would be stored).

    Clients record cancellation and refund requests only: status events are the server's own
    record of an order's status changes. A request names why (``reason``), and is only taken
    for an order in a status it can apply to (``ORDER_REQUEST_STATUSES``); ``order`` is the
    order it is for, which must belong to the event's customer."""
    kind = record.get("kind")
    if kind not in ORDER_REQUEST_KINDS:
        raise ValidationError({"kind": "status changes are recorded by the server; "
                                       "record a cancel_request or a refund_request"})
    errors: dict[str, str] = {}
    if not (record.get("reason") or "").strip():
        errors["reason"] = "say why the customer asks for it"
    if record.get("status") is not None:
        errors["status"] = "is recorded by the server"
    if order is not None and creating:
        if order.get("customer_id") != record.get("customer_id"):
            errors["order_id"] = "belongs to another customer"
        elif order.get("status") not in ORDER_REQUEST_STATUSES[kind]:
            what = "cancelled" if kind == "cancel_request" else "refunded"
            allowed = ", ".join(ORDER_REQUEST_STATUSES[kind])
            errors["order_id"] = f"a {order.get('status')} order cannot be {what} (only {allowed} ones)"
    if errors:
        raise ValidationError(errors)


def sla_due_for(priority: str, created: dt.datetime) -> str:
    return format_datetime(created + dt.timedelta(hours=SLA_HOURS.get(priority, 24)))


# ----------------------------------------------------------------------------- forms


def parse_input(f: Field, text: str, currency: str | None = None) -> Any:
    """Turn what a person typed into a form into a wire value (not yet validated); an amount in
    ``currency`` (whole units for JPY, KRW ...).

    Raises ValueError with a message to show next to the field.
    """
    text = text.strip()
    if text == "":
        return [] if f.kind == "tags" else None
    if f.kind in ("int",):
        try:
            return int(text.replace(",", "").replace("_", ""))
        except ValueError:
            raise ValueError("must be a whole number") from None
    if f.kind == "money":
        return parse_money(text, currency)
    if f.kind == "bool":
        lowered = text.lower()
        if lowered in ("y", "yes", "true", "1", "x", "on"):
            return True
        if lowered in ("n", "no", "false", "0", "off"):
            return False
        raise ValueError("type yes or no")
    if f.kind == "tags":
        return [t.strip() for t in text.split(",") if t.strip()]
    if f.kind == "datetime":
        try:
            return format_datetime(parse_datetime(text))
        except ValueError:
            raise ValueError("must be a date and time like 2026-01-31 09:30") from None
    if f.pattern is CURRENCY_RE or f.pattern is COUNTRY_RE:
        return text.upper()
    return text


def format_value(f: Field, value: Any, currency: str | None = None) -> str:
    """The text a form shows for a wire value (the inverse of parse_input); a money field in
    ``currency``'s decimals (none for JPY, KRW ...), without the code."""
    if value is None:
        return ""
    if f.kind == "money":
        return format_amount(value, currency)
    if f.kind == "bool":
        return "yes" if value else "no"
    if f.kind == "tags":
        return ", ".join(value)
    if f.kind == "datetime":
        return str(value).replace("T", " ").rstrip("Z")
    return str(value)


def diff_fields(old: Mapping[str, Any], new: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The fields among ``names`` whose value differs between two records."""
    return {n: new.get(n) for n in names if old.get(n) != new.get(n)}
