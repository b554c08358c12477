"""The replica's one connection and what every part of the replica shares over it: write
transactions, the ``replica_meta`` key/value table, and the clock.

A part of the replica (reads, local writes, the outbox ...) is handed a ``Store`` and the other
parts it works with, never the whole ``Replica``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from cache.errors import ReplicaBusy
from cache.sqlite import sqlite3
from crm_tui.core.domain import format_datetime


class Store:
    """``conn`` with its write lock; ``clock`` is "now" for everything the replica records."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], dt.datetime]):
        self.conn = conn
        self.clock = clock
        self._lock = threading.RLock()
        self._depth = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction (nested blocks join the outer one).

        Takes SQLite's write lock up front (BEGIN IMMEDIATE), so a reader never sees half a
        change; raises ReplicaBusy when another process holds it past the busy timeout."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise ReplicaBusy(
                    "the replica is busy: another process (the app or a sync) is writing to it; try again in a moment"
                ) from exc
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` in replica_meta, or ``default``."""
        row = self.conn.execute("SELECT value FROM replica_meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        """Store ``value`` (as JSON) under ``key`` in replica_meta, in the caller's transaction
        if there is one, else in one of its own."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO replica_meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def generation(self) -> int:
        """The replacement-sync generation rows are written with (``ServerApply.start_resync``
        bumps it; rows of an older generation are what a finished resync sweeps)."""
        return int(self.get_meta("resync_gen", 0) or 0)

    def now(self) -> str:
        """The clock's "now" as the replica stores times."""
        return format_datetime(self.clock())
