"""Writing what BottleCRM holds into the mirror (inside a store write transaction).

The mirror is an ordinary crm-server store: every change goes through :class:`WriteTx`, so it
gets a commit sequence, per-field versions and a change row, and the unchanged feed carries it
to every replica. Only mapped fields are ever written from upstream; fields with no BottleCRM
counterpart keep whatever the gateway's users gave them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from crm_server.gateway.mapping import MODULE_OF, from_upstream, mapped_fields, same_upstream
from crm_server.store import UpstreamLink, WriteTx
from crm_tui.core.domain import (
    CUSTOMER_CHILDREN,
    ENTITIES,
    ValidationError,
    format_datetime,
    utcnow,
    validate_fields,
)

log = logging.getLogger("crm_server.gateway")

# Customers first: every other mirrored record hangs off one.
ORDER = ("customer", "contact", "ticket", "deal")


def content_hash(values: Mapping[str, Any]) -> str:
    """A short stable hash of mapped field values (what decides "changed upstream")."""
    return hashlib.sha256(orjson.dumps(dict(values), option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def mirror_hash(entity: str, record: Mapping[str, Any]) -> str:
    """The content hash of a mirror record's mapped fields."""
    return content_hash({f: record.get(f) for f in mapped_fields(entity)})


def resolver(tx: WriteTx):
    """(entity, upstream id) -> mirror id, through the links."""

    def resolve(entity: str, upstream_id: str) -> str | None:
        link = tx.gateway_link(entity, upstream_id=upstream_id)
        return None if link is None else link.local_id

    return resolve


def apply_row(tx: WriteTx, entity: str, row: Mapping[str, Any], territory: str, *, skip_after: int | None = None) -> str:
    """Bring the mirror up to one upstream row. Returns what happened: "unchanged", "inserted",
    "updated", "deleted" (it can no longer be mirrored), "skipped" (the mirror record changed
    after ``skip_after``, i.e. a write-through wrote it while this row was being fetched) or
    "invalid" (the row breaks crm-tui's rules; logged, not mirrored).
    """
    upstream_id = row["id"]
    link = tx.gateway_link(entity, upstream_id=upstream_id)
    mapped = from_upstream(entity, row, resolver(tx))
    if mapped is None:
        if link is not None:
            delete_local(tx, entity, link.local_id)
            return "deleted"
        return "unchanged"
    digest = content_hash(mapped)
    if link is not None and link.content_hash == digest:
        return "unchanged"
    ent = ENTITIES[entity]
    current = tx.get(ent, link.local_id) if link is not None else None
    if current is not None and skip_after is not None and current.version > skip_after:
        return "skipped"
    stamp = format_datetime(utcnow())
    if current is None:
        record = {"id": link.local_id if link is not None else upstream_id, **mapped}
        if entity == "customer":
            record["territory"] = territory
        if entity == "ticket":
            record["number"] = tx.next_number("ticket")
        record["updated_at"] = record.get("updated_at") or record.get("created_at") or stamp
        record["created_at"] = record.get("created_at") or stamp
        if not _valid(ent, {k: v for k, v in record.items() if k != "id"}, upstream_id):
            return "invalid"
        tx.insert(ent, record)
        outcome = "inserted"
    else:
        changes = {f: v for f, v in mapped.items() if not same_upstream(entity, f, current.record.get(f), v)}
        outcome = "unchanged"
        if changes:
            if "updated_at" not in changes and "updated_at" in ent.by_name:
                changes["updated_at"] = stamp
            merged = {k: v for k, v in {**current.record, **changes}.items() if k not in ("id", "version")}
            if not _valid(ent, merged, upstream_id):
                return "invalid"
            tx.update(ent, current.record["id"], changes)
            outcome = "updated"
    tx.set_gateway_link(UpstreamLink(entity, record["id"] if current is None else current.record["id"], upstream_id, digest))
    return outcome


def _valid(ent, values: dict[str, Any], upstream_id: str) -> bool:
    try:
        validate_fields(ent, values, creating=True, allow_server_fields=True)
    except ValidationError as exc:
        log.warning("BottleCRM %s %s breaks crm-tui's rules and is not mirrored: %s",
                    MODULE_OF[ent.name], upstream_id, "; ".join(exc.errors))
        return False
    return True


def attached_ids(tx: WriteTx, customer_id: str) -> list[tuple[str, str]]:
    """(entity, id) of every mirror record attached to a customer."""
    out = []
    for child in CUSTOMER_CHILDREN:
        after = None
        while True:
            rows = tx.list_records(child, after=after, limit=500, filters={"customer_id": customer_id}, territories=None)
            out += [(child.name, r["id"]) for r in rows]
            if len(rows) < 500:
                break
            after = rows[-1]["id"]
    return out


def forget_links(tx: WriteTx, entity: str, local_id: str) -> None:
    """Drop the links of a record about to be deleted, and of everything attached to a customer."""
    if entity == "customer":
        for child, child_id in attached_ids(tx, local_id):
            tx.drop_gateway_link(child, child_id)
    tx.drop_gateway_link(entity, local_id)


def delete_local(tx: WriteTx, entity: str, local_id: str) -> None:
    """Delete a mirror record (a customer with everything attached, as BottleCRM cascades) and its links."""
    forget_links(tx, entity, local_id)
    if tx.get(ENTITIES[entity], local_id) is not None:
        tx.delete(ENTITIES[entity], local_id)
