"""The embedded SQLite backend: one file, zero configuration, WAL so readers never block writers.

Writers serialise on ``BEGIN IMMEDIATE`` (the database write lock) and take the commit sequence
inside it, so sequence order is commit order across threads and across server processes sharing
the file. Readers run in deferred transactions, which in WAL mode are consistent snapshots.
Connections come from a bounded pool; rate-limit buckets live in a small file of their own next
to the database, so counting requests never waits for the write lock of the data.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from crm_server.store.base import (
    OP_RESULT_RETENTION_DAYS,
    BulkLoader,
    CompactResult,
    MaintenanceReport,
    Store,
    StoreBusy,
    StoreError,
    iter_chunks,
)
from crm_server.store.gateway_sqlite import SQLitePollerLock
from crm_server.store.pool import BoundedPool
from crm_server.store.probe import Meter
from crm_server.store.schema import all_entity_indexes, q, writable_columns
from crm_server.store.sql_tx import transaction
from crm_server.store.sqlite_schema import create_or_upgrade
from crm_server.store.sqlite_tx import SQLiteReadTx, SQLiteWriteTx
from crm_tui.core.codec import codec_for
from crm_tui.core.domain import Entity

BUSY_TIMEOUT_MS = 10_000
POOL_SIZE = 8  # connections per process; each keeps a page cache of CACHE_KIB
CACHE_KIB = 16_000
PURGE_CHUNK = 10_000  # rows deleted per write transaction, so housekeeping never holds the lock long
BUCKET_IDLE_SECONDS = 3600  # a bucket untouched this long is full again for any sane rate


def _sqlite_connect(path: str, *, cache_kib: int, synchronous: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    return conn


class SQLiteStore(Store):
    """A CRM database in one SQLite file, created (with a fresh epoch and cursor key) if missing
    and migrated to the current schema if older.

    Each method keeps the contract written on :class:`Store`. Raises StoreError if the file is
    not a usable CRM database.
    """

    backend = "sqlite"

    def __init__(self, path: str | Path, *, pool_size: int = POOL_SIZE):
        self.path = str(path)
        self._meter = threading.local()
        # NORMAL is durable across application crashes in WAL mode; only a power cut can lose
        # the last transactions, never corrupt the file.
        self._pool = BoundedPool(
            lambda: _sqlite_connect(self.path, cache_kib=CACHE_KIB, synchronous="NORMAL"), pool_size, _close
        )
        # Rate-limit buckets: losing the last second of counts in a power cut is harmless.
        self._limits = BoundedPool(lambda: self._limits_connect(), 4, _close)
        try:
            with self._pool.connection() as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self.opened_at_version = create_or_upgrade(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot use database {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def poller_lock(self) -> SQLitePollerLock:
        return SQLitePollerLock(self.path)

    def _limits_connect(self) -> sqlite3.Connection:
        conn = _sqlite_connect(self.path + "-ratelimit", cache_kib=500, synchronous="OFF")
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY NOT NULL, tokens REAL NOT NULL,"
                " at REAL NOT NULL, ok INTEGER NOT NULL) WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open the rate-limit file next to {self.path}: {exc}") from exc
        return conn

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def metered(self) -> Iterator[Meter]:
        """Count the statements and VM steps of the read transactions of this thread inside the
        block (for :mod:`crm_server.store.probe`)."""
        meter = Meter()
        self._meter.current = meter
        try:
            yield meter
        finally:
            self._meter.current = None

    def _transaction(self, begin: str, make_tx: Any, *, commit: bool) -> Any:
        return transaction(self._pool.connection(), begin, make_tx, db_error=sqlite3.Error,
                           to_store_error=_store_error, rollback=_rollback, commit=commit)

    @contextmanager
    def read(self) -> Iterator[SQLiteReadTx]:
        meter = getattr(self._meter, "current", None)
        with self._transaction("BEGIN", SQLiteReadTx, commit=False) as tx:
            if meter is not None:
                tx.conn.set_trace_callback(lambda sql: meter.statements.append((sql, ())))
                tx.conn.set_progress_handler(lambda: setattr(meter, "steps", meter.steps + 1) or 0, 1)  # type: ignore[func-returns-value]
            try:
                yield tx
            finally:
                if meter is not None:
                    tx.conn.set_trace_callback(None)
                    tx.conn.set_progress_handler(None, 1)

    def write(self) -> AbstractContextManager[SQLiteWriteTx]:
        return self._transaction("BEGIN IMMEDIATE", SQLiteWriteTx, commit=True)

    @contextmanager
    def bulk_load(self) -> Iterator[SQLiteBulkLoader]:
        with self._pool.connection() as conn:
            try:
                # The load is one transaction: if it fails nothing is left behind, so the usual
                # fsyncs buy nothing here.
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute("PRAGMA cache_size = -200000")
                conn.execute("BEGIN IMMEDIATE")
                indexes = [*all_entity_indexes()]
                for ix in indexes:
                    conn.execute(f"DROP INDEX IF EXISTS {q(ix.name)}")
                loader = SQLiteBulkLoader(conn)
                yield loader
                for ix in indexes:
                    conn.execute(ix.sql())
                tx = SQLiteWriteTx(conn)
                tx.allocated = True
                tx.note_commit()
                conn.execute("COMMIT")
                conn.execute("PRAGMA analysis_limit = 1000")
                conn.execute("ANALYZE")
            finally:
                _rollback(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    # ------------------------------------------------------------------ housekeeping

    def compact(self, *, before_seq: int | None = None, keep_days: float | None = None,
                now: float | None = None) -> CompactResult:
        if (before_seq is None) == (keep_days is None):
            raise ValueError("give exactly one of before_seq or keep_days")
        with self.write() as tx:
            conn = tx.conn
            current, old = conn.execute("SELECT last_seq, horizon FROM store_info").fetchone()
            if before_seq is not None:
                wanted = before_seq - 1
            else:
                assert keep_days is not None  # one of before_seq and keep_days is given
                cutoff = int((time.time() if now is None else now) - keep_days * 86400)
                wanted = conn.execute("SELECT max(seq) FROM commits WHERE at < ?", (cutoff,)).fetchone()[0] or 0
            limit = min(wanted, current)
            # The horizon is the last purged row: a cursor at or past it has seen every purged
            # row, so only cursors that missed one must resync. Rows at or below the old horizon
            # were compacted before (a new change is always numbered above it): an hourly round
            # reads only what came since.
            span = (old, limit)
            last, purged = conn.execute(
                "SELECT max(seq), count(*) FROM changes WHERE seq > ? AND seq <= ? AND kind IN ('delete', 'move')", span
            ).fetchone()
            # A tombstone leaves its id behind ("retired": no territory, never read by the feed,
            # which starts at or past the horizon): a create re-sent after its op result was
            # purged must still get `exists`, never bring the record back.
            conn.execute("DELETE FROM changes WHERE seq > ? AND seq <= ? AND kind = 'move'", span)
            conn.execute("UPDATE changes SET kind = 'retired', territory = NULL"
                         " WHERE seq > ? AND seq <= ? AND kind = 'delete'", span)
            horizon = max(old, last or 0)
            conn.execute("UPDATE store_info SET horizon = ?", (horizon,))
        return CompactResult(horizon=(0, horizon), purged=purged)

    def maintain(self, *, op_retention_days: float = OP_RESULT_RETENTION_DAYS, now: float | None = None) -> MaintenanceReport:
        now = time.time() if now is None else now
        cutoff = int(now - op_retention_days * 86400)
        op_results = self._purge("DELETE FROM op_results WHERE op_id IN"
                                 " (SELECT op_id FROM op_results WHERE at < ? LIMIT ?)", cutoff)
        # Commits older than the window are thinned to the last one of each day: enough for
        # `compact --keep-days`, and a cursor's mark below the purge point is taken as known.
        with self.write() as tx:
            purged_through = tx.conn.execute(
                "SELECT max(seq) FROM commits WHERE at < ? AND seq NOT IN"
                " (SELECT max(seq) FROM commits WHERE at < ? GROUP BY at / 86400)", (cutoff, cutoff)
            ).fetchone()[0]
            if purged_through is not None:
                tx.conn.execute("UPDATE store_info SET commits_purged_through = max(commits_purged_through, ?)",
                                (purged_through,))
        commits = self._purge("DELETE FROM commits WHERE seq IN (SELECT seq FROM commits WHERE at < ? AND seq NOT IN"
                              " (SELECT max(seq) FROM commits WHERE at < ? GROUP BY at / 86400) LIMIT ?)", cutoff, cutoff)
        try:
            with self._limits.connection() as conn:
                buckets = conn.execute("DELETE FROM buckets WHERE at < ?", (now - BUCKET_IDLE_SECONDS,)).rowcount
            with self._pool.connection() as conn:
                # Refresh the planner's statistics where they drifted. Under the write lock: left
                # to autocommit, a read that turns into a write while another process writes gets
                # "database is locked" at once, without waiting (several server processes).
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("PRAGMA optimize")
                    conn.execute("COMMIT")
                finally:
                    _rollback(conn)
        except sqlite3.Error as exc:
            raise _store_error(exc) from exc
        return MaintenanceReport(op_results_purged=op_results, commits_purged=commits, rate_buckets_purged=buckets)

    def _purge(self, sql: str, *params: Any) -> int:
        total = 0
        while True:
            with self.write() as tx:
                n = tx.conn.execute(sql, (*params, PURGE_CHUNK)).rowcount
            total += n
            if n < PURGE_CHUNK:
                return total

    def take_rate_token(self, key: str, rate: float, burst: float) -> float:
        now = time.time()
        try:
            with self._limits.connection() as conn:
                # One statement: the bucket refills by elapsed time, then gives a token if it has one.
                ok, tokens = conn.execute(
                    """INSERT INTO buckets (key, tokens, at, ok) VALUES (:key, :burst - 1, :now, 1)
                       ON CONFLICT (key) DO UPDATE SET
                         tokens = min(:burst, tokens + max(0, :now - at) * :rate)
                                  - (min(:burst, tokens + max(0, :now - at) * :rate) >= 1),
                         ok = min(:burst, tokens + max(0, :now - at) * :rate) >= 1,
                         at = :now
                       RETURNING ok, tokens""",
                    {"key": key, "burst": burst, "now": now, "rate": rate},
                ).fetchone()
        except sqlite3.Error as exc:
            raise _store_error(exc) from exc
        return 0.0 if ok else (1.0 - tokens) / rate

    def close(self) -> None:
        self._pool.close()
        self._limits.close()


def _close(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error:
        pass


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # never hand a connection back in the middle of something
        conn.execute("ROLLBACK")


def _store_error(exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreBusy(f"the database is busy: {text}")
    return StoreError(f"database error: {text}")


class SQLiteBulkLoader(BulkLoader):
    """BulkLoader inside the bulk-load transaction; contracts as written on :class:`BulkLoader`."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def add(self, ent: Entity, rows: Iterable[Sequence[Any]]) -> int:
        codec = codec_for(ent)
        names = writable_columns(ent)
        tag_idx = [i for i, c in enumerate(names) if codec.kinds.get(c) == "tags"]
        territory_idx = names.index("territory") if ent.anchor is not None else None
        insert = (f"INSERT INTO {q(ent.table)} ({', '.join(map(q, [*names, 'version']))})"
                  f" VALUES ({', '.join('?' * (len(names) + 1))})")
        total = 0
        for chunk in iter_chunks(rows, 20_000):
            n = len(chunk)
            last = self.conn.execute(
                "UPDATE store_info SET last_seq = last_seq + ? RETURNING last_seq", (n,)
            ).fetchone()[0]
            first = int(last) - n + 1
            if tag_idx:
                chunk = [list(r) for r in chunk]
                for r in chunk:
                    for i in tag_idx:
                        r[i] = codec.to_sql(names[i], r[i])
            self.conn.executemany(insert, [(*r, first + i) for i, r in enumerate(chunk)])
            name = ent.name
            if territory_idx is None:
                changes = [(first + i, name, r[0], None) for i, r in enumerate(chunk)]
            else:
                changes = [(first + i, name, r[0], r[territory_idx]) for i, r in enumerate(chunk)]
            self.conn.executemany(
                "INSERT INTO changes (seq, entity, record_id, kind, territory) VALUES (?, ?, ?, 'upsert', ?)", changes
            )
            total += n
        return total

    def set_counter(self, counter: str, value: int) -> None:
        if counter not in ("ticket", "order"):
            raise KeyError(f"unknown counter {counter!r}")
        self.conn.execute(f"UPDATE store_info SET {counter}_number = ?", (value,))
