"""SQLite read and write transactions: every record read and write of the server."""

from __future__ import annotations

import heapq
import itertools
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from crm_server.store.base import ChangeRow, FeedMeta, ReadTx, StoredOpResult, StoredRecord, WriteTx
from crm_server.store.codec import codec_for
from crm_server.store.gateway_sqlite import SQLiteGatewayReads, SQLiteGatewayWrites
from crm_server.store.schema import is_scoped, json_row_expr, q, select_columns
from crm_tui.domain import CUSTOMER_CHILDREN, ENTITIES, Entity

_CHUNK = 5000  # ids per IN (...) list; far below SQLite's variable limit
# Built once: the statements are long and the feed runs them on every page.
_JSON = {e.name: json_row_expr(e) for e in ENTITIES.values()}
_COLS = {e.name: select_columns(e) for e in ENTITIES.values()}


class SQLiteReadTx(SQLiteGatewayReads, ReadTx):
    """ReadTx over one SQLite connection in a deferred (snapshot) transaction.

    Each method keeps the contract written on :class:`ReadTx`.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def meta(self) -> FeedMeta:
        values = dict(self.conn.execute("SELECT key, value FROM meta WHERE key IN ('epoch','secret','seq','horizon')"))
        return FeedMeta(
            epoch=values["epoch"],
            secret=bytes.fromhex(values["secret"]),
            seq=int(values["seq"]),
            horizon=int(values["horizon"]),
        )

    def commit_fingerprint(self, seq: int) -> str | None:
        if seq <= 0:
            return None
        return self._one("SELECT nonce FROM commits WHERE seq >= ? ORDER BY seq LIMIT 1", (seq,))

    def user_id_for_token(self, token_hash: str) -> str | None:
        return self._one("SELECT user_id FROM tokens WHERE hash = ?", (token_hash,))

    def get(self, ent: Entity, record_id: str) -> StoredRecord | None:
        extra = ", territory" if ent.anchor == "customer_id" else ""
        row = self.conn.execute(
            f"SELECT {_COLS[ent.name]}{extra}, field_versions FROM {q(ent.table)} WHERE id = ?", (record_id,)
        ).fetchone()
        if row is None:
            return None
        codec = codec_for(ent)
        n = len(ent.columns)
        record = codec.to_wire(row[:n])
        if ent.anchor == "customer_id":
            territory = row[n]
        elif ent.anchor == "self":
            territory = record["territory"]
        else:
            territory = None
        fv = orjson.loads(row[-1]) if row[-1] else {}
        return StoredRecord(record=record, territory=territory, field_versions=fv)

    def tombstone(self, ent: Entity, record_id: str) -> ChangeRow | None:
        row = self.conn.execute(
            "SELECT seq, entity, record_id, kind, territory, old_territory FROM changes"
            " WHERE entity = ? AND record_id = ? AND kind = 'delete'",
            (ent.name, record_id),
        ).fetchone()
        return None if row is None else ChangeRow._make(row)

    def list_records(
        self,
        ent: Entity,
        *,
        after: str | None,
        limit: int,
        filters: Mapping[str, Any],
        territories: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        codec = codec_for(ent)
        where, params = [], []
        for name, value in filters.items():
            if name not in ent.by_name:  # never let a caller name a column we do not know
                raise KeyError(name)
            where.append(f"{q(name)} = ?")
            params.append(value)
        if after is not None:
            where.append("id > ?")
            params.append(after)
        sql = f"SELECT {_COLS[ent.name]} FROM {q(ent.table)}"
        if territories is None or not is_scoped(ent):
            clause = (" WHERE " + " AND ".join(where)) if where else ""
            rows = self.conn.execute(f"{sql}{clause} ORDER BY id LIMIT ?", (*params, limit)).fetchall()
        else:
            # One index range per territory, merged by id: cheaper than sorting a whole territory.
            clause = " WHERE " + " AND ".join(["territory = ?", *where])
            per_territory = [
                self.conn.execute(f"{sql}{clause} ORDER BY id LIMIT ?", (t, *params, limit)).fetchall()
                for t in sorted(set(territories))
            ]
            rows = list(itertools.islice(heapq.merge(*per_territory, key=lambda r: r[0]), limit))
        return [codec.to_wire(r) for r in rows]

    def count(self, ent: Entity, territories: Sequence[str] | None) -> int:
        if territories is None or not is_scoped(ent):
            return self._one(f"SELECT count(*) FROM {q(ent.table)}")
        total = 0
        for t in set(territories):
            total += self._one(f"SELECT count(*) FROM {q(ent.table)} WHERE territory = ?", (t,))
        return total

    def page_json(
        self, ent: Entity, *, territory: str | None, after: str, limit: int
    ) -> tuple[str | None, int, str | None]:
        where = "territory = ? AND id > ?" if territory is not None else "id > ?"
        params = (territory, after, limit) if territory is not None else (after, limit)
        sql = (
            f"SELECT group_concat(j, ','), count(*), max(id) FROM "
            f"(SELECT id, {_JSON[ent.name]} AS j FROM {q(ent.table)} WHERE {where} ORDER BY id LIMIT ?)"
        )
        rows, n, last = self.conn.execute(sql, params).fetchone()
        return rows, n, last

    def rows_json(self, ent: Entity, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        expr = _JSON[ent.name]
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            out.update(
                self.conn.execute(f"SELECT id, {expr} FROM {q(ent.table)} WHERE id IN ({marks})", chunk).fetchall()
            )
        return out

    def changes_after(self, seq: int, limit: int) -> Iterator[ChangeRow]:
        cur = self.conn.execute(
            "SELECT seq, entity, record_id, kind, territory, old_territory FROM changes"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        while rows := cur.fetchmany(1000):
            yield from map(ChangeRow._make, rows)

    def has_changes_after(self, seq: int) -> bool:
        return self._one("SELECT 1 FROM changes WHERE seq > ? LIMIT 1", (seq,)) is not None

    def has_customers_in(self, territory: str) -> bool:
        return self._one("SELECT 1 FROM customers WHERE territory = ? LIMIT 1", (territory,)) is not None


class SQLiteWriteTx(SQLiteGatewayWrites, SQLiteReadTx, WriteTx):
    """Runs inside BEGIN IMMEDIATE: the database write lock is the commit-sequence lock.

    Each method keeps the contract written on :class:`WriteTx`.
    """

    def __init__(self, conn: sqlite3.Connection):
        super().__init__(conn)
        self._savepoints = 0
        self.allocated = False

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    def _alloc(self, n: int = 1) -> int:
        """Take ``n`` consecutive sequence numbers; returns the first."""
        last = self._one("UPDATE meta SET value = value + ? WHERE key = 'seq' RETURNING value", (n,))
        self.allocated = True
        return int(last) - n + 1

    def next_number(self, counter: str) -> int:
        value = self._one("UPDATE meta SET value = value + 1 WHERE key = ? RETURNING value", (counter + "_number",))
        if value is None:
            raise KeyError(f"unknown counter {counter!r}")
        return int(value)

    def _log(self, seq: int, ent: Entity, record_id: str, kind: str, territory: str | None, old_version: int | None):
        """Make (seq, record) the record's only upsert/delete change row."""
        if old_version is not None:
            self.conn.execute("DELETE FROM changes WHERE seq = ? AND kind = 'upsert'", (old_version,))
        self.conn.execute(
            "INSERT INTO changes (seq, entity, record_id, kind, territory) VALUES (?, ?, ?, ?, ?)",
            (seq, ent.name, record_id, kind, territory),
        )

    def insert(self, ent: Entity, record: Mapping[str, Any]) -> int:
        codec = codec_for(ent)
        names = [c for c in ent.columns if c != "version"]
        values = [codec.to_sql(c, record.get(c)) for c in names]
        if ent.anchor == "customer_id":
            territory = self._one("SELECT territory FROM customers WHERE id = ?", (record["customer_id"],))
            if territory is None:
                raise KeyError(f"no customer {record['customer_id']!r}")
            names.append("territory")
            values.append(territory)
        else:
            territory = record.get("territory") if ent.anchor == "self" else None
        seq = self._alloc()
        names.append("version")
        values.append(seq)
        self.conn.execute(
            f"INSERT INTO {q(ent.table)} ({', '.join(map(q, names))}) VALUES ({', '.join('?' * len(names))})",
            values,
        )
        self._log(seq, ent, record["id"], "upsert", territory, None)
        return seq

    def update(self, ent: Entity, record_id: str, changes: Mapping[str, Any]) -> int:
        current = self.get(ent, record_id)
        if current is None:
            raise KeyError(f"no {ent.name} {record_id!r}")
        codec = codec_for(ent)
        seq = self._alloc()
        fv = dict(current.field_versions)
        for name in changes:
            fv[name] = seq
        sets = [f"{q(n)} = ?" for n in changes]
        values = [codec.to_sql(n, v) for n, v in changes.items()]
        self.conn.execute(
            f"UPDATE {q(ent.table)} SET {', '.join([*sets, 'version = ?', 'field_versions = ?'])} WHERE id = ?",
            (*values, seq, orjson.dumps(fv).decode(), record_id),
        )
        territory = changes.get("territory", current.territory) if ent.anchor == "self" else current.territory
        self._log(seq, ent, record_id, "upsert", territory, current.version)
        if ent.anchor == "self" and territory != current.territory:
            self._move_customer(record_id, current.territory, territory)
        return seq

    def _move_customer(self, customer_id: str, old: str | None, new: str | None) -> None:
        move_seq = self._alloc()
        self.conn.execute(
            "INSERT INTO changes (seq, entity, record_id, kind, territory, old_territory)"
            " VALUES (?, 'customer', ?, 'move', ?, ?)",
            (move_seq, customer_id, new, old),
        )
        for child in CUSTOMER_CHILDREN:
            rows = self.conn.execute(
                f"SELECT id, version FROM {q(child.table)} WHERE customer_id = ? ORDER BY id", (customer_id,)
            ).fetchall()
            if not rows:
                continue
            first = self._alloc(len(rows))
            seqs = range(first, first + len(rows))
            self.conn.executemany(
                f"UPDATE {q(child.table)} SET territory = ?, version = ? WHERE id = ?",
                [(new, s, rid) for s, (rid, _) in zip(seqs, rows, strict=True)],
            )
            self.conn.executemany("DELETE FROM changes WHERE seq = ? AND kind = 'upsert'", [(v,) for _, v in rows])
            self.conn.executemany(
                "INSERT INTO changes (seq, entity, record_id, kind, territory) VALUES (?, ?, ?, 'upsert', ?)",
                [(s, child.name, rid, new) for s, (rid, _) in zip(seqs, rows, strict=True)],
            )

    def delete(self, ent: Entity, record_id: str) -> int:
        if ent.anchor == "self":
            for child in CUSTOMER_CHILDREN:
                ids = [
                    r[0]
                    for r in self.conn.execute(
                        f"SELECT id FROM {q(child.table)} WHERE customer_id = ? ORDER BY id", (record_id,)
                    )
                ]
                for child_id in ids:
                    self.delete(child, child_id)
        current = self.get(ent, record_id)
        if current is None:
            raise KeyError(f"no {ent.name} {record_id!r}")
        seq = self._alloc()
        self.conn.execute(f"DELETE FROM {q(ent.table)} WHERE id = ?", (record_id,))
        self._log(seq, ent, record_id, "delete", current.territory, current.version)
        return seq

    def op_result(self, op_id: str) -> StoredOpResult | None:
        row = self.conn.execute(
            "SELECT user_id, entity, record_id, result FROM op_results WHERE op_id = ?", (op_id,)
        ).fetchone()
        if row is None:
            return None
        return StoredOpResult(user_id=row[0], entity=row[1], record_id=row[2], result=orjson.loads(row[3]))

    def save_op_result(self, op_id: str, user_id: str, ent: Entity, record_id: str, result: dict) -> None:
        self.conn.execute(
            "INSERT INTO op_results (op_id, user_id, entity, record_id, result) VALUES (?, ?, ?, ?, ?)",
            (op_id, user_id, ent.name, record_id, orjson.dumps(result).decode()),
        )

    def add_token(self, user_id: str, token_hash: str) -> None:
        self.conn.execute(
            "INSERT INTO tokens (hash, user_id, created_at) VALUES (?, ?, ?)",
            (token_hash, user_id, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        )

    def revoke_tokens(self, user_id: str) -> int:
        return self.conn.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,)).rowcount

    def note_commit(self) -> None:
        """Remember when this transaction's sequences were committed (for compaction by age)."""
        if self.allocated:
            self.conn.execute(
                "INSERT OR REPLACE INTO commits (seq, at, nonce) SELECT value, ?, ? FROM meta WHERE key = 'seq'",
                (int(time.time()), secrets.token_hex(8)),
            )

