"""The replica's sync history: one row per sync run, for `status`, the Sync screen and the
one-line "last sync" everywhere. Kept short: the newest 500 runs."""

from __future__ import annotations

from typing import Any

from cache.store import Store

KEEP_RUNS = 500


class SyncHistory:
    """The one owner of the ``sync_runs`` table (and of the last-sync marks in replica_meta)."""

    def __init__(self, store: Store):
        self._store = store
        self.conn = store.conn

    def start_run(self) -> int:
        """Record that a sync run starts now (the replica's clock); returns its id. Runs older
        than the newest KEEP_RUNS are forgotten."""
        with self._store.transaction() as conn:
            cur = conn.execute("INSERT INTO sync_runs(started_at) VALUES (?)", (self._store.now(),))
            run_id = cur.lastrowid or 0
            conn.execute("DELETE FROM sync_runs WHERE id <= ?", (run_id - KEEP_RUNS,))
        return run_id

    def finish_run(self, run_id: int, *, ok: bool, pushed: int, pulled: int, conflicts: int, rejected: int,
                   error: str | None) -> None:
        """Record how run ``run_id`` ended, and the replica's last-sync marks: ``last_sync_at``
        (success) or ``last_failed_at``, and ``last_error`` (None after a success)."""
        now = self._store.now()
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE sync_runs SET finished_at = ?, ok = ?, pushed = ?, pulled = ?, conflicts = ?, rejected = ?,"
                " error = ? WHERE id = ?",
                (now, int(ok), pushed, pulled, conflicts, rejected, error, run_id),
            )
            self._store.set_meta("last_sync_at" if ok else "last_failed_at", now)
            self._store.set_meta("last_error", error)

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first: {id, started_at, finished_at, ok, pushed, pulled, conflicts,
        rejected, error}."""
        cur = self.conn.execute(
            "SELECT id, started_at, finished_at, ok, pushed, pulled, conflicts, rejected, error "
            "FROM sync_runs ORDER BY id DESC LIMIT ?", (limit,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
