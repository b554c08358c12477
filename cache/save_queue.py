"""Saves handed off durably, so saving never waits for the replica's write lock.

A sync can hold the replica's write lock for seconds (an index rebuild during bootstrap). A save
must not wait for it on the UI thread, and must not be lost while it waits, not even if the app
quits. So a save is first written to a small journal, its own SQLite file beside the replica
(``replica.db`` -> ``replica-saves.db``), which nothing else locks: ``submit`` returns once the
save is on disk there, in milliseconds. A worker with its own replica connection then applies
the journal in order, each entry as one ordinary local write (replica row and outbox op in one
transaction, see ``local_writes``), waiting as long as the lock is busy.

Exactly once: the transaction that applies entry N also records N in the replica
(``replica_meta.saves_applied``); an entry at or below that mark is already in the replica and is
only dropped from the journal. A crash between the two commits therefore never applies a save
twice. An entry the replica refuses at apply time (its record was deleted by a sync meanwhile)
stays in the journal as failed, with the reason, for the user to see.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cache.errors import ReplicaBusy, ReplicaError
from cache.local_writes import LocalWrites
from cache.rejected import RejectedOps
from cache.sqlite import connect_keyed, sqlite3
from cache.store import Store
from crm_tui.core.domain import ValidationError, format_datetime, utcnow

# Local writes, and what the user decides about the outbox (record_id is then the op's seq or
# the conflict's id): every change the UI makes to the replica.
ACTIONS = ("create", "update", "delete", "resend", "discard", "resolve")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS saves (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    error TEXT,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Save:
    seq: int
    action: str
    entity: str
    record_id: str
    fields: dict[str, Any]
    state: str = "queued"  # queued, failed
    error: str | None = None


@dataclass(frozen=True)
class Applied:
    """What ``apply_next`` did: ``state`` is applied, failed or busy (then ``save`` waits)."""

    save: Save
    state: str
    record: dict[str, Any] | None = None
    error: str | None = None


def journal_path(replica_path: Path) -> Path:
    return replica_path.with_name(f"{replica_path.stem}-saves.db")


class SaveTarget(Protocol):
    """What applying a save needs of a replica connection (``cache.replica.Replica`` is one)."""

    store: Store
    writes: LocalWrites
    rejected: RejectedOps

    def get(self, entity_name: str, record_id: str) -> dict[str, Any] | None: ...


class SaveQueue:
    """The journal of saves not yet applied to the replica at ``replica_path``.

    The file is created by the first ``submit``; reading an absent journal answers "nothing
    queued" without creating it (``crm-tui status`` works on a read-only data dir).
    """

    def __init__(self, replica_path: Path, key: bytes | None = None, *,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.path = journal_path(Path(replica_path))
        self._clock = clock  # the replica's
        self._key = key  # the replica's: queued saves are customer data, encrypted like it
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        if self._conn is None:
            if not create and not self.path.exists():
                return None
            conn = connect_keyed(str(self.path), self._key, timeout=10.0)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # a queued save is on disk when submit returns
            conn.execute(_SCHEMA)
            with contextlib.suppress(OSError):
                self.path.chmod(0o600)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    # ------------------------------------------------------------------ the UI side

    def submit(self, action: str, entity: str, record_id: str, fields: dict[str, Any]) -> int:
        """Queue a save durably; returns its sequence number. Never waits for the replica.

        The caller has validated ``fields`` (``LocalWrites.check``); the replica validates them
        again when the save is applied. Raises ReplicaError if the journal cannot be written.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown save action {action!r}")
        try:
            with self._lock:
                conn = self._connect(create=True)
                assert conn is not None
                cur = conn.execute(
                    "INSERT INTO saves(action, entity, record_id, fields, created_at) VALUES (?, ?, ?, ?, ?)",
                    (action, entity, record_id, json.dumps(fields), format_datetime(self._clock())))
                return int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            raise ReplicaError(f"cannot queue the save in {self.path}: {exc}") from None

    def queued(self, limit: int = 100) -> list[Save]:
        """Saves waiting to be applied, oldest first."""
        return self._select("state = 'queued'", limit)

    def failed(self, limit: int = 100) -> list[Save]:
        """Saves the replica refused when they were applied, with the reason."""
        return self._select("state = 'failed'", limit)

    def count(self) -> int:
        """How many saves wait to be applied (0 when there is no journal)."""
        try:
            with self._lock:
                conn = self._connect(create=False)
                if conn is None:
                    return 0
                return int(conn.execute("SELECT count(*) FROM saves WHERE state = 'queued'").fetchone()[0])
        except sqlite3.Error:
            return 0

    def dismiss_failed(self, seq: int) -> None:
        """Forget a failed save (the user has seen it)."""
        with self._lock:
            conn = self._connect(create=False)
            if conn is not None:
                conn.execute("DELETE FROM saves WHERE seq = ? AND state = 'failed'", (seq,))

    def _select(self, where: str, limit: int) -> list[Save]:
        try:
            with self._lock:
                conn = self._connect(create=False)
                if conn is None:
                    return []
                rows = conn.execute(
                    f"SELECT seq, action, entity, record_id, fields, state, error FROM saves WHERE {where} "
                    "ORDER BY seq LIMIT ?", (limit,)).fetchall()
        except sqlite3.Error:
            return []
        return [Save(seq, action, entity, rid, json.loads(fields), state, error)
                for seq, action, entity, rid, fields, state, error in rows]

    # ------------------------------------------------------------------ the worker side

    def apply_next(self, replica: SaveTarget) -> Applied | None:
        """Apply the oldest queued save to ``replica`` (a connection of the worker's own);
        None when nothing is queued. A busy replica leaves the save queued (state "busy")."""
        while True:
            queued = self.queued(limit=1)
            if not queued:
                return None
            save = queued[0]
            if save.seq > int(replica.store.get_meta("saves_applied", 0)):
                break
            self._forget(save.seq)  # applied before a crash took the journal's half of it
        # The journal forgets the save once this commits: the commit must reach the disk even on
        # a connection opened for bulk pulls (synchronous=NORMAL).
        store = replica.store
        mode = store.conn.execute("PRAGMA synchronous").fetchone()[0]
        store.conn.execute("PRAGMA synchronous = FULL")
        try:
            with store.transaction():
                record = self._apply(replica, save)
                store.set_meta("saves_applied", save.seq)
        except ReplicaBusy:
            return Applied(save, "busy")
        except (ValidationError, ReplicaError) as exc:
            reason = "; ".join(exc.errors.values()) if isinstance(exc, ValidationError) else str(exc)
            self._fail(save.seq, reason)
            return Applied(save, "failed", error=reason)
        finally:
            store.conn.execute(f"PRAGMA synchronous = {int(mode)}")
        self._forget(save.seq)
        return Applied(save, "applied", record=record)

    def apply_all(self, replica: SaveTarget) -> list[Applied]:
        """Apply every queued save (the sync does this before it pushes); stops at a busy replica."""
        out = []
        while (step := self.apply_next(replica)) is not None:
            out.append(step)
            if step.state == "busy":
                break
        return out

    @staticmethod
    def _apply(replica: SaveTarget, save: Save) -> dict[str, Any] | None:
        writes = replica.writes
        if save.action == "resend":
            replica.rejected.resend(int(save.record_id), save.fields or None)
            return None
        if save.action == "discard":
            replica.rejected.discard(int(save.record_id))
            return None
        if save.action == "resolve":
            writes.resolve_conflict(int(save.record_id), save.fields)
            return None
        if save.action == "create":
            if replica.get(save.entity, save.record_id) is not None:
                return replica.get(save.entity, save.record_id)
            return writes.create(save.entity, save.fields, record_id=save.record_id)
        if save.action == "update":
            return writes.update(save.entity, save.record_id, save.fields)
        writes.delete(save.entity, save.record_id)
        return None

    def _forget(self, seq: int) -> None:
        with self._lock:
            conn = self._connect(create=True)
            assert conn is not None
            conn.execute("DELETE FROM saves WHERE seq = ?", (seq,))

    def _fail(self, seq: int, reason: str) -> None:
        with self._lock:
            conn = self._connect(create=True)
            assert conn is not None
            conn.execute("UPDATE saves SET state = 'failed', error = ? WHERE seq = ?", (reason, seq))
