"""SQLite read and write transactions: the SQLite dialect of :mod:`crm_server.store.sql_tx`.

Writers serialise on ``BEGIN IMMEDIATE``, so sequence order is commit order: a feed position is
``(0, seq)`` and the head of a snapshot is the last sequence number taken.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from crm_server.store.base import Position, RecordExists, StoreInfo
from crm_server.store.gateway_sqlite import SQLiteGatewayReads, SQLiteGatewayWrites
from crm_server.store.sql_tx import SqlReadTx, SqlWriteTx
from crm_server.store.sqlite_schema import json_row_expr
from crm_tui.core.codec import codec_for
from crm_tui.core.domain import ENTITIES, Entity

_JSON = {e.name: json_row_expr(e) for e in ENTITIES.values()}


def history_mark(seq: int, nonce: str | None) -> str:
    """The mark of a commit: fixed width, so a cursor's length says nothing about write volume."""
    return f"{seq:020d}:{nonce or ''}"


class SQLiteReadTx(SQLiteGatewayReads, SqlReadTx):
    """ReadTx over one SQLite connection in a deferred (snapshot) transaction.

    Each method keeps the contract written on :class:`~crm_server.store.base.ReadTx`.
    """

    def to_wire(self, ent: Entity, row: Sequence[Any]) -> dict[str, Any]:
        return codec_for(ent).to_wire(row)

    def to_sql(self, ent: Entity, name: str, value: Any) -> Any:
        return codec_for(ent).to_sql(name, value)

    def load_versions(self, value: Any) -> dict[str, int]:
        return orjson.loads(value) if value else {}

    def dump_versions(self, versions: dict[str, int]) -> Any:
        return orjson.dumps(versions).decode()

    def json_row(self, ent: Entity) -> str:
        return _JSON[ent.name]

    def json_agg(self, expr: str) -> str:
        return f"group_concat({expr}, ',')"

    def range_clause(self, after: Position, head: Position) -> tuple[str, list[Any]]:
        return "seq > ? AND seq <= ?", [after[1], head[1]]

    def info(self) -> StoreInfo:
        epoch, key, horizon, last = self.conn.execute(
            "SELECT epoch, cursor_key, horizon, last_seq FROM store_info"
        ).fetchone()
        row = self.conn.execute("SELECT seq, nonce FROM commits ORDER BY seq DESC LIMIT 1").fetchone()
        return StoreInfo(
            epoch=epoch,
            cursor_key=bytes(key),
            head=(0, int(last)),
            horizon=(0, int(horizon)),
            history=history_mark(*row) if row else history_mark(0, None),
        )

    def last_sequence(self) -> int:
        return int(self._one("SELECT last_seq FROM store_info"))

    def knows_history(self, mark: str) -> bool:
        seq_text, _, nonce = mark.partition(":")
        if not seq_text.isdigit():
            return False
        seq = int(seq_text)
        if seq == 0 or seq <= self._one("SELECT commits_purged_through FROM store_info"):
            return True
        stored = self.conn.execute("SELECT nonce FROM commits WHERE seq = ?", (seq,)).fetchone()
        return stored is not None and (stored[0] or "") == nonce


class SQLiteWriteTx(SQLiteGatewayWrites, SQLiteReadTx, SqlWriteTx):
    """Runs inside BEGIN IMMEDIATE: the database write lock is the commit-sequence lock, so
    :meth:`lock` needs no row lock of its own.

    Each method keeps the contract written on :class:`~crm_server.store.base.WriteTx`.
    """

    def alloc(self, n: int = 1) -> list[int]:
        last = int(self._one("UPDATE store_info SET last_seq = last_seq + ? RETURNING last_seq", (n,)))
        self.allocated = True
        return list(range(last - n + 1, last + 1))

    def change_values(self, seq: int) -> tuple[str, list[Any]]:
        return "seq", [seq]

    def next_number(self, counter: str) -> int:
        if counter not in ("ticket", "order"):
            raise KeyError(f"unknown counter {counter!r}")
        column = counter + "_number"
        return int(self._one(f"UPDATE store_info SET {column} = {column} + 1 RETURNING {column}"))

    def next_numbers(self, counter: str, n: int) -> list[int]:
        if counter not in ("ticket", "order"):
            raise KeyError(f"unknown counter {counter!r}")
        if n <= 0:
            return []
        column = counter + "_number"
        last = int(self._one(f"UPDATE store_info SET {column} = {column} + ? RETURNING {column}", (n,)))
        return list(range(last - n + 1, last + 1))

    def insert(self, ent: Entity, record: Any) -> int:
        try:
            return super().insert(ent, record)
        except sqlite3.IntegrityError as exc:
            raise RecordExists(f"{ent.name} {record.get('id')!r} exists: {exc}") from None

    def insert_many(self, items: Sequence[tuple[Entity, Any]]) -> list[int]:
        try:
            return super().insert_many(items)
        except sqlite3.IntegrityError as exc:
            raise RecordExists(f"a record exists already: {exc}") from None

    def save_op_result(self, op_id: str, user_id: str, ent: Entity, record_id: str, result: dict) -> None:
        self.conn.execute(
            "INSERT INTO op_results (op_id, user_id, entity, record_id, result, at) VALUES (?, ?, ?, ?, ?, ?)",
            (op_id, user_id, ent.name, record_id, orjson.dumps(result).decode(), int(time.time())),
        )

    def save_op_results(self, rows: Sequence[tuple[str, str, Entity, str, dict]]) -> None:
        at = int(time.time())
        try:
            self.conn.executemany(
                "INSERT INTO op_results (op_id, user_id, entity, record_id, result, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(op_id, user_id, ent.name, record_id, orjson.dumps(result).decode(), at)
                 for op_id, user_id, ent, record_id, result in rows],
            )
        except sqlite3.IntegrityError as exc:
            raise RecordExists(f"an op result exists already: {exc}") from None

    def note_commit(self) -> None:
        """Remember when this transaction's sequences were committed (compaction by age, the
        op-result window) and give it a nonce (restored databases)."""
        if self.allocated:
            # Only when a sequence number survived: a savepoint that rolled back every change
            # also rolled back the numbers it took, and then nothing new is being committed.
            self.conn.execute(
                "INSERT INTO commits (seq, at, nonce) SELECT last_seq, ?, ? FROM store_info"
                " WHERE last_seq > (SELECT coalesce(max(seq), 0) FROM commits)",
                (int(time.time()), secrets.token_hex(8)),
            )
