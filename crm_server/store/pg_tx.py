"""PostgreSQL read and write transactions: the PostgreSQL dialect of :mod:`crm_server.store.sql_tx`.

Writers do not serialise: each runs READ COMMITTED, locks the rows it changes (``lock`` takes
``FOR UPDATE`` before a sequence number is taken, so a record's versions only grow) and tags its
change rows with its transaction id. Readers run REPEATABLE READ snapshots whose head lies just
below the oldest transaction still running (docs/sync-protocol.md, "Concurrent writers").
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from crm_server.store.base import MAX_SEQ, Position, RecordExists, StoreInfo
from crm_server.store.gateway_pg import PgGatewayReads, PgGatewayWrites
from crm_server.store.pg_schema import PG_TYPES, json_row_expr
from crm_server.store.schema import PARTITIONED, q
from crm_server.store.sql_tx import SqlReadTx, SqlWriteTx
from crm_tui.core.domain import ENTITIES, Entity

_JSON = {e.name: json_row_expr(e) for e in ENTITIES.values()}
_SQL: dict[str, str] = {}


def _kinds(ent: Entity) -> dict[str, str]:
    return {f.name: f.kind for f in ent.fields}


_KINDS = {name: _kinds(e) for name, e in ENTITIES.items()}
_DATES = {name: tuple(i for i, c in enumerate(e.columns) if _KINDS[name].get(c) == "date") for name, e in ENTITIES.items()}


_CHANGE_TYPES = {"xid": "bigint", "seq": "bigint", "version": "bigint", "part_date": "date"}


def _column_type(ent: Entity | None, name: str) -> str:
    """The PostgreSQL type of a column of ``ent``'s table (None: the change log)."""
    if ent is not None and name in ent.by_name:
        return PG_TYPES[ent.by_name[name].kind]
    return _CHANGE_TYPES.get(name, "text")


def history_mark(n: int, nonce: str) -> str:
    """The mark of a commit: fixed width, so a cursor's length says nothing about write volume."""
    return f"{n:020d}:{nonce}"


class PostgresReadTx(PgGatewayReads, SqlReadTx):
    """ReadTx over one psycopg connection in a REPEATABLE READ, READ ONLY transaction.

    Each method keeps the contract written on :class:`~crm_server.store.base.ReadTx`.
    """

    CHANGE_COLUMNS = "xid, seq, entity, record_id, kind, territory, old_territory, part_date"
    POSITION_ORDER = "xid, seq"
    CHANGE_DATE = True

    def __init__(self, conn: psycopg.Connection, statements: list[tuple[str, Sequence[Any]]] | None = None,
                 *, begin: str | None = None):
        self._pending: list[tuple[str, Any]] = []
        super().__init__(conn)
        # When given, every statement run is recorded here (the query-plan probes of the tests).
        self.statements = statements
        if begin is not None:
            self.later(begin)

    # Statements whose answer nothing waits for (BEGIN, SAVEPOINT, RELEASE SAVEPOINT, the writes of
    # a run of updates) are not sent on their own: they wait here and go with the next statement,
    # in one round trip (psycopg's pipeline mode), in order. Whoever uses ``conn`` directly gets
    # them sent first.

    @property
    def conn(self) -> Any:  # a psycopg.Connection
        if self._pending:
            with self._conn.pipeline():
                self._send_pending()
        return self._conn

    @conn.setter
    def conn(self, value: Any) -> None:
        self._conn = value

    def later(self, sql: str, params: Any = None) -> None:
        """Send ``sql`` (psycopg's placeholders; no answer wanted) with the next statement. An
        error it meets is raised by that statement."""
        self._pending.append((sql, params))

    def _send_pending(self) -> None:
        pending, self._pending = self._pending, []
        for sql, params in pending:
            self._conn.execute(sql, params)

    def _send(self, sql: str, params: Any = ()) -> Any:
        """Run ``sql`` (psycopg's placeholders) after what waits; returns the cursor."""
        if not self._pending:
            return self._conn.execute(sql, params)
        with self._conn.pipeline():
            self._send_pending()
            cur = self._conn.execute(sql, params)
        return cur

    def sql(self, text: str) -> str:
        out = _SQL.get(text)
        if out is None:
            out = _SQL[text] = text.replace("?", "%s")
        return out

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.statements is not None:
            self.statements.append((self.sql(sql), tuple(params)))
        return self._send(self.sql(sql), params)

    def _exec_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # psycopg sends the rows in pipeline mode: one round trip for all of them.
        if self.statements is not None:
            self.statements.append((self.sql(sql), ("executemany", len(rows))))
        with self._conn.pipeline():
            self._send_pending()
            with self._conn.cursor() as cur:
                cur.executemany(self.sql(sql), rows)

    def to_wire(self, ent: Entity, row: Sequence[Any]) -> dict[str, Any]:
        values = list(row)
        for i in _DATES[ent.name]:
            if isinstance(values[i], dt.date):
                values[i] = values[i].isoformat()
        return dict(zip(ent.columns, values, strict=True))

    def to_sql(self, ent: Entity, name: str, value: Any) -> Any:
        if value is None:
            return None
        kind = _KINDS[ent.name].get(name)
        if kind == "tags":
            return Jsonb(list(value))
        if kind == "bool":
            return bool(value)
        return value

    def load_versions(self, value: Any) -> dict[str, int]:
        return dict(value) if value else {}

    def dump_versions(self, versions: dict[str, int]) -> Any:
        return Jsonb(versions)

    def json_row(self, ent: Entity) -> str:
        return _JSON[ent.name]

    def json_agg(self, expr: str) -> str:
        return f"string_agg({expr}, ',')"

    def range_clause(self, after: Position, head: Position) -> tuple[str, list[Any]]:
        return "(xid, seq) > (?, ?) AND (xid, seq) <= (?, ?)", [after[0], after[1], head[0], head[1]]

    def month_expr(self, column: str) -> str:
        return f"to_char({column}, 'YYYY-MM')"

    def info(self) -> StoreInfo:
        # In REPEATABLE READ this is the transaction's snapshot: the one every read here sees.
        # Every transaction below its xmin has ended, so the head is final (see the module doc).
        # One round trip (every feed page starts here): the snapshot, the identity, the last commit.
        xmin, epoch, key, htx, hseq, n, nonce = self._exec(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, s.epoch, s.cursor_key, s.horizon_tx,"
            " s.horizon_seq, c.n, c.nonce FROM store_info AS s"
            " LEFT JOIN LATERAL (SELECT n, nonce FROM commits ORDER BY n DESC LIMIT 1) AS c ON true"
        ).fetchone()
        return StoreInfo(
            epoch=epoch,
            cursor_key=bytes(key),
            head=(int(xmin) - 1, MAX_SEQ),
            horizon=(int(htx), int(hseq)),
            history=history_mark(n, nonce) if n is not None else history_mark(0, ""),
        )

    def last_sequence(self) -> int:
        return int(self._one("SELECT last_value FROM change_seq"))

    def knows_history(self, mark: str) -> bool:
        n_text, _, nonce = mark.partition(":")
        if not n_text.isdigit():
            return False
        n = int(n_text)
        if n == 0 or n <= int(self._one("SELECT commits_purged_through FROM store_info")):
            return True
        return self._one("SELECT nonce FROM commits WHERE n = ?", (n,)) == nonce

    def rows_json(self, ent: Entity, ids: Sequence[str], dates: Sequence[Any] = ()) -> dict[str, str]:
        if not ids:
            return {}
        sql = f'SELECT id, {_JSON[ent.name]} FROM "{ent.table}" WHERE id = ANY(?)'
        key = PARTITIONED.get(ent.name)
        known = sorted({d for d in dates if d is not None})
        if key is None or not known:
            return dict(self._exec(sql, (list(ids),)).fetchall())
        # Only the partitions of the ids' dates are read (the feed's orders: one month or two,
        # not every month's index). An id whose date is not known, or not found there, is read
        # by id alone: never expected (an upsert's change row is replaced at each change).
        out = dict(self._exec(f"{sql} AND {q(key)} = ANY(?::date[])", (list(ids), known)).fetchall())
        rest = [i for i in ids if i not in out]
        if rest:
            out.update(self._exec(sql, (rest,)).fetchall())
        return out

    def load_result(self, value: Any) -> dict:
        return value if isinstance(value, dict) else orjson.loads(value)


class PostgresWriteTx(PgGatewayWrites, PostgresReadTx, SqlWriteTx):
    """A READ COMMITTED write transaction; each method keeps the contract written on
    :class:`~crm_server.store.base.WriteTx`."""

    LOCK = " FOR UPDATE"
    SHARE = " FOR SHARE"
    BEGIN = "BEGIN"

    def __init__(self, conn: psycopg.Connection, statements: list[tuple[str, Sequence[Any]]] | None = None,
                 *, begin: str | None = None):
        super().__init__(conn, statements, begin=begin)
        self._xid: int | None = None

    def alloc(self, n: int = 1) -> list[int]:
        self.allocated = True
        if self._xid is None:  # the transaction id and the numbers: one round trip
            rows = self._exec("SELECT pg_current_xact_id()::text::bigint, nextval('change_seq')"
                              " FROM generate_series(1, ?)", (n,)).fetchall()
            self._xid = int(rows[0][0])
            return sorted(int(r[1]) for r in rows)
        if n == 1:
            return [int(self._one("SELECT nextval('change_seq')"))]
        return sorted(int(r[0]) for r in self._exec("SELECT nextval('change_seq') FROM generate_series(1, ?)", (n,)))

    def change_values(self, seq: int) -> tuple[str, list[Any]]:
        return "xid, seq", [self._xid, seq]

    def next_number(self, counter: str) -> int:
        if counter not in ("ticket", "order"):
            raise KeyError(f"unknown counter {counter!r}")
        return int(self._one(f"SELECT nextval('{counter}_number')"))

    def _insert_rows(self, ent: Entity | None, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # One statement for all the rows, one (binary) array per column: one executor start (and, for
        # orders, one partition routing set-up) instead of one per row, and the same short
        # statement text whatever the number of rows (psycopg parses it once, PostgreSQL plans
        # it once per connection).
        types = [_column_type(ent, n) for n in names]
        sql = (f"INSERT INTO {'changes' if ent is None else q(ent.table)} ({', '.join(map(q, names))})"
               f" SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in types)})")
        if self.statements is not None:
            self.statements.append((sql, ("rows", len(rows))))
        self._send(sql, [list(column) for column in zip(*rows, strict=True)])

    def _update_rows(self, ent: Entity, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # One statement, one (binary) array per column, as _insert_rows: not a statement per row.
        cols = [*names, "version", "field_versions"]
        types = [*(_column_type(ent, n) for n in names), "bigint", "jsonb", "text"]
        sets = ", ".join(f"{q(c)} = u.{q(c)}" for c in cols)
        sql = (f"UPDATE {q(ent.table)} AS t SET {sets}"
               f" FROM unnest({', '.join(f'%b::{t}[]' for t in types)}) AS u({', '.join(map(q, [*cols, 'id']))})"
               " WHERE t.id = u.id")
        # Its answer is not needed: it goes with the change log's statements (update_many).
        self.later(sql, [list(column) for column in zip(*rows, strict=True)])

    def _exec_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.later(self.sql(sql), params)

    def commit(self) -> None:
        """The commit clock's update and COMMIT go in one round trip (pipeline mode): the clock's
        row lock, which every committing writer takes in turn, is held only for the server's time
        between them, never for a trip back to this process (and its wait for Python's GIL).
        What waits to be sent (a RELEASE SAVEPOINT) goes first; a transaction that never sent a
        statement has nothing to commit."""
        if self._pending[:1] == [(self.BEGIN, None)]:
            return
        with self._conn.pipeline():
            self._send_pending()
            self.note_commit()
            self._conn.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # SAVEPOINT and RELEASE go with the next statement; a block that sent nothing sends neither.
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.later(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._end_savepoint(name, [f"ROLLBACK TO SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}"])
            raise
        self._end_savepoint(name, [f"RELEASE SAVEPOINT {name}"])

    def _end_savepoint(self, name: str, then: list[str]) -> None:
        if self._pending[-1:] == [(f"SAVEPOINT {name}", None)]:
            self._pending.pop()  # never sent: nothing to undo or release
        else:
            self._pending += [(sql, None) for sql in then]

    def next_numbers(self, counter: str, n: int) -> list[int]:
        if counter not in ("ticket", "order"):
            raise KeyError(f"unknown counter {counter!r}")
        if n <= 0:
            return []
        return sorted(int(r[0]) for r in self._exec(f"SELECT nextval('{counter}_number') FROM generate_series(1, ?)", (n,)))

    def insert(self, ent: Entity, record: Any) -> int:
        try:
            return super().insert(ent, record)
        except psycopg.errors.UniqueViolation as exc:
            raise RecordExists(f"{ent.name} {record.get('id')!r} exists: {exc}") from None

    def insert_many(self, items: Sequence[tuple[Entity, Any]]) -> list[int]:
        try:
            return super().insert_many(items)
        except psycopg.errors.UniqueViolation as exc:
            raise RecordExists(f"a record exists already: {exc}") from None

    def save_op_result(self, op_id: str, user_id: str, ent: Entity, record_id: str, result: dict) -> None:
        try:
            self._exec(
                "INSERT INTO op_results (op_id, user_id, entity, record_id, result) VALUES (?, ?, ?, ?, ?)",
                (op_id, user_id, ent.name, record_id, Jsonb(result)),
            )
        except psycopg.errors.UniqueViolation as exc:  # a concurrent batch applied this op first
            raise RecordExists(f"an op result exists already: {exc}") from None

    def save_op_results(self, rows: Sequence[tuple[str, str, Entity, str, dict]]) -> None:
        if not rows:
            return
        try:
            self._exec(
                "INSERT INTO op_results (op_id, user_id, entity, record_id, result)"
                # Binary arrays (%b): no quoting of each JSON text into an array literal.
                " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::jsonb[])",
                [list(column) for column in zip(*[(op_id, user_id, ent.name, record_id, Jsonb(result))
                                                  for op_id, user_id, ent, record_id, result in rows], strict=True)],
            )
        except psycopg.errors.UniqueViolation as exc:  # a concurrent batch applied one of these ops first
            raise RecordExists(f"an op result exists already: {exc}") from None

    def note_commit(self) -> None:
        """Take the commit clock just before COMMIT and record the commit (restores, compaction by
        age). The clock's row lock is held only from here to COMMIT, never for a whole batch."""
        if self.allocated:
            self._exec(
                "WITH c AS (UPDATE commit_clock SET n = n + 1 RETURNING n)"
                " INSERT INTO commits (n, xid, at, nonce) SELECT n, ?, clock_timestamp(), ? FROM c",
                (self._xid, secrets.token_hex(8)),
            )
