"""Record reads and writes shared by both backends; each backend fills in its dialect.

Statements are written once, with ``?`` placeholders (PostgreSQL's backend turns them into
``%s``). What differs between the backends is a handful of hooks: how a row becomes JSON, how a
feed position is compared, how a row is locked, how sequence numbers are taken.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import orjson

from crm_server.store.base import (
    ChangeRow,
    MonthRevenue,
    Position,
    ReadTx,
    RecordMissing,
    StoredOpResult,
    StoredRecord,
    WriteTx,
)
from crm_server.store.schema import PARTITIONED, is_scoped, q, select_columns
from crm_server.store.tokens import Device, TokenCheck, TokenInfo, TokenReads, TokenWrites
from crm_tui.core.domain import CUSTOMER_CHILDREN, ENTITIES, Entity

_CHUNK = 5000  # ids per IN (...) list
_COLS = {e.name: select_columns(e) for e in ENTITIES.values()}
ORDER = ENTITIES["order"]
USER = ENTITIES["user"]
# Orders that count as revenue.
REVENUE_EXCLUDES = ("cancelled", "refunded")


def merge_rows(lists: Iterable[Iterable[ChangeRow]], limit: int) -> list[ChangeRow]:
    """Merge per-territory change rows (each list in position order) into the first ``limit``,
    dropping a row met twice (a move within the user's territories is in two ranges)."""
    out: list[ChangeRow] = []
    last: Position | None = None
    for row in heapq.merge(*lists, key=lambda r: (r.tx, r.seq)):
        if row.pos == last:
            continue
        last = row.pos
        out.append(row)
        if len(out) >= limit:
            break
    return out


class SqlReadTx(TokenReads, ReadTx):
    """The reads of :class:`ReadTx` over a DB-API connection; a backend supplies the hooks below."""

    # SELECT list of a change row; the first column is the position's transaction part.
    CHANGE_COLUMNS = "0, seq, entity, record_id, kind, territory, old_territory"
    # Whether change rows carry ``part_date``: the partition key (orders: order_date) of the
    # record on its upsert row, so the feed reads a changed order from its month only.
    CHANGE_DATE = False

    def __init__(self, conn: Any):
        self.conn = conn

    # ------------------------------------------------------------------ hooks

    def sql(self, text: str) -> str:
        """A statement with ``?`` placeholders in this backend's form."""
        return text

    @abstractmethod
    def to_wire(self, ent: Entity, row: Sequence[Any]) -> dict[str, Any]:
        """A row in ``ent.columns`` order -> the wire record."""

    @abstractmethod
    def to_sql(self, ent: Entity, name: str, value: Any) -> Any:
        """One wire value -> the value stored in its column."""

    @abstractmethod
    def load_versions(self, value: Any) -> dict[str, int]:
        """The stored ``field_versions`` -> a dict."""

    @abstractmethod
    def dump_versions(self, versions: dict[str, int]) -> Any:
        """A dict -> the stored ``field_versions``."""

    @abstractmethod
    def json_row(self, ent: Entity) -> str:
        """An SQL expression: the JSON text of a row, a list in ``ent.columns`` order."""

    @abstractmethod
    def json_agg(self, expr: str) -> str:
        """An SQL aggregate joining JSON texts with commas."""

    @abstractmethod
    def range_clause(self, after: Position, head: Position) -> tuple[str, list[Any]]:
        """(condition, params) selecting change rows with ``after < pos <= head``."""

    POSITION_ORDER = "seq"
    LOCK = ""  # appended to a SELECT of a record that is about to change
    SHARE = ""  # appended to a SELECT of a customer whose territory a new record copies

    # ------------------------------------------------------------------ helpers

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(sql), params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._exec(sql, params).fetchone()
        return None if row is None else row[0]

    def _change(self, row: Sequence[Any]) -> ChangeRow:
        return ChangeRow(int(row[0]), int(row[1]), *row[2:])

    # ------------------------------------------------------------------ reads

    def user_id_for_token(self, token_hash: str) -> str | None:
        return self._one("SELECT user_id FROM tokens WHERE hash = ?", (token_hash,))

    def token_check(self, token_hash: str, device_id: str | None) -> TokenCheck:
        # The token, the device and the token's user in one statement (every request starts
        # with them; on PostgreSQL each would be a round trip).
        user_cols = ", ".join(f"u.{q(c)}" for c in USER.columns)
        row = self._exec(
            "SELECT t.user_id, t.expires_at, t.lifetime, t.revoked_device,"
            " EXISTS (SELECT 1 FROM devices WHERE device_id = ? AND revoked_at IS NOT NULL),"
            " d.user_id, d.device_id, d.name, d.first_seen, d.last_seen, d.revoked_at,"
            " EXISTS (SELECT 1 FROM device_tokens WHERE token_hash = ? AND device_id = ?),"
            f" {user_cols}, u.field_versions"
            " FROM (SELECT 1) AS one LEFT JOIN tokens AS t ON t.hash = ?"
            " LEFT JOIN devices AS d ON d.user_id = t.user_id AND d.device_id = ?"
            " LEFT JOIN users AS u ON u.id = t.user_id",
            (device_id, token_hash, device_id, token_hash, device_id),
        ).fetchone()
        info = None if row[0] is None else TokenInfo(
            row[0], None if row[1] is None else int(row[1]), None if row[2] is None else int(row[2]), row[3])
        device = None if row[5] is None else Device(*row[5:11])
        user = None if row[12] is None else self._stored(USER, row[12:])
        return TokenCheck(bool(row[4]), info, device, bool(row[11]), user=user, user_read=True)

    def _exec_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement run for each of ``rows`` (the driver sends them together)."""
        self.conn.executemany(self.sql(sql), rows)

    def _get(self, ent: Entity, record_id: str, suffix: str) -> StoredRecord | None:
        extra = ", territory" if ent.anchor == "customer_id" else ""
        row = self._exec(
            f"SELECT {_COLS[ent.name]}{extra}, field_versions FROM {q(ent.table)} WHERE id = ?{suffix}", (record_id,)
        ).fetchone()
        return None if row is None else self._stored(ent, row)

    def get_many(self, ent: Entity, record_ids: Sequence[str], *, share: bool = False,
                 partitions: Sequence[Any] = ()) -> dict[str, StoredRecord]:
        return self._get_many(ent, record_ids, self.SHARE if share else "", partitions)

    def _get_many(self, ent: Entity, record_ids: Sequence[str], suffix: str,
                  partitions: Sequence[Any] = ()) -> dict[str, StoredRecord]:
        extra = ", territory" if ent.anchor == "customer_id" else ""
        ids = sorted(set(record_ids))  # locks taken in id order: two batches never wait on each other in a ring
        keys = sorted({self.to_sql(ent, PARTITIONED[ent.name], k) for k in partitions}) if ent.name in PARTITIONED else []
        prune = f" AND {q(PARTITIONED[ent.name])} IN ({','.join('?' * len(keys))})" if keys else ""
        out: dict[str, StoredRecord] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = self._exec(
                f"SELECT {_COLS[ent.name]}{extra}, field_versions FROM {q(ent.table)}"
                f" WHERE id IN ({','.join('?' * len(chunk))}){prune} ORDER BY id{suffix}", [*chunk, *keys]
            ).fetchall()
            for row in rows:
                out[row[0]] = self._stored(ent, row)
        return out

    def _stored(self, ent: Entity, row: Sequence[Any]) -> StoredRecord:
        n = len(ent.columns)
        record = self.to_wire(ent, row[:n])
        if ent.anchor == "customer_id":
            territory = row[n]
        elif ent.anchor == "self":
            territory = record["territory"]
        else:
            territory = None
        return StoredRecord(record=record, territory=territory, field_versions=self.load_versions(row[-1]))

    def get(self, ent: Entity, record_id: str) -> StoredRecord | None:
        return self._get(ent, record_id, "")

    def id_states(self, ent: Entity, record_ids: Sequence[str]) -> dict[str, str]:
        # A record's only change row other than moves (see SqlWriteTx._log), unique per id.
        ids = sorted(set(record_ids))
        out: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            out.update(self._exec(
                # "kind <> 'move'": the partial index changes_record, as tombstone() below.
                f"SELECT record_id, kind FROM changes WHERE entity = ? AND record_id IN ({','.join('?' * len(chunk))})"
                " AND kind <> 'move'",
                (ent.name, *chunk),
            ).fetchall())
        return out

    def tombstone(self, ent: Entity, record_id: str) -> ChangeRow | None:
        row = self._exec(
            # "kind <> 'move'" names the partial index changes_record: SQLite does not infer it.
            f"SELECT {self.CHANGE_COLUMNS} FROM changes WHERE entity = ? AND record_id = ? AND kind <> 'move'"
            " AND kind = 'delete'",
            (ent.name, record_id),
        ).fetchone()
        return None if row is None else self._change(row)

    def list_records(
        self,
        ent: Entity,
        *,
        after: str | None,
        limit: int,
        filters: Mapping[str, Any],
        territories: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        where, params = [], []
        for name, value in filters.items():
            if name not in ent.by_name:  # never let a caller name a column we do not know
                raise KeyError(name)
            where.append(f"{q(name)} = ?")
            params.append(self.to_sql(ent, name, value))
        if after is not None:
            where.append("id > ?")
            params.append(after)
        sql = f"SELECT {_COLS[ent.name]} FROM {q(ent.table)}"
        if territories is None or not is_scoped(ent):
            clause = (" WHERE " + " AND ".join(where)) if where else ""
            rows = self._exec(f"{sql}{clause} ORDER BY id LIMIT ?", (*params, limit)).fetchall()
        else:
            # One index range per territory, merged by id: cheaper than sorting a whole territory.
            clause = " WHERE " + " AND ".join(["territory = ?", *where])
            per_territory = [
                self._exec(f"{sql}{clause} ORDER BY id LIMIT ?", (t, *params, limit)).fetchall()
                for t in sorted(set(territories))
            ]
            rows = list(itertools.islice(heapq.merge(*per_territory, key=lambda r: r[0]), limit))
        return [self.to_wire(ent, r) for r in rows]

    def count(self, ent: Entity, territories: Sequence[str] | None) -> int:
        if territories is None or not is_scoped(ent):
            return int(self._one(f"SELECT count(*) FROM {q(ent.table)}"))
        return sum(
            int(self._one(f"SELECT count(*) FROM {q(ent.table)} WHERE territory = ?", (t,))) for t in set(territories)
        )

    def count_all(self, ents: Sequence[Entity], territories: Sequence[str] | None) -> int:
        # One statement (one round trip on PostgreSQL) for a snapshot's whole denominator.
        parts, params = [], []
        names = sorted(set(territories or ()))
        for ent in ents:
            if territories is None or not is_scoped(ent):
                parts.append(f"(SELECT count(*) FROM {q(ent.table)})")
            elif names:
                parts.append(f"(SELECT count(*) FROM {q(ent.table)} WHERE territory IN ({','.join('?' * len(names))}))")
                params += names
        if not parts:
            return 0
        return int(self._one("SELECT " + " + ".join(parts), params))

    def page_json(
        self, ent: Entity, *, territory: str | None, after: str, limit: int
    ) -> tuple[str | None, int, str | None]:
        where = "territory = ? AND id > ?" if territory is not None else "id > ?"
        params = (territory, after, limit) if territory is not None else (after, limit)
        sql = (
            f"SELECT {self.json_agg('j')}, count(*), max(id) FROM "
            f"(SELECT id, {self.json_row(ent)} AS j FROM {q(ent.table)} WHERE {where} ORDER BY id LIMIT ?) AS page"
        )
        rows, n, last = self._exec(sql, params).fetchone()
        return rows, int(n), last

    def rows_json(self, ent: Entity, ids: Sequence[str], dates: Sequence[Any] = ()) -> dict[str, str]:
        out: dict[str, str] = {}
        expr = self.json_row(ent)
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            out.update(self._exec(f"SELECT id, {expr} FROM {q(ent.table)} WHERE id IN ({marks})", chunk).fetchall())
        return out

    def changes_after(
        self, after: Position, head: Position, limit: int, territories: Sequence[str] | None
    ) -> list[ChangeRow]:
        rng, params = self.range_clause(after, head)
        base = f"SELECT {self.CHANGE_COLUMNS} FROM changes WHERE "
        tail = f" AND {rng} ORDER BY {self.POSITION_ORDER} LIMIT ?"
        if territories is None:
            rows = self._exec(f"{base}{rng} ORDER BY {self.POSITION_ORDER} LIMIT ?", (*params, limit)).fetchall()
            return [self._change(r) for r in rows]
        ranges = [self._exec(f"{base}territory IS NULL{tail}", (*params, limit)).fetchall()]
        for t in sorted(set(territories)):
            ranges.append(self._exec(f"{base}territory = ?{tail}", (t, *params, limit)).fetchall())
            ranges.append(self._exec(f"{base}kind = 'move' AND old_territory = ?{tail}", (t, *params, limit)).fetchall())
        return merge_rows(([self._change(r) for r in rows] for rows in ranges), limit)

    def has_customers_in(self, territory: str) -> bool:
        return self._one("SELECT 1 FROM customers WHERE territory = ? LIMIT 1", (territory,)) is not None

    def recent_orders(self, customer_id: str, *, since: str, limit: int) -> list[dict[str, Any]]:
        rows = self._exec(
            f"SELECT {_COLS['order']} FROM orders WHERE customer_id = ? AND order_date >= ?"
            " ORDER BY order_date DESC, id DESC LIMIT ?",
            (customer_id, self.to_sql(ORDER, "order_date", since), limit),
        ).fetchall()
        return [self.to_wire(ORDER, r) for r in rows]

    def revenue_by_month(
        self, *, since: str, until: str, territories: Sequence[str] | None
    ) -> list[MonthRevenue]:
        params: list[Any] = [self.to_sql(ORDER, "order_date", since), self.to_sql(ORDER, "order_date", until)]
        where = "order_date >= ? AND order_date < ? AND status NOT IN ('cancelled', 'refunded')"
        if territories is not None:
            names = sorted(set(territories)) or [""]
            where += f" AND territory IN ({','.join('?' * len(names))})"
            params += names
        rows = self._exec(
            f"SELECT {self.month_expr('order_date')} AS month, currency, sum(amount), count(*) FROM orders"
            f" WHERE {where} GROUP BY 1, currency ORDER BY 1, currency",
            params,
        ).fetchall()
        return [MonthRevenue(str(m), c, int(a), int(n)) for m, c, a, n in rows]

    def month_expr(self, column: str) -> str:
        """An SQL expression: "YYYY-MM" of a date column."""
        return f"substr({column}, 1, 7)"


class SqlWriteTx(TokenWrites, SqlReadTx, WriteTx):
    """The writes of :class:`WriteTx`; a backend supplies sequence numbers and savepoints."""

    def __init__(self, conn: Any):
        super().__init__(conn)
        self.allocated = False
        self._savepoints = 0

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._exec(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._exec(f"ROLLBACK TO SAVEPOINT {name}")
            self._exec(f"RELEASE SAVEPOINT {name}")
            raise
        self._exec(f"RELEASE SAVEPOINT {name}")

    @abstractmethod
    def note_commit(self) -> None:
        """Called just before COMMIT: record the commit (backend bookkeeping)."""

    def commit(self) -> None:
        """:meth:`note_commit`, then COMMIT."""
        self.note_commit()
        self.conn.execute("COMMIT")

    @abstractmethod
    def alloc(self, n: int = 1) -> list[int]:
        """Take ``n`` sequence numbers (increasing) for this transaction's changes."""

    @abstractmethod
    def change_values(self, seq: int) -> tuple[str, list[Any]]:
        """(column list, values) that place a new change row at sequence ``seq``."""

    def lock(self, ent: Entity, record_id: str) -> StoredRecord | None:
        return self._get(ent, record_id, self.LOCK)

    def lock_many(self, ent: Entity, record_ids: Sequence[str]) -> dict[str, StoredRecord]:
        return self._get_many(ent, record_ids, self.LOCK)

    def _log(self, seq: int, ent: Entity, record_id: str, kind: str, territory: str | None, old_version: int | None,
             old_territory: str | None = None, part_date: Any = None) -> None:
        """Make (seq, record) the record's only upsert/delete change row (or add a move row);
        ``part_date``: an upsert's partition key (see CHANGE_DATE)."""
        if old_version is not None:
            self._exec("DELETE FROM changes WHERE seq = ? AND kind = 'upsert'", (old_version,))
        cols, values = self.change_values(seq)
        extra, more = (", part_date", [part_date]) if self.CHANGE_DATE else ("", [])
        self._exec(
            f"INSERT INTO changes ({cols}, entity, record_id, kind, territory, old_territory{extra})"
            f" VALUES ({','.join('?' * len(values))}, ?, ?, ?, ?, ?{', ?' * len(more)})",
            (*values, ent.name, record_id, kind, territory, old_territory, *more),
        )

    def _part_date(self, ent: Entity, record: Mapping[str, Any]) -> Any:
        """The partition key of ``record`` for its change row (None: ``ent`` is not partitioned)."""
        key = PARTITIONED.get(ent.name)
        if key is None or not self.CHANGE_DATE:
            return None
        value = record.get(key)
        return dt.date.fromisoformat(value) if isinstance(value, str) else value

    def insert(self, ent: Entity, record: Mapping[str, Any]) -> int:
        names = [c for c in ent.columns if c != "version"]
        values = [self.to_sql(ent, c, record.get(c)) for c in names]
        if ent.anchor == "customer_id":
            # Shared lock: the customer cannot move territory (nor go) until this record is in.
            territory = self._one(f"SELECT territory FROM customers WHERE id = ?{self.SHARE}", (record["customer_id"],))
            if territory is None:
                raise RecordMissing(f"no customer {record['customer_id']!r}")
            names.append("territory")
            values.append(territory)
        else:
            territory = record.get("territory") if ent.anchor == "self" else None
        (seq,) = self.alloc()
        names.append("version")
        values.append(seq)
        self._exec(
            f"INSERT INTO {q(ent.table)} ({', '.join(map(q, names))}) VALUES ({', '.join('?' * len(names))})", values
        )
        self._log(seq, ent, record["id"], "upsert", territory, None, part_date=self._part_date(ent, record))
        return seq

    def insert_many(self, items: Sequence[tuple[Entity, Mapping[str, Any]]]) -> list[int]:
        if not items:
            return []
        # Shared locks on the customers first, as insert() takes them: none can move territory
        # (nor go) until these records are in, and the sequence numbers come after the locks.
        customers = {r["customer_id"] for e, r in items if e.anchor == "customer_id"}
        found = self.get_many(ENTITIES["customer"], sorted(customers), share=True) if customers else {}
        missing = customers - found.keys()
        if missing:
            raise RecordMissing(f"no customer {min(missing)!r}")
        seqs = self.alloc(len(items))
        tables: dict[str, tuple[Entity, list[list[Any]]]] = {}
        changes: list[tuple[Any, ...]] = []
        for (ent, record), seq in zip(items, seqs, strict=True):
            values = [self.to_sql(ent, c, record.get(c)) for c in ent.columns if c != "version"]
            if ent.anchor == "customer_id":
                territory = found[record["customer_id"]].territory
                values.append(territory)
            else:
                territory = record.get("territory") if ent.anchor == "self" else None
            values.append(seq)
            tables.setdefault(ent.name, (ent, []))[1].append(values)
            change = (*self.change_values(seq)[1], ent.name, record["id"], "upsert", territory, None)
            changes.append((*change, self._part_date(ent, record)) if self.CHANGE_DATE else change)
        for ent, rows in tables.values():
            names = [c for c in ent.columns if c != "version"]
            if ent.anchor == "customer_id":
                names.append("territory")
            names.append("version")
            self._insert_rows(ent, names, rows)
        cols = self.change_values(seqs[0])[0].split(", ")
        names = [*cols, "entity", "record_id", "kind", "territory", "old_territory"]
        self._insert_rows(None, [*names, "part_date"] if self.CHANGE_DATE else names, changes)
        return seqs

    def _exec_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement whose answer is not needed (a backend may send it with the next one)."""
        self._exec(sql, params)

    def _update_rows(self, ent: Entity, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Set the columns ``names``, then version and field_versions, of the records of ``ent``
        whose id ends each row (one statement for all the rows)."""
        sets = ", ".join([*(f"{q(n)} = ?" for n in names), "version = ?", "field_versions = ?"])
        self._exec_many(f"UPDATE {q(ent.table)} SET {sets} WHERE id = ?", rows)

    def _insert_rows(self, ent: Entity | None, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (values of the columns ``names``) into ``ent``'s table (None: changes)."""
        table = "changes" if ent is None else q(ent.table)
        self._exec_many(f"INSERT INTO {table} ({', '.join(map(q, names))}) VALUES ({','.join('?' * len(names))})", rows)

    def update(self, ent: Entity, record_id: str, changes: Mapping[str, Any]) -> int:
        current = self.lock(ent, record_id)
        if current is None:
            raise RecordMissing(f"no {ent.name} {record_id!r}")
        (seq,) = self.alloc()  # after the lock: versions of one record only ever grow
        fv = dict(current.field_versions)
        for name in changes:
            fv[name] = seq
        sets = [f"{q(n)} = ?" for n in changes]
        values = [self.to_sql(ent, n, v) for n, v in changes.items()]
        self._exec(
            f"UPDATE {q(ent.table)} SET {', '.join([*sets, 'version = ?', 'field_versions = ?'])} WHERE id = ?",
            (*values, seq, self.dump_versions(fv), record_id),
        )
        territory = changes.get("territory", current.territory) if ent.anchor == "self" else current.territory
        self._log(seq, ent, record_id, "upsert", territory, current.version,
                  part_date=self._part_date(ent, {**current.record, **changes}))
        if ent.anchor == "self" and territory != current.territory:
            self._move_customer(record_id, current.territory, territory)
        return seq

    def update_many(self, items: Sequence[tuple[Entity, StoredRecord, Mapping[str, Any]]]) -> list[int]:
        if not items:
            return []
        seqs = self.alloc(len(items))  # after the locks (lock_many): versions of a record only grow
        groups: dict[tuple[str, tuple[str, ...]], tuple[Entity, list[list[Any]]]] = {}
        old_versions: list[int] = []
        changes: list[tuple[Any, ...]] = []
        for (ent, current, fields), seq in zip(items, seqs, strict=True):
            record_id = current.record["id"]
            if ent.anchor == "self" and fields.get("territory", current.territory) != current.territory:
                raise ValueError(f"update_many cannot move {ent.name} {record_id!r} to another territory")
            versions = dict(current.field_versions)
            for name in fields:
                versions[name] = seq
            values = [self.to_sql(ent, n, v) for n, v in fields.items()]
            groups.setdefault((ent.name, tuple(fields)), (ent, []))[1].append(
                [*values, seq, self.dump_versions(versions), record_id])
            old_versions.append(current.version)
            change = (*self.change_values(seq)[1], ent.name, record_id, "upsert", current.territory, None)
            part = self._part_date(ent, {**current.record, **fields})
            changes.append((*change, part) if self.CHANGE_DATE else change)
        for (_, names), (ent, rows) in groups.items():
            self._update_rows(ent, names, rows)
        # Each record's only upsert row moves to its new version (see _log).
        for start in range(0, len(old_versions), _CHUNK):
            chunk = old_versions[start : start + _CHUNK]
            self._exec_later(f"DELETE FROM changes WHERE seq IN ({','.join('?' * len(chunk))}) AND kind = 'upsert'",
                             chunk)
        cols = self.change_values(seqs[0])[0].split(", ")
        change_names = [*cols, "entity", "record_id", "kind", "territory", "old_territory"]
        self._insert_rows(None, [*change_names, "part_date"] if self.CHANGE_DATE else change_names, changes)
        return seqs

    def _move_customer(self, customer_id: str, old: str | None, new: str | None) -> None:
        (move_seq,) = self.alloc()
        self._log(move_seq, ENTITIES["customer"], customer_id, "move", new, None, old_territory=old)
        for child in CUSTOMER_CHILDREN:
            key = PARTITIONED.get(child.name) if self.CHANGE_DATE else None
            rows = self._exec(
                f"SELECT id, version{'' if key is None else ', ' + q(key)} FROM {q(child.table)}"
                f" WHERE customer_id = ? ORDER BY id{self.LOCK}", (customer_id,)
            ).fetchall()
            if not rows:
                continue
            seqs = self.alloc(len(rows))
            for s, (rid, old_version, *part) in zip(seqs, rows, strict=True):
                self._exec(f"UPDATE {q(child.table)} SET territory = ?, version = ? WHERE id = ?", (new, s, rid))
                self._log(s, child, rid, "upsert", new, old_version, part_date=part[0] if part else None)

    def delete(self, ent: Entity, record_id: str) -> int:
        current = self.lock(ent, record_id)
        if current is None:
            raise RecordMissing(f"no {ent.name} {record_id!r}")
        if ent.anchor == "self":
            for child in CUSTOMER_CHILDREN:
                ids = [r[0] for r in self._exec(
                    f"SELECT id FROM {q(child.table)} WHERE customer_id = ? ORDER BY id", (record_id,)
                ).fetchall()]
                for child_id in ids:
                    self.delete(child, child_id)
        (seq,) = self.alloc()
        self._exec(f"DELETE FROM {q(ent.table)} WHERE id = ?", (record_id,))
        self._log(seq, ent, record_id, "delete", current.territory, current.version)
        return seq

    def op_result(self, op_id: str) -> StoredOpResult | None:
        row = self._exec("SELECT user_id, entity, record_id, result FROM op_results WHERE op_id = ?", (op_id,)).fetchone()
        if row is None:
            return None
        return StoredOpResult(user_id=row[0], entity=row[1], record_id=row[2], result=self.load_result(row[3]))

    def op_results(self, op_ids: Sequence[str]) -> dict[str, StoredOpResult]:
        ids = sorted(set(op_ids))
        out: dict[str, StoredOpResult] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for row in self._exec(
                f"SELECT op_id, user_id, entity, record_id, result FROM op_results"
                f" WHERE op_id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall():
                out[row[0]] = StoredOpResult(user_id=row[1], entity=row[2], record_id=row[3],
                                             result=self.load_result(row[4]))
        return out

    def load_result(self, value: Any) -> dict:
        """The stored op result -> a dict."""
        return value if isinstance(value, dict) else orjson.loads(value)


Tx = TypeVar("Tx")


@contextmanager
def transaction(
    connection: AbstractContextManager[Any],
    begin: str | None,
    make_tx: Callable[[Any], Tx],
    *,
    db_error: type[Exception],
    to_store_error: Callable[[Any], Exception],
    rollback: Callable[[Any], None],
    commit: bool,
) -> Iterator[Tx]:
    """One transaction on a pooled connection: ``begin``, the block, then (``commit``) the
    transaction's ``commit`` (``note_commit`` and COMMIT); a database error becomes a StoreError; whatever
    happens the connection goes back to the pool with no transaction open."""
    with connection as conn:
        try:
            if begin is not None:  # None: the transaction object sends it (see PostgresReadTx)
                conn.execute(begin)
            tx = make_tx(conn)
            yield tx
            if commit:
                tx.commit()  # type: ignore[attr-defined]
        except db_error as exc:
            raise to_store_error(exc) from exc
        finally:
            rollback(conn)
