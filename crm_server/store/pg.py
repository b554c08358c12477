"""The PostgreSQL backend: many server processes, concurrent writers, orders partitioned by month.

``open_store("postgresql://user@host:port/dbname")``. The database must exist; opening it creates
or migrates the schema (under an advisory lock, so server processes starting together do it
once). Connections come from a bounded psycopg pool. Everything processes must agree on — the
epoch, the cursor key, rate-limit buckets, idempotency records — is in the database.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from crm_server.store.base import (
    MAX_SEQ,
    OP_RESULT_RETENTION_DAYS,
    BulkLoader,
    CompactResult,
    MaintenanceReport,
    Store,
    StoreBusy,
    StoreConflict,
    StoreError,
    iter_chunks,
    previous,
)
from crm_server.store.gateway_pg import PgPollerLock
from crm_server.store.pg_schema import (
    SCHEMA_LOCK,
    create_or_upgrade,
    ensure_partition,
    existing_partitions,
    maintain_partitions,
)
from crm_server.store.pg_tx import PostgresReadTx, PostgresWriteTx
from crm_server.store.probe import Meter
from crm_server.store.schema import PARTITIONED, q, writable_columns
from crm_server.store.sql_tx import transaction
from crm_tui.core.domain import Entity

POOL_SIZE = 10  # connections per server process
CONNECT_TIMEOUT = 10
WAIT_SECONDS = 30.0  # for a free pooled connection, then 503
LOCK_TIMEOUT = "10s"  # a row lock held longer than this by another writer: 503, retry
PURGE_CHUNK = 10_000
BUCKET_IDLE_SECONDS = 3600


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _configure(conn: psycopg.Connection) -> None:
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    # A transaction left open by a crashed request would hold the feed's head back.
    conn.execute("SET idle_in_transaction_session_timeout = '60s'")


def _store_error(exc: psycopg.Error) -> StoreError:
    if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
        return StoreConflict(f"lost a race with another writer: {exc}")
    if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled | psycopg.OperationalError):
        return StoreBusy(f"the database is busy: {exc}")
    return StoreError(f"database error: {exc}")


def _rollback(conn: psycopg.Connection) -> None:
    if conn.closed or conn.info.transaction_status == pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # a broken connection: the pool discards it


def open_pool(url: str, size: int, *, wait: float = WAIT_SECONDS, connect_timeout: float = CONNECT_TIMEOUT,
              name: str = "crm-server", **options: Any) -> ConnectionPool:
    """A pool of at most ``size`` autocommit connections to ``url``; a request waits up to
    ``wait`` seconds for one (then StoreBusy). ``options``: more libpq connection parameters."""
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, "connect_timeout": connect_timeout, **options},
        configure=_configure,
        timeout=wait,
        name=name,
        open=True,
    )


class PostgresStore(Store):
    """A CRM database in PostgreSQL; each method keeps the contract written on :class:`Store`."""

    backend = "postgresql"

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE):
        self.url = url
        self._meter = threading.local()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
                conn.execute("BEGIN")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                self.opened_at_version = create_or_upgrade(conn, dt.date.today())
                conn.execute("COMMIT")
        except psycopg.Error as exc:
            # psycopg's messages span lines ("Is the server running ..."): one line for the CLI.
            raise StoreError(f"cannot use database {redact(url)}: {' '.join(str(exc).split())}") from None
        self._pool = open_pool(url, pool_size)

    def poller_lock(self) -> PgPollerLock:
        return PgPollerLock(self.url)

    # ------------------------------------------------------------------ connections

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreBusy(f"no database connection was free for {self._pool.timeout:.0f} s") from exc

    @contextmanager
    def metered(self) -> Iterator[Meter]:
        """Record every statement the read transactions of this thread run inside the block
        (for :mod:`crm_server.store.probe`)."""
        meter = Meter()
        self._meter.current = meter
        try:
            yield meter
        finally:
            self._meter.current = None

    @contextmanager
    def metered_writes(self) -> Iterator[list[tuple[str, Any]]]:
        """Record the statements the write transactions of this thread send inside the block, one
        entry per round trip to PostgreSQL (an ``executemany`` sends its rows together: one entry)."""
        statements: list[tuple[str, Any]] = []
        self._meter.writes = statements
        try:
            yield statements
        finally:
            self._meter.writes = None

    def plans(self, statements: Iterable[tuple[str, Sequence[Any]]], *, analyze: bool = False) -> list[dict]:
        """The JSON query plan of each statement (run again with ANALYZE: read-only ones only)."""
        options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
        out = []
        with self.read() as tx:
            for sql, params in statements:
                out.append(tx.conn.execute(f"EXPLAIN ({options}) {sql}", params).fetchone()[0][0])
        return out

    # ------------------------------------------------------------------ transactions

    def _transaction(self, begin: str | None, make_tx: Any, *, commit: bool) -> Any:
        return transaction(self._connection(), begin, make_tx, db_error=psycopg.Error, to_store_error=_store_error,
                           rollback=_rollback, commit=commit)

    @contextmanager
    def read(self) -> Iterator[PostgresReadTx]:
        meter = getattr(self._meter, "current", None)
        statements = None if meter is None else meter.statements
        # BEGIN goes with the transaction's first statement (one round trip less).
        with self._transaction(None, lambda conn: PostgresReadTx(
                conn, statements, begin="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"), commit=False) as tx:
            yield tx

    def write(self) -> AbstractContextManager[PostgresWriteTx]:
        statements = getattr(self._meter, "writes", None)
        return self._transaction(None, lambda conn: PostgresWriteTx(conn, statements, begin=PostgresWriteTx.BEGIN),
                                 commit=True)

    @contextmanager
    def bulk_load(self) -> Iterator[PostgresBulkLoader]:
        with self.write() as tx:
            # One transaction: if it fails nothing is left behind, so waiting for the WAL flush
            # buys nothing until its COMMIT.
            tx.conn.execute("SET LOCAL synchronous_commit = off")
            yield PostgresBulkLoader(tx)
        self.maintain_partitions()
        with self._connection() as conn:
            conn.execute("ANALYZE")

    # ------------------------------------------------------------------ housekeeping

    def compact(self, *, before_seq: int | None = None, keep_days: float | None = None,
                now: float | None = None) -> CompactResult:
        if (before_seq is None) == (keep_days is None):
            raise ValueError("give exactly one of before_seq or keep_days")
        with self.write() as tx:
            conn = tx.conn
            old = tuple(conn.execute("SELECT horizon_tx, horizon_seq FROM store_info FOR UPDATE").fetchone())
            xmin = int(conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetchone()[0])
            head = (xmin - 1, MAX_SEQ)
            if before_seq is not None:
                # Everything before the first change that has a sequence at or above before_seq.
                first = conn.execute(
                    "SELECT xid, seq FROM changes WHERE seq >= %s ORDER BY xid, seq LIMIT 1", (before_seq,)
                ).fetchone()
                wanted = previous((int(first[0]), int(first[1]))) if first else head
            else:
                clock = "clock_timestamp()" if now is None else f"to_timestamp({float(now)!r})"
                young = conn.execute(
                    f"SELECT min(xid) FROM commits WHERE at >= {clock} - %s * interval '1 day'", (keep_days,)
                ).fetchone()[0]
                wanted = (int(young) - 1, MAX_SEQ) if young is not None else head
            limit = min(wanted, head)
            # The horizon is the last purged row: a cursor at or past it has seen every purged
            # row, so only cursors that missed one must resync. Rows up to the head are final.
            # Rows at or below the old horizon were compacted before (a new change lands above
            # any head): an hourly round reads only what came since.
            below = "(xid, seq) > (%s, %s) AND (xid, seq) <= (%s, %s)"
            span = (*old, *limit)
            last = conn.execute(f"SELECT xid, seq FROM changes WHERE {below} AND kind IN ('delete', 'move')"
                                " ORDER BY xid DESC, seq DESC LIMIT 1", span).fetchone()
            # A tombstone leaves its id behind ("retired": no territory, never read by the feed,
            # which starts at or past the horizon): a create re-sent after its op result was
            # purged must still get `exists`, never bring the record back.
            purged = conn.execute(f"DELETE FROM changes WHERE {below} AND kind = 'move'", span).rowcount
            purged += conn.execute(f"UPDATE changes SET kind = 'retired', territory = NULL WHERE {below}"
                                   " AND kind = 'delete'", span).rowcount
            horizon = max(old, (int(last[0]), int(last[1])) if last else old)
            conn.execute("UPDATE store_info SET horizon_tx = %s, horizon_seq = %s", horizon)
        return CompactResult(horizon=horizon, purged=purged)

    def maintain(self, *, op_retention_days: float = OP_RESULT_RETENTION_DAYS, now: float | None = None) -> MaintenanceReport:
        clock = "clock_timestamp()" if now is None else f"to_timestamp({float(now)!r})"
        cutoff = f"{clock} - %s * interval '1 day'"
        days = (op_retention_days,)
        op_results = self._purge(
            f"DELETE FROM op_results WHERE op_id IN (SELECT op_id FROM op_results WHERE at < {cutoff} LIMIT %s)", days)
        # Older commits are thinned to the last one of each day (compaction by age keeps working;
        # a cursor's mark at or below the purge point counts as known).
        thin = (f"FROM commits WHERE at < {cutoff} AND n NOT IN"
                f" (SELECT max(n) FROM commits WHERE at < {cutoff} GROUP BY date_trunc('day', at))")
        with self._connection() as conn:
            conn.execute(
                f"UPDATE store_info SET commits_purged_through = greatest(commits_purged_through,"
                f" coalesce((SELECT max(n) {thin}), 0))", days * 2)
        commits = self._purge(f"DELETE FROM commits WHERE n IN (SELECT n {thin} LIMIT %s)", days * 2)
        with self._connection() as conn:
            buckets = conn.execute(
                f"DELETE FROM rate_buckets WHERE at < extract(epoch FROM {clock}) - %s", (BUCKET_IDLE_SECONDS,)
            ).rowcount
        created, moved = self.maintain_partitions()
        with self._connection() as conn:
            # Fresh statistics keep the planner on the per-territory ranges of the change log
            # (autovacuum may wait for 10% of a big table to change).
            conn.execute("ANALYZE")
        return MaintenanceReport(op_results_purged=op_results, commits_purged=commits, rate_buckets_purged=buckets,
                                 partitions_created=created, rows_moved_from_default=moved)

    def maintain_partitions(self, today: dt.date | None = None) -> tuple[list[str], int]:
        """Create the coming months' order partitions and move rows out of the default one.
        Returns (partitions created, rows moved); does nothing while another process does it."""
        with self._connection() as conn:
            try:
                conn.execute("BEGIN")
                if not (conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (SCHEMA_LOCK,)).fetchone() or (False,))[0]:
                    return [], 0
                result = maintain_partitions(conn, today or dt.date.today())
                conn.execute("COMMIT")
                return result
            except psycopg.Error as exc:
                raise _store_error(exc) from exc
            finally:
                _rollback(conn)

    def _purge(self, sql: str, params: Sequence[Any]) -> int:
        total = 0
        while True:
            with self._connection() as conn:
                try:
                    n = conn.execute(sql, (*params, PURGE_CHUNK)).rowcount
                except psycopg.Error as exc:
                    raise _store_error(exc) from exc
            total += n
            if n < PURGE_CHUNK:
                return total

    def last_commit(self) -> int:
        with self._connection() as conn:
            try:
                return int(conn.execute("SELECT n FROM commit_clock").fetchone()[0])  # type: ignore[index]  # one row
            except psycopg.Error as exc:
                raise _store_error(exc) from exc

    def take_rate_token(self, key: str, rate: float, burst: float) -> float:
        avail = "LEAST(%(burst)s, b.tokens + GREATEST(0, EXCLUDED.at - b.at) * %(rate)s)"
        with self._connection() as conn:
            try:
                ok, tokens = conn.execute(  # type: ignore[misc]  # RETURNING always gives the row
                    "INSERT INTO rate_buckets AS b (key, tokens, at, ok)"
                    " VALUES (%(key)s, %(burst)s - 1, extract(epoch FROM clock_timestamp()), true)"
                    f" ON CONFLICT (key) DO UPDATE SET tokens = {avail} - CASE WHEN {avail} >= 1 THEN 1 ELSE 0 END,"
                    f" ok = {avail} >= 1, at = EXCLUDED.at RETURNING ok, tokens",
                    {"key": key, "burst": burst, "rate": rate},
                ).fetchone()
            except psycopg.Error as exc:
                raise _store_error(exc) from exc
        return 0.0 if ok else (1.0 - tokens) / rate

    def renew_identity(self) -> None:
        """Give this database a new epoch and cursor key. For a copy of another database (a
        template, a staging clone): the cursors of the original must get 410 here, not be read."""
        with self.write() as tx:
            tx.conn.execute("UPDATE store_info SET epoch = %s, cursor_key = %s",
                            (secrets.token_hex(8), secrets.token_bytes(32)))

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()


class PostgresBulkLoader(BulkLoader):
    """BulkLoader inside the bulk-load transaction, with COPY; contracts as written on
    :class:`BulkLoader`."""

    def __init__(self, tx: PostgresWriteTx):
        self.tx = tx
        self.conn = tx.conn
        self._existing: set[str] | None = None

    def add(self, ent: Entity, rows: Iterable[Sequence[Any]]) -> int:
        names = writable_columns(ent)
        date_idx = names.index(PARTITIONED[ent.name]) if ent.name in PARTITIONED else None
        tags = [i for i, c in enumerate(names) if ent.by_name.get(c) is not None and ent.by_name[c].kind == "tags"]
        territory_idx = names.index("territory") if ent.anchor is not None else None
        xid = None
        total = 0
        copy_rows = f"COPY {q(ent.table)} ({', '.join(map(q, [*names, 'version']))}) FROM STDIN"
        with self.conn.cursor() as cur:
            for chunk in iter_chunks(rows, 20_000):
                if date_idx is not None:
                    self._partitions(ent, {str(r[date_idx])[:7] for r in chunk})
                seqs = self.tx.alloc(len(chunk))
                xid = self.tx.change_values(0)[1][0]
                with cur.copy(copy_rows) as copy:
                    for r, s in zip(chunk, seqs, strict=True):
                        values = list(r)
                        for i in tags:
                            values[i] = None if values[i] is None else Jsonb(list(values[i]))
                        copy.write_row((*values, s))
                with cur.copy("COPY changes (seq, xid, entity, record_id, kind, territory, part_date) FROM STDIN") as copy:
                    for r, s in zip(chunk, seqs, strict=True):
                        territory = None if territory_idx is None else r[territory_idx]
                        part = None if date_idx is None else r[date_idx]
                        copy.write_row((s, xid, ent.name, r[0], "upsert", territory, part))
                total += len(chunk)
        return total

    def _partitions(self, ent: Entity, months: set[str]) -> None:
        """Make the partitions of the months about to be loaded (COPY never fills the default)."""
        if self._existing is None:
            self._existing = existing_partitions(self.conn, ent.table)
        for month in sorted(months):
            ensure_partition(self.conn, ent, dt.date.fromisoformat(month + "-01"), self._existing)

    def set_counter(self, counter: str, value: int) -> None:
        if counter not in ("ticket", "order"):
            raise KeyError(f"unknown counter {counter!r}")
        # setval(v, true): the next number is v + 1; setval(1, false): it is 1.
        self.conn.execute("SELECT setval(%s, %s, %s)", (f"{counter}_number", max(value, 1), value >= 1))

