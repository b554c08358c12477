"""Applying what the server says to the replica: change-feed pages, and the records that push
results and refetches bring (``ServerApply``).

``apply_page`` is the whole of the client's half of sync-contract promises 1, 3, 8 and 10
(docs/sync-contract.md):

* a page and the cursor that follows it commit in one transaction, so a client killed at any
  instant resumes from where its data is;
* tombstones, scope exits and lost territories remove records (and what hangs off customers);
* a field with a pending local edit (or an unresolved conflict) is never overwritten: the local
  value stays, and the pending edit is re-based on the new server version when the server did
  not touch the fields it changes;
* a page that is not of the protocol's shape raises MalformedPage and changes nothing; a single
  record that fails validation is quarantined (kept with its error for ``status``) and skipped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cache.errors import MalformedPage
from cache.quarantine import Quarantine
from cache.revisions import Revisions
from cache.schema import FTS_COLUMNS, build_derived, build_fragments, drop_derived
from cache.store import Store
from cache.validate import validate_rows
from crm_tui.core.codec import decode_value, encode_value
from crm_tui.core.domain import CUSTOMER_CHILDREN, ENTITIES, Entity
from crm_tui.core.protocol import PHASES, SEGMENT_OPS

FRAGMENTS = ":fragments"  # a bulk_tables entry: that table's trigram index is still to build
_CHUNK = 500


@dataclass
class PageStats:
    upserted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    deleted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    exited_customers: int = 0
    quarantined: int = 0
    rebased_ops: int = 0
    kept_local_fields: int = 0

    @property
    def records(self) -> int:
        return sum(self.upserted.values()) + sum(self.deleted.values())


def check_page(page: Any) -> dict[str, Any]:
    """Check a decoded page against the protocol's shape; raise MalformedPage naming the problem."""
    if not isinstance(page, dict):
        raise MalformedPage("the change page is not a JSON object")
    if not isinstance(page.get("cursor"), str) or not page["cursor"]:
        raise MalformedPage("the change page has no cursor")
    if not isinstance(page.get("has_more"), bool):
        raise MalformedPage("the change page's has_more is not true/false")
    if page.get("phase") not in PHASES:
        raise MalformedPage(f"the change page's phase {page.get('phase')!r} is unknown")
    segments = page.get("segments")
    if not isinstance(segments, list):
        raise MalformedPage("the change page's segments are not a list")
    for i, seg in enumerate(segments):
        where = f"segment {i}"
        if not isinstance(seg, dict) or seg.get("op") not in SEGMENT_OPS:
            raise MalformedPage(f"{where} has an unknown op")
        op = seg["op"]
        if op == "exit_territory":
            if not isinstance(seg.get("territory"), str):
                raise MalformedPage(f"{where} names no territory")
            continue
        if seg.get("entity") not in ENTITIES:
            raise MalformedPage(f"{where} names an unknown entity {seg.get('entity')!r}")
        if op == "upsert":
            cols = seg.get("columns")
            rows = seg.get("rows")
            if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
                raise MalformedPage(f"{where} has no column list")
            if "id" not in cols or "version" not in cols or len(set(cols)) != len(cols):
                raise MalformedPage(f"{where} lacks the id or version column")
            if not isinstance(rows, list) or not set(map(type, rows)) <= {list} or not set(map(len, rows)) <= {len(cols)}:
                raise MalformedPage(f"{where} has rows that do not match its columns")
        else:
            ids = seg.get("ids")
            if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
                raise MalformedPage(f"{where} has no id list")
    progress = page.get("progress")
    if progress is not None:
        if not isinstance(progress, dict):
            raise MalformedPage("the change page's progress is not an object")
        for key in ("done", "total"):
            value = progress.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MalformedPage(f"the change page's progress.{key} is not a count")
        if progress.get("entity") is not None and not isinstance(progress["entity"], str):
            raise MalformedPage("the change page's progress.entity is not a name")
        complete = progress.get("complete", [])
        if not isinstance(complete, list) or not all(isinstance(c, str) for c in complete):
            raise MalformedPage("the change page's progress.complete is not a list of names")
    return page


_PREPARED = "_prepared_gen"
_CHECKED = "_checked"


def prepare_page(page: Any, gen: int) -> dict[str, Any]:
    """Check a page's shape and validate its rows, without touching the database.

    Pure and thread-safe: the sync engine runs it on the next page while the current one is
    being applied. Raises MalformedPage."""
    checked = check_page(page)
    for seg in checked["segments"]:
        if seg["op"] == "upsert":
            seg[_CHECKED] = validate_rows(ENTITIES[seg["entity"]], seg["columns"], seg["rows"], gen)
    checked[_PREPARED] = gen
    return checked


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class ServerApply:
    """Writes what the server says into the replica: change-feed pages (``apply_page``), the
    records of push results and refetches (``apply_records``, ``remove_records``), and a
    replacement sync (``start_resync``, ``finish_resync``). Pending local edits always win."""

    def __init__(self, store: Store, revisions: Revisions, quarantine: Quarantine):
        self._store = store
        self._revisions = revisions
        self.quarantine = quarantine
        self.conn = store.conn
        self._loading: set[str] = set()  # tables bulk-loading in the page being applied

    # ------------------------------------------------------------------ public

    def apply_page(self, page: Any) -> PageStats:
        """Apply one change-feed page and store its cursor, in one transaction.

        Raises MalformedPage (nothing applied) if the page is not of the protocol's shape.
        """
        gen = self.generation()
        if not isinstance(page, dict) or page.get(_PREPARED) != gen:
            prepare_page(page, gen)
        stats = PageStats()
        touched: set[str] = set()
        try:
            with self._store.transaction():
                bulk = self._bulk_tables(page)
                self._loading = set(bulk)
                local_work = self._has_local_work()
                for seg in page["segments"]:
                    op = seg["op"]
                    if op == "upsert":
                        good, bad = seg[_CHECKED]
                        self._write_rows(ENTITIES[seg["entity"]], seg["columns"], good, bad, local_work, stats, touched)
                    elif op == "delete":
                        self._delete(ENTITIES[seg["entity"]], seg["ids"], stats, touched)
                    elif op == "exit":
                        ent = ENTITIES[seg["entity"]]
                        if ent.name == "customer":
                            stats.exited_customers += self._remove_customers(seg["ids"], stats, touched)
                        else:
                            self._delete(ent, seg["ids"], stats, touched)
                    else:
                        stats.exited_customers += self._exit_territory(seg["territory"], stats, touched)
                if bulk:
                    # Nothing is cached from a replica still loading in bulk worth keeping per customer:
                    # one epoch bump per page retires every view, instead of a revision per customer.
                    self._revisions.bump_epoch()
                    self._finish_bulk_tables(page, bulk)
                else:
                    self._revisions.bump_customer_revs(touched)
                self._set_meta("cursor", page["cursor"])
                self._set_meta("phase", page["phase"])
                if page.get("progress") is not None:
                    self._set_meta("progress", page["progress"])
                if page["phase"] != "snapshot" or not page["has_more"]:
                    self._set_meta("bootstrapped", True)
                complete = (page.get("progress") or {}).get("complete")
                if isinstance(complete, list):
                    self._set_meta("complete_entities", [c for c in complete if isinstance(c, str)])
                if page["phase"] == "feed":
                    self._set_meta("complete_entities", list(ENTITIES))
        finally:
            self._loading = set()
        return stats

    def generation(self) -> int:
        """The replacement-sync generation rows are written with (see start_resync)."""
        return self._store.generation()

    def apply_records(self, ent: Entity, records: list[dict[str, Any]]) -> PageStats:
        """Write whole server records (from batch results or a refetch), respecting pending
        edits exactly as a pulled page does. Joins the caller's transaction if there is one."""
        stats = PageStats()
        touched: set[str] = set()
        gen = self.generation()
        columns = list(ent.columns)
        rows = [[rec.get(c) for c in columns] for rec in records]
        with self._store.transaction():
            self._upsert(ent, columns, rows, self._has_local_work(), gen, stats, touched)
            self._revisions.bump_customer_revs(touched)
        return stats

    def remove_records(self, ent: Entity, ids: list[str]) -> PageStats:
        """Remove records that left the user's scope (a customer with what hangs off it)."""
        stats = PageStats()
        touched: set[str] = set()
        with self._store.transaction():
            self._delete(ent, ids, stats, touched)
            self._revisions.bump_customer_revs(touched)
        return stats

    def start_resync(self) -> int:
        """Begin replacing the replica: keep what is here (and the outbox) while a new snapshot
        arrives; ``finish_resync`` then drops what the snapshot did not contain."""
        with self._store.transaction():
            gen = self._store.generation() + 1
            self._set_meta("resync_gen", gen)
            self._set_meta("resync_active", True)
            self.conn.execute("DELETE FROM replica_meta WHERE key IN ('cursor', 'phase', 'progress', 'bootstrapped')")
        return gen

    def finish_resync(self) -> int:
        """Drop records the new snapshot did not bring (unless they carry unsynced local work).
        Returns how many were dropped."""
        dropped = 0
        with self._store.transaction():
            gen = self._store.generation()
            # Records with anything unsynced (pending, rejected, in conflict) are the user's: keep them.
            keep = set(self.conn.execute(
                "SELECT entity, record_id FROM outbox UNION "
                "SELECT entity, record_id FROM conflicts WHERE resolved_at IS NULL").fetchall())
            for ent in ENTITIES.values():
                stale = [r[0] for r in self.conn.execute(f"SELECT id FROM {ent.table} WHERE _gen < ?", (gen,))]
                stale = [rid for rid in stale if (ent.name, rid) not in keep]
                for chunk in _chunks(stale):
                    marks = ",".join("?" * len(chunk))
                    self.conn.execute(f"DELETE FROM {ent.table} WHERE id IN ({marks})", list(chunk))
                dropped += len(stale)
            self._set_meta("resync_active", False)
            self._revisions.bump_epoch()
        return dropped

    # ------------------------------------------------------------------ internals

    def _bulk_tables(self, page: dict[str, Any]) -> list[str]:
        """Tables whose indexes are down for a bulk load; takes them down at a fresh bootstrap.

        Index and search-trigger upkeep row by row is most of a bootstrap's cost, so the first
        snapshot page into an empty replica drops them, and each table gets them back, built in
        one pass, in the transaction of the page that completes it (customers and contacts first,
        so search works early). Crash-safe: the list of tables still to build is in replica_meta,
        committed with the pages."""
        bulk = self._store.get_meta("bulk_tables")
        if bulk is not None:
            return list(bulk)
        if page["phase"] != "snapshot" or self._store.get_meta("cursor") is not None or self._store.get_meta("resync_active"):
            return []
        if any(self.conn.execute(f"SELECT 1 FROM {e.table} LIMIT 1").fetchone() for e in ENTITIES.values()):
            return []
        drop_derived(self.conn)
        bulk = [e.table for e in ENTITIES.values()] + [f"{t}{FRAGMENTS}" for t in FTS_COLUMNS]
        self._set_meta("bulk_tables", bulk)
        return bulk

    def _finish_bulk_tables(self, page: dict[str, Any], bulk: list[str]) -> None:
        complete = set((page.get("progress") or {}).get("complete") or [])
        everything = page["phase"] != "snapshot" or not page["has_more"]
        for ent in ENTITIES.values():
            if ent.table in bulk and (everything or ent.name in complete):
                build_derived(self.conn, ent.table)
                bulk.remove(ent.table)
        # Fragment (trigram) indexes last: search by name and word works without them, so
        # customers and contacts become searchable sooner.
        if everything:
            for table in FTS_COLUMNS:
                if f"{table}{FRAGMENTS}" in bulk:
                    build_fragments(self.conn, table)
                    bulk.remove(f"{table}{FRAGMENTS}")
        if bulk:
            self._set_meta("bulk_tables", bulk)
        else:
            self.conn.execute("DELETE FROM replica_meta WHERE key = 'bulk_tables'")

    def _set_meta(self, key: str, value: Any) -> None:
        self._store.set_meta(key, value)

    def _has_local_work(self) -> bool:
        """Whether any record has a pending op or an open conflict (usually not: then a page
        needs no per-record look-ups at all)."""
        return bool(self.conn.execute(
            "SELECT EXISTS(SELECT 1 FROM outbox WHERE state = 'pending') "
            "OR EXISTS(SELECT 1 FROM conflicts WHERE resolved_at IS NULL)").fetchone()[0])

    def _pending_for(self, entity_name: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Pending ops and open conflicts of these records: what a pull must not overwrite.
        Indexed look-ups for just the page's ids, so cost follows the page, not the outbox."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for seq, op, rid, base_version, fields, base_values in self.conn.execute(
                "SELECT seq, op, record_id, base_version, fields, base_values FROM outbox "
                f"WHERE entity = ? AND state = 'pending' AND record_id IN ({marks}) ORDER BY seq",
                (entity_name, *chunk),
            ):
                out[rid].append({"seq": seq, "op": op, "base_version": base_version,
                                 "fields": json.loads(fields), "base_values": json.loads(base_values)})
            # A delete conflict holds no local values ("mine" is the deletion): pulls refresh it.
            for cid, rid, fields in self.conn.execute(
                "SELECT id, record_id, fields FROM conflicts "
                f"WHERE entity = ? AND resolved_at IS NULL AND kind = 'fields' AND record_id IN ({marks})",
                (entity_name, *chunk),
            ):
                out[rid].append({"conflict": cid, "fields": json.loads(fields)})
        return out

    def _quarantine(self, ent: Entity, rid: Any, error: str, raw: Any) -> None:
        self.quarantine.add(ent.name, rid, error, raw)

    def _upsert(
        self,
        ent: Entity,
        columns: list[str],
        rows: list[list[Any]],
        local_work: bool,
        gen: int,
        stats: PageStats,
        touched: set[str],
    ) -> None:
        good, bad = validate_rows(ent, columns, rows, gen)
        self._write_rows(ent, columns, good, bad, local_work, stats, touched)

    def _write_rows(
        self,
        ent: Entity,
        columns: list[str],
        good: list[tuple[Any, ...]],
        bad: list[tuple[list[Any], str]],
        local_work: bool,
        stats: PageStats,
        touched: set[str],
    ) -> None:
        names = ["id", *(f.name for f in ent.fields), "version", "_gen"]
        for row, error in bad:
            stats.quarantined += 1
            rid = row[columns.index("id")]
            self._quarantine(ent, rid, error, dict(zip(columns, row, strict=False)))
        if ent.anchor is not None:
            anchor_i = 0 if ent.anchor == "self" else names.index("customer_id")
            touched.update(r[anchor_i] for r in good)
        elif good:
            self._revisions.bump_directory_rev()
        pending = self._pending_for(ent.name, [r[0] for r in good]) if local_work else {}
        if pending:
            clean_rows = [r for r in good if r[0] not in pending]
            held = [(list(r), pending[r[0]]) for r in good if r[0] in pending]
        else:
            clean_rows, held = good, []
        if clean_rows and ent.table in self._loading:
            self._upsert_all(ent, names, clean_rows)
        elif clean_rows:
            self._update_changed(ent, names, clean_rows)
        for values, local in held:
            self._upsert_with_local(ent, names, values, local, stats)
        stats.upserted[ent.name] += len(clean_rows) + len(held)

    def _upsert_all(self, ent: Entity, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Write whole rows: the fast path of a bulk load, where tables carry no indexes yet."""
        cols = ", ".join(names)
        marks = ", ".join("?" * len(names))
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
        self.conn.executemany(
            f"INSERT INTO {ent.table} ({cols}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}", rows)

    def _update_changed(self, ent: Entity, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Write rows into a table that is indexed: insert new ones, and for known ones update
        only the columns whose value changed. A full-row write would rewrite every index entry
        and re-index the record for search although one field moved; on a big replica that is
        most of an incremental sync's time. Unchanged rows (a resync's usual case) cost a read."""
        existing: dict[str, tuple[Any, ...]] = {}
        cols = ", ".join(names)
        for chunk in _chunks([r[0] for r in rows]):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {cols} FROM {ent.table} WHERE id IN ({marks})", list(chunk)):
                existing[row[0]] = row
        inserts = []
        by_columns: dict[tuple[int, ...], list[list[Any]]] = defaultdict(list)
        for row in rows:
            old = existing.get(row[0])
            if old is None:
                inserts.append(row)
                continue
            changed = tuple(i for i in range(1, len(names)) if row[i] != old[i])
            if changed:
                by_columns[changed].append([*(row[i] for i in changed), row[0]])
        if inserts:
            self._upsert_all(ent, names, inserts)
        for changed, params in by_columns.items():
            sets = ", ".join(f"{names[i]} = ?" for i in changed)
            self.conn.executemany(f"UPDATE {ent.table} SET {sets} WHERE id = ?", params)

    def _upsert_with_local(
        self, ent: Entity, names: list[str], values: list[Any], local: list[dict[str, Any]], stats: PageStats
    ) -> None:
        """Write a pulled record that has pending local edits: local values win, edits re-base."""
        incoming = dict(zip(names, values, strict=True))
        kinds = {f.name: f.kind for f in ent.fields}
        decoded = {n: decode_value(kinds[n], incoming[n]) for n in kinds}
        stats.rebased_ops += self.rebase(ent, decoded, incoming["version"], local)
        if any(item.get("op") == "delete" for item in local):
            return  # deleted here, not yet confirmed: do not bring it back
        rid = incoming["id"]
        existing = self.conn.execute(f"SELECT * FROM {ent.table} WHERE id = ?", (rid,))
        cols = [d[0] for d in existing.description]
        current = existing.fetchone()
        current_vals = dict(zip(cols, current, strict=True)) if current else {}
        merged = dict(incoming)
        for item in local:
            for name, value in item["fields"].items():
                if name not in kinds:
                    continue
                if "conflict" in item:
                    # Keep "mine" on screen; refresh "theirs" to the server's latest value.
                    value["theirs"] = decoded[name]
                    merged[name] = current_vals.get(name, merged[name])
                else:
                    merged[name] = current_vals.get(name, encode_value(kinds[name], value))
                stats.kept_local_fields += 1
            if "conflict" in item:
                self.conn.execute(
                    "UPDATE conflicts SET fields = ?, server_version = ? WHERE id = ?",
                    (json.dumps(item["fields"]), incoming["version"], item["conflict"]),
                )
        cols_sql = ", ".join(names)
        marks = ", ".join("?" * len(names))
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
        self.conn.execute(
            f"INSERT INTO {ent.table} ({cols_sql}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}",
            [merged[n] for n in names],
        )

    def rebase(self, ent: Entity, server: dict[str, Any], server_version: int, local: list[dict[str, Any]]) -> int:
        """Re-base pending edits of a record on ``server_version`` where that is safe.

        An edit is re-based when the server's values of the fields it changes are still the
        values it was based on (the server did not touch them): sending it against the newer
        version then loses nothing. Otherwise it keeps its older base, and the server will
        answer with a conflict that the user sees. Returns how many ops were re-based.
        """
        rebased = 0
        writable = {f.name for f in ent.fields if f.writable}
        for item in local:
            if item.get("op") not in ("update", "delete"):
                continue
            base = item["base_values"]
            keys = item["fields"].keys() if item["op"] == "update" else [k for k in base if k in writable]
            if (item["base_version"] or 0) >= server_version:
                continue
            if all(server.get(k) == base.get(k) for k in keys):
                self.conn.execute("UPDATE outbox SET base_version = ? WHERE seq = ?", (server_version, item["seq"]))
                item["base_version"] = server_version
                rebased += 1
        return rebased

    def _delete(self, ent: Entity, ids: list[str], stats: PageStats, touched: set[str]) -> None:
        if ent.name == "customer":
            self._remove_customers(ids, stats, touched)
            return
        if ent.anchor is None and ids:
            self._revisions.bump_directory_rev()
        anchor = "customer_id" if ent.anchor == "customer_id" else "NULL"
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for (cust,) in self.conn.execute(
                f"DELETE FROM {ent.table} WHERE id IN ({marks}) RETURNING {anchor}", list(chunk)
            ).fetchall():
                stats.deleted[ent.name] += 1
                if cust:
                    touched.add(cust)

    def _exit_territory(self, territory: str, stats: PageStats, touched: set[str]) -> int:
        """Remove every customer the server has in ``territory``, with what hangs off it.

        The local territory column is not enough: a local edit may have moved a customer away
        (its op's base value, or a conflict's server value, still says where the server has it).
        Records whose customer is not in the replica at all are swept too (a customer created
        during the bootstrap arrives with the feed; one that never will leaves its history behind)."""
        ids = {r[0] for r in self.conn.execute("SELECT id FROM customers WHERE territory = ?", (territory,))}
        ids.update(r[0] for r in self.conn.execute(
            "SELECT record_id FROM outbox WHERE entity = 'customer' AND json_extract(base_values, '$.territory') = ?",
            (territory,)))
        ids.update(r[0] for r in self.conn.execute(
            "SELECT record_id FROM conflicts WHERE entity = 'customer' AND resolved_at IS NULL "
            "AND json_extract(fields, '$.territory.theirs') = ?", (territory,)))
        removed = self._remove_customers(sorted(ids), stats, touched)
        for child in CUSTOMER_CHILDREN:
            n = self.conn.execute(
                f"DELETE FROM {child.table} WHERE version > 0 AND customer_id NOT IN (SELECT id FROM customers) "
                "AND id NOT IN (SELECT record_id FROM outbox WHERE entity = ?)", (child.name,)).rowcount
            stats.deleted[child.name] += max(n, 0)
        return removed

    def _remove_customers(self, ids: list[str], stats: PageStats, touched: set[str]) -> int:
        """Remove customers and everything attached to them; returns how many customers went."""
        removed = 0
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for child in CUSTOMER_CHILDREN:
                n = self.conn.execute(
                    f"DELETE FROM {child.table} WHERE customer_id IN ({marks})", list(chunk)
                ).rowcount
                stats.deleted[child.name] += max(n, 0)
            n = self.conn.execute(f"DELETE FROM customers WHERE id IN ({marks})", list(chunk)).rowcount
            stats.deleted["customer"] += max(n, 0)
            removed += max(n, 0)
            touched.update(chunk)
        return removed
