"""The embedded SQLite backend: one file, zero configuration, WAL so readers never block writers.

Writers serialise on ``BEGIN IMMEDIATE`` (the database write lock) and take the commit sequence
inside it, so sequence order is commit order across threads and across server processes sharing
the file. Readers run in deferred transactions, which in WAL mode are consistent snapshots.
"""

from __future__ import annotations

import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crm_server.store.base import BulkLoader, CompactResult, Store, StoreBusy, StoreError, iter_chunks
from crm_server.store.codec import codec_for
from crm_server.store.gateway_sqlite import GATEWAY_DDL
from crm_server.store.schema import SCHEMA_VERSION, all_ddl, entity_indexes, q
from crm_server.store.sqlite_tx import SQLiteReadTx, SQLiteWriteTx
from crm_tui.domain import ENTITIES, Entity

BUSY_TIMEOUT_MS = 10_000
# Connections open at most. Each keeps its own page cache (cache_size below), so the pool is what
# bounds the server's memory: one connection per request thread grew it to a gigabyte.
POOL_SIZE = 8
COUNTERS = ("ticket", "order")


class SQLiteStore(Store):
    """A CRM database in one SQLite file, created (with a fresh epoch and secret) if missing.

    Each method keeps the contract written on :class:`Store`. Raises StoreError if the file is
    not a usable CRM database.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        conn = self._acquire()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            self._initialise(conn)
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot use database {self.path}: {exc}") from exc
        else:
            self._release(conn)

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            # NORMAL is durable across application crashes in WAL mode; only a power cut can
            # lose the last transactions, never corrupt the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -32000")
            conn.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        self._all.append(conn)
        return conn

    def _acquire(self) -> sqlite3.Connection:
        # A slot first: at most POOL_SIZE connections exist, the others wait (never nest them).
        if not self._slots.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise StoreBusy(f"all {POOL_SIZE} database connections stayed busy")
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        try:
            return self._connect()
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:  # never hand out a connection in the middle of something
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._all.remove(conn)  # unusable: closed, and its slot goes to a fresh one
            conn.close()
            raise
        else:
            self._pool.put(conn)
        finally:
            self._slots.release()

    def _initialise(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in [*all_ddl(), *GATEWAY_DDL]:
                conn.execute(stmt)
            # Databases made before commits had a nonce: add the column (old rows stay NULL, and
            # cursors from before carry no fingerprint, so they keep working).
            if "nonce" not in {row[1] for row in conn.execute("PRAGMA table_info(commits)")}:
                conn.execute("ALTER TABLE commits ADD COLUMN nonce TEXT")
            defaults = {
                "schema_version": SCHEMA_VERSION,
                # The epoch names this database: a cursor from another one is useless here.
                "epoch": secrets.token_hex(8),
                "secret": secrets.token_hex(32),
                "seq": 0,
                "horizon": 0,
                **{c + "_number": 0 for c in COUNTERS},
            }
            conn.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", defaults.items())
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}; this server needs {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def read(self) -> Iterator[SQLiteReadTx]:
        conn = self._acquire()
        try:
            conn.execute("BEGIN")
            yield SQLiteReadTx(conn)
        except sqlite3.Error as exc:
            raise _store_error(exc) from exc
        finally:
            self._release(conn)

    @contextmanager
    def write(self) -> Iterator[SQLiteWriteTx]:
        conn = self._acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            tx = SQLiteWriteTx(conn)
            yield tx
            tx.note_commit()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _store_error(exc) from exc
        finally:
            self._release(conn)

    @contextmanager
    def bulk_load(self) -> Iterator[SQLiteBulkLoader]:
        conn = self._acquire()
        try:
            # The load is one transaction: if it fails nothing is left behind, so the usual
            # fsyncs buy nothing here.
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA cache_size = -200000")
            conn.execute("BEGIN IMMEDIATE")
            dropped = [name for e in ENTITIES.values() for name, _ in entity_indexes(e)]
            for name in dropped:
                conn.execute(f"DROP INDEX IF EXISTS {q(name)}")
            loader = SQLiteBulkLoader(conn)
            yield loader
            for e in ENTITIES.values():
                for _, sql in entity_indexes(e):
                    conn.execute(sql)
            conn.execute("INSERT OR REPLACE INTO commits (seq, at, nonce) SELECT value, ?, ? FROM meta WHERE key = 'seq'",
                         (int(time.time()), secrets.token_hex(8)))
            conn.execute("COMMIT")
            conn.execute("PRAGMA analysis_limit = 1000")
            conn.execute("ANALYZE")
        finally:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -32000")
            self._release(conn)

    def compact(self, *, before_seq: int | None = None, keep_days: float | None = None) -> CompactResult:
        if (before_seq is None) == (keep_days is None):
            raise ValueError("give exactly one of before_seq or keep_days")
        with self.write() as tx:
            conn = tx.conn
            current = int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
            old = int(conn.execute("SELECT value FROM meta WHERE key = 'horizon'").fetchone()[0])
            if before_seq is not None:
                wanted = before_seq - 1
            else:
                cutoff = int(time.time() - keep_days * 86400)
                wanted = conn.execute("SELECT max(seq) FROM commits WHERE at < ?", (cutoff,)).fetchone()[0] or 0
            horizon = max(old, min(wanted, current))
            purged = conn.execute(
                "DELETE FROM changes WHERE seq <= ? AND kind IN ('delete', 'move')", (horizon,)
            ).rowcount
            conn.execute("UPDATE meta SET value = ? WHERE key = 'horizon'", (horizon,))
        return CompactResult(horizon=horizon, purged=purged)

    def close(self) -> None:
        for conn in self._all:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._all.clear()


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
        names = [c for c in ent.columns if c != "version"]
        tag_idx = [i for i, c in enumerate(names) if codec.kinds.get(c) == "tags"]
        if ent.anchor == "customer_id":
            names.append("territory")
            territory_idx = len(names) - 1
        elif ent.anchor == "self":
            territory_idx = names.index("territory")
        else:
            territory_idx = None
        names.append("version")
        insert = f"INSERT INTO {q(ent.table)} ({', '.join(map(q, names))}) VALUES ({', '.join('?' * len(names))})"
        total = 0
        for chunk in iter_chunks(rows, 20_000):
            n = len(chunk)
            last = self.conn.execute(
                "UPDATE meta SET value = value + ? WHERE key = 'seq' RETURNING value", (n,)
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
        if counter not in COUNTERS:
            raise KeyError(f"unknown counter {counter!r}")
        self.conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, counter + "_number"))
