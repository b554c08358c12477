"""Client writes, through the gateway, to BottleCRM (docs/gateway.md, "Write-through").

:func:`crm_server.batch.apply_batch` calls this strategy around each op; each op runs in its own
store transaction, so the store's write lock is held for one op's upstream calls at most:

1. ``before_op`` (own short transaction): a create gets an entry in the op ledger, committed
   *before* anything is sent upstream.
2. ``check_and_refresh`` (the op's transaction, before the merge logic): the upstream row is
   fetched just before writing and the mirror brought up to it, so a field changed in BottleCRM
   since the client's ``base_version`` has a newer field version and the usual merge/conflict
   rules of the batch decide. A record gone upstream is deleted from the mirror first (the op
   then gets ``deleted``).
3. ``created`` / ``updated`` / ``deleting``: the upstream call. A BottleCRM validation error
   becomes a ``rejected`` op carrying BottleCRM's own message. A create whose answer was lost,
   or an op re-sent while its ledger entry says "sending", looks for the record by its natural
   key before any new POST, so a retry never makes a duplicate.

BottleCRM unreachable: the batch stops with ``503 upstream_unavailable`` (``Retry-After``); ops
already done have their results stored, so the client's re-sent batch replays them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from crm_server.batch import OpRejected
from crm_server.errors import ServiceBusy
from crm_server.gateway.mapping import (
    MODULE_OF,
    UNMAPPED_ENTITIES,
    field_of,
    from_upstream,
    pull_only,
    to_upstream,
)
from crm_server.gateway.mirror import apply_row, delete_local, forget_links, mirror_hash, resolver
from crm_server.gateway.upstream import (
    BottleCRM,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from crm_server.store import LedgerEntry, Store, UpstreamLink, WriteTx
from crm_tui.core.domain import Entity, parse_datetime
from crm_tui.core.protocol import Op

log = logging.getLogger("crm_server.gateway")

# What identifies a record created by the gateway when its upstream id was never heard.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "customer": ("name", "email"),
    "contact": ("customer_id", "name", "email"),
    "ticket": ("customer_id", "subject"),
    "deal": ("customer_id", "title"),
}
CLOCK_SKEW = 120.0  # seconds: a candidate must be created after the first attempt began, give or take this
LOCAL_ONLY = ("territory", "user")  # the gateway's own directory, never upstream
RETRY_AFTER = "5"


def _unavailable(exc: UpstreamError) -> ServiceBusy:
    log.warning("BottleCRM write failed: %s", exc)
    return ServiceBusy("BottleCRM is unreachable or failing; nothing more was done, retry shortly",
                       code="upstream_unavailable", headers={"Retry-After": RETRY_AFTER})


class BottleWriteThrough:
    """The write-through strategy of a BottleCRM gateway (see the module docstring)."""

    def __init__(self, store: Store, upstream: BottleCRM, territory: str):
        self.store, self.upstream, self.territory = store, upstream, territory
        self._pipeline: str | None = None
        self._first_attempt: set[str] = set()  # op ids whose ledger entry this request made

    # ------------------------------------------------------------------ 1. before the op's transaction

    def before_op(self, raw: Any) -> None:
        """Write the ledger entry of a create (own transaction) unless the op was seen before."""
        if not isinstance(raw, dict) or raw.get("op") != "create" or raw.get("entity") not in MODULE_OF:
            return
        op_id, record_id, fields = raw.get("op_id"), raw.get("id"), raw.get("fields")
        if not (isinstance(op_id, str) and isinstance(record_id, str) and isinstance(fields, dict)):
            return  # malformed: the batch rejects it
        entity = raw["entity"]
        with self.store.write() as tx:
            if tx.op_result(op_id) is not None or tx.gateway_ledger(op_id) is not None:
                self._first_attempt.discard(op_id)  # seen before: an earlier attempt may have created it
                return
            key = {k: fields.get(k) for k in NATURAL_KEYS[entity]}
            tx.put_gateway_ledger(LedgerEntry(op_id, entity, record_id, key, "sending", None, time.time()))
        self._first_attempt.add(op_id)

    # ------------------------------------------------------------------ 2. in the op's transaction

    def check_and_refresh(self, tx: WriteTx, op: Op, ent: Entity) -> None:
        """Reject what BottleCRM cannot hold; bring the mirror row up to BottleCRM's current one."""
        if ent.name in UNMAPPED_ENTITIES:
            raise OpRejected("validation", UNMAPPED_ENTITIES[ent.name], {"entity": "has no BottleCRM counterpart"})
        if ent.name in LOCAL_ONLY or op.op == "create":
            return
        current = tx.get(ent, op.id)
        if op.op == "update" and current is not None:
            fixed = [f for f in pull_only(ent.name) if f in op.fields and op.fields[f] != current.record.get(f)]
            if fixed:
                raise OpRejected("validation", "BottleCRM sets these fields", {f: "set by BottleCRM; cannot be changed here" for f in fixed})
        link = tx.gateway_link(ent.name, local_id=op.id)
        if link is None:
            return  # not in the mirror: the batch answers not_found / deleted
        try:
            row = self.upstream.get(MODULE_OF[ent.name], link.upstream_id)
        except UpstreamError as exc:
            raise _unavailable(exc) from exc
        if row is None:
            delete_local(tx, ent.name, op.id)
        else:
            apply_row(tx, ent.name, row, self.territory)

    # ------------------------------------------------------------------ 3. the upstream calls

    def created(self, tx: WriteTx, ent: Entity, op_id: str, record: Mapping[str, Any]) -> None:
        """Create the record upstream (or find the one an earlier attempt made) and link it."""
        if ent.name in LOCAL_ONLY:
            return
        entry = tx.gateway_ledger(op_id)
        if entry is None:  # a create re-sent after its result was stored never gets here
            entry = LedgerEntry(op_id, ent.name, record["id"], {}, "sending", None, time.time())
        upstream_id = None
        if op_id not in self._first_attempt:
            upstream_id = self._find_earlier(tx, ent, record, entry)
        if upstream_id is None:
            upstream_id = self._post(tx, ent, record, entry)
        self._first_attempt.discard(op_id)
        # A scan may have mirrored the upstream record under its own id before it was linked here.
        adopted = tx.gateway_link(ent.name, upstream_id=upstream_id)
        if adopted is not None and adopted.local_id != record["id"]:
            delete_local(tx, ent.name, adopted.local_id)
        tx.set_gateway_link(UpstreamLink(ent.name, record["id"], upstream_id, mirror_hash(ent.name, record)))
        tx.put_gateway_ledger(dataclasses.replace(entry, state="done", upstream_id=upstream_id))

    def updated(self, tx: WriteTx, ent: Entity, record_id: str, changes: Mapping[str, Any]) -> None:
        """PATCH the mapped fields that changed; fields without a counterpart stay in the mirror."""
        if ent.name in LOCAL_ONLY:
            return
        link = tx.gateway_link(ent.name, local_id=record_id)
        if link is None:
            raise OpRejected("not_found", f"this {ent.label.lower()} is not linked to a BottleCRM record")
        body = self._body(tx, ent, changes)
        if body:
            try:
                self.upstream.update(MODULE_OF[ent.name], link.upstream_id, body)
            except UpstreamRejected as exc:
                raise self._rejection(ent, exc) from exc
            except UpstreamNotFound as exc:
                raise OpRejected("deleted", f"this {ent.label.lower()} was deleted in BottleCRM") from exc
            except UpstreamError as exc:
                raise _unavailable(exc) from exc
        stored = tx.get(ent, record_id)
        if stored is not None:
            tx.set_gateway_link(dataclasses.replace(link, content_hash=mirror_hash(ent.name, stored.record)))

    def deleting(self, tx: WriteTx, ent: Entity, record_id: str) -> None:
        """DELETE upstream (an account takes its cases and opportunities with it, there and here)."""
        if ent.name in LOCAL_ONLY:
            return
        link = tx.gateway_link(ent.name, local_id=record_id)
        if link is not None:
            try:
                self.upstream.delete(MODULE_OF[ent.name], link.upstream_id)
            except UpstreamRejected as exc:
                raise self._rejection(ent, exc) from exc
            except UpstreamError as exc:
                raise _unavailable(exc) from exc
        forget_links(tx, ent.name, record_id)

    # ------------------------------------------------------------------ helpers

    def _body(self, tx: WriteTx, ent: Entity, fields: Mapping[str, Any]) -> dict[str, Any]:
        def upstream_id_of(entity: str, local_id: str) -> str | None:
            link = tx.gateway_link(entity, local_id=local_id)
            return None if link is None else link.upstream_id

        try:
            return to_upstream(ent.name, fields, upstream_id_of)
        except KeyError as exc:
            raise OpRejected("not_found", "the customer is not linked to a BottleCRM account", {"customer_id": "not in BottleCRM"}) from exc

    def _post(self, tx: WriteTx, ent: Entity, record: Mapping[str, Any], entry: LedgerEntry) -> str:
        body = self._body(tx, ent, record)
        module = MODULE_OF[ent.name]
        if module in ("cases", "opportunities"):
            body.update(teams=[], assigned_to=[], contacts=[])
        try:
            if module == "opportunities":
                body["pipeline"] = self._default_pipeline()
            return self.upstream.create(module, body)
        except UpstreamRejected as exc:
            raise self._rejection(ent, exc) from exc
        except UpstreamUnavailable as exc:
            if exc.maybe_applied:
                # The answer was lost, not necessarily the create: look before anything else.
                found = self._find_earlier(tx, ent, record, entry)
                if found is not None:
                    return found
            raise _unavailable(exc) from exc
        except UpstreamError as exc:
            raise _unavailable(exc) from exc

    def _find_earlier(self, tx: WriteTx, ent: Entity, record: Mapping[str, Any], entry: LedgerEntry) -> str | None:
        """The upstream id of a record an earlier attempt of this create made, if there is one."""
        module = MODULE_OF[ent.name]
        filters = {"name": str(record.get("name") or record.get("subject") or record.get("title") or "")}
        if ent.name == "contact":
            filters["name"] = str(record.get("name") or "").rsplit(" ", 1)[-1]
        if ent.name in ("ticket", "deal"):
            account = tx.gateway_link("customer", local_id=record["customer_id"])
            if account is None:
                return None
            filters["account"] = account.upstream_id
        try:
            rows = list(self.upstream.list_rows(module, **filters))
        except UpstreamError as exc:
            raise _unavailable(exc) from exc
        resolve = resolver(tx)
        key = NATURAL_KEYS[ent.name]
        for row in rows:
            mapped = from_upstream(ent.name, row, resolve)
            if mapped is None or any(mapped.get(k) != record.get(k) for k in key):
                continue
            created = mapped.get("created_at")
            if created and _epoch(created) < entry.started_at - CLOCK_SKEW:
                continue  # older than the first attempt: someone else's record
            link = tx.gateway_link(ent.name, upstream_id=row["id"])
            if link is not None and link.local_id not in (row["id"], record["id"]):
                continue  # another client record's upstream twin
            log.info("a %s created earlier for op %s was found in BottleCRM; not creating it again", ent.name, entry.op_id)
            return row["id"]
        return None

    def _default_pipeline(self) -> str:
        if self._pipeline is None:
            self._pipeline = self.upstream.default_pipeline()
        return self._pipeline

    @staticmethod
    def _rejection(ent: Entity, exc: UpstreamRejected) -> OpRejected:
        fields = {field_of(ent.name, k): v for k, v in exc.fields.items()}
        return OpRejected("validation", str(exc), fields)


def _epoch(stamp: str) -> float:
    return parse_datetime(stamp).timestamp()
