"""The gateway's tables in the SQLite backend (the interface: store/gateway_state.py)."""

from __future__ import annotations

import fcntl
import os
import sqlite3

import orjson

from crm_server.store.gateway_state import GatewayReads, GatewayWrites, LedgerEntry, UpstreamLink

GATEWAY_DDL = [
    """CREATE TABLE IF NOT EXISTS gateway_links (
        entity TEXT NOT NULL,
        local_id TEXT NOT NULL,
        upstream_id TEXT NOT NULL,
        content_hash TEXT,
        PRIMARY KEY (entity, local_id)
    ) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX IF NOT EXISTS gateway_links_upstream ON gateway_links (entity, upstream_id)",
    """CREATE TABLE IF NOT EXISTS gateway_ledger (
        op_id TEXT PRIMARY KEY NOT NULL,
        entity TEXT NOT NULL,
        local_id TEXT NOT NULL,
        natural_key TEXT NOT NULL,
        state TEXT NOT NULL,
        upstream_id TEXT,
        started_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT) WITHOUT ROWID",
]

_LINK = "SELECT entity, local_id, upstream_id, content_hash FROM gateway_links"


class SQLiteGatewayReads(GatewayReads):
    """Contracts as written on :class:`GatewayReads`."""

    conn: sqlite3.Connection

    def gateway_link(self, entity: str, *, local_id: str | None = None, upstream_id: str | None = None) -> UpstreamLink | None:
        if (local_id is None) == (upstream_id is None):
            raise ValueError("give exactly one of local_id or upstream_id")
        column, value = ("local_id", local_id) if local_id is not None else ("upstream_id", upstream_id)
        row = self.conn.execute(f"{_LINK} WHERE entity = ? AND {column} = ?", (entity, value)).fetchone()
        return None if row is None else UpstreamLink(*row)

    def gateway_links(self, entity: str) -> list[UpstreamLink]:
        return [UpstreamLink(*row) for row in self.conn.execute(f"{_LINK} WHERE entity = ?", (entity,))]

    def gateway_ledger(self, op_id: str) -> LedgerEntry | None:
        row = self.conn.execute(
            "SELECT op_id, entity, local_id, natural_key, state, upstream_id, started_at FROM gateway_ledger WHERE op_id = ?",
            (op_id,),
        ).fetchone()
        if row is None:
            return None
        return LedgerEntry(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5], row[6])

    def gateway_value(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM gateway_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]


class SQLiteGatewayWrites(GatewayWrites):
    """Contracts as written on :class:`GatewayWrites`."""

    conn: sqlite3.Connection

    def set_gateway_link(self, link: UpstreamLink) -> None:
        # An upstream id adopted by another mirror record (a create whose answer was lost, then
        # seen by a scan) moves to the record the client made.
        self.conn.execute("DELETE FROM gateway_links WHERE entity = ? AND upstream_id = ? AND local_id != ?",
                          (link.entity, link.upstream_id, link.local_id))
        self.conn.execute(
            "INSERT OR REPLACE INTO gateway_links (entity, local_id, upstream_id, content_hash) VALUES (?, ?, ?, ?)",
            (link.entity, link.local_id, link.upstream_id, link.content_hash),
        )

    def drop_gateway_link(self, entity: str, local_id: str) -> None:
        self.conn.execute("DELETE FROM gateway_links WHERE entity = ? AND local_id = ?", (entity, local_id))

    def put_gateway_ledger(self, entry: LedgerEntry) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO gateway_ledger (op_id, entity, local_id, natural_key, state, upstream_id, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entry.op_id, entry.entity, entry.local_id, orjson.dumps(entry.natural_key).decode(), entry.state,
             entry.upstream_id, entry.started_at),
        )

    def set_gateway_value(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM gateway_meta WHERE key = ?", (key,))
        else:
            self.conn.execute("INSERT OR REPLACE INTO gateway_meta (key, value) VALUES (?, ?)", (key, value))


class SQLitePollerLock:
    """The right to poll the upstream, for one process among those serving the SQLite file: an
    exclusive lock on ``<db>-poller.lock``, held until :meth:`release` (or the process dies)."""

    def __init__(self, db_path: str):
        self.path = db_path + "-poller.lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """True when this process holds the lock (now or already); never waits or raises."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
