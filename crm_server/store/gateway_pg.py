"""The gateway's tables in the PostgreSQL backend (the interface: store/gateway_state.py).

The same four kinds of state as on SQLite (store/gateway_sqlite.py): links between mirror and
upstream records with the content hash last seen, the op ledger that makes upstream creates
idempotent, and named values (the newest audit-log entry handled, the last full scan). Every
server process serving the database shares them; only one of them polls the upstream at a time
(:class:`PgPollerLock`, a session advisory lock).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg

from crm_server.store.gateway_state import GatewayReads, GatewayWrites, LedgerEntry, UpstreamLink

log = logging.getLogger("crm_server.store")

# Held (per session) by the one server process that polls the upstream.
POLLER_LOCK = 0x63726D02

PG_GATEWAY_DDL = [
    """CREATE TABLE IF NOT EXISTS gateway_links (
        entity text NOT NULL,
        local_id text NOT NULL,
        upstream_id text NOT NULL,
        content_hash text,
        PRIMARY KEY (entity, local_id)
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS gateway_links_upstream ON gateway_links (entity, upstream_id)",
    """CREATE TABLE IF NOT EXISTS gateway_ledger (
        op_id text PRIMARY KEY,
        entity text NOT NULL,
        local_id text NOT NULL,
        natural_key jsonb NOT NULL,
        state text NOT NULL,
        upstream_id text,
        started_at double precision NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS gateway_meta (key text PRIMARY KEY, value text)",
]

_LINK = "SELECT entity, local_id, upstream_id, content_hash FROM gateway_links"


class PgGatewayReads(GatewayReads):
    """Contracts as written on :class:`GatewayReads`."""

    conn: Any

    def gateway_link(self, entity: str, *, local_id: str | None = None, upstream_id: str | None = None) -> UpstreamLink | None:
        if (local_id is None) == (upstream_id is None):
            raise ValueError("give exactly one of local_id or upstream_id")
        column, value = ("local_id", local_id) if local_id is not None else ("upstream_id", upstream_id)
        row = self.conn.execute(f"{_LINK} WHERE entity = %s AND {column} = %s", (entity, value)).fetchone()
        return None if row is None else UpstreamLink(*row)

    def gateway_links(self, entity: str) -> list[UpstreamLink]:
        return [UpstreamLink(*row) for row in self.conn.execute(f"{_LINK} WHERE entity = %s", (entity,)).fetchall()]

    def gateway_ledger(self, op_id: str) -> LedgerEntry | None:
        row = self.conn.execute(
            "SELECT op_id, entity, local_id, natural_key, state, upstream_id, started_at FROM gateway_ledger"
            " WHERE op_id = %s", (op_id,)).fetchone()
        if row is None:
            return None
        key = row[3] if isinstance(row[3], dict) else orjson.loads(row[3])
        return LedgerEntry(row[0], row[1], row[2], key, row[4], row[5], float(row[6]))

    def gateway_value(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM gateway_meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else row[0]


class PgGatewayWrites(GatewayWrites):
    """Contracts as written on :class:`GatewayWrites`."""

    conn: Any

    def set_gateway_link(self, link: UpstreamLink) -> None:
        # An upstream id adopted by another mirror record moves to the record the client made.
        self.conn.execute("DELETE FROM gateway_links WHERE entity = %s AND upstream_id = %s AND local_id <> %s",
                          (link.entity, link.upstream_id, link.local_id))
        self.conn.execute(
            "INSERT INTO gateway_links (entity, local_id, upstream_id, content_hash) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (entity, local_id) DO UPDATE SET upstream_id = EXCLUDED.upstream_id,"
            " content_hash = EXCLUDED.content_hash",
            (link.entity, link.local_id, link.upstream_id, link.content_hash),
        )

    def drop_gateway_link(self, entity: str, local_id: str) -> None:
        self.conn.execute("DELETE FROM gateway_links WHERE entity = %s AND local_id = %s", (entity, local_id))

    def put_gateway_ledger(self, entry: LedgerEntry) -> None:
        self.conn.execute(
            "INSERT INTO gateway_ledger (op_id, entity, local_id, natural_key, state, upstream_id, started_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (op_id) DO UPDATE SET entity = EXCLUDED.entity,"
            " local_id = EXCLUDED.local_id, natural_key = EXCLUDED.natural_key, state = EXCLUDED.state,"
            " upstream_id = EXCLUDED.upstream_id, started_at = EXCLUDED.started_at",
            (entry.op_id, entry.entity, entry.local_id, orjson.dumps(entry.natural_key).decode(), entry.state,
             entry.upstream_id, entry.started_at),
        )

    def set_gateway_value(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM gateway_meta WHERE key = %s", (key,))
        else:
            self.conn.execute("INSERT INTO gateway_meta (key, value) VALUES (%s, %s)"
                              " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, value))


class PgPollerLock:
    """The right to poll the upstream, for one server process among all that serve the database:
    a session advisory lock on a connection of its own, held until :meth:`release` (or the
    process dies: PostgreSQL frees it with the session)."""

    def __init__(self, url: str):
        self.url = url
        self._conn: psycopg.Connection | None = None

    def try_acquire(self) -> bool:
        """True when this process holds the lock (now or already). Never raises: a database
        that cannot be reached just means "not now"."""
        try:
            if self._conn is not None:
                if self._conn.closed:
                    self._conn = None
                else:
                    self._conn.execute("SELECT 1")  # the session (and its lock) is still there
                    return True
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            if (conn.execute("SELECT pg_try_advisory_lock(%s)", (POLLER_LOCK,)).fetchone() or (False,))[0]:
                self._conn = conn
                return True
            conn.close()
            return False
        except psycopg.Error as exc:
            log.warning("gateway poller lock: %s", " ".join(str(exc).split()))
            self.release()
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                conn.close()  # ends the session: the lock goes with it
            except psycopg.Error:
                pass
