"""The replica's sync history: one row per sync run, for `status`, the Sync screen and the
one-line "last sync" everywhere. Kept short: the newest 500 runs."""

from __future__ import annotations

from typing import Any

from cache.store import Store

KEEP_RUNS = 500
FAILED_ATTEMPTS = "failed_attempts"  # replica_meta: requests in a row that found no answer


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

    # ------------------------------------------------------------------ failed attempts in a row

    def failed_attempt(self, reason: str | None = None) -> int:
        """One more request found no server (or a server asking to come back later): the count
        of failed attempts in a row goes up by one, across runs and processes (runs of a replica
        happen one at a time), until ``answered``. ``reason``: what the server answered, None
        when no answer came. Returns the new count."""
        with self._store.transaction():
            now = self._store.now()
            kept = self._store.get_meta(FAILED_ATTEMPTS) or {}
            count = int(kept.get("count", 0)) + 1
            self._store.set_meta(FAILED_ATTEMPTS, {"count": count, "since": kept.get("since") or now, "last": now,
                                                   "reason": reason})
        return count

    def answered(self) -> None:
        """The server answered: the failed attempts in a row are over."""
        if self._store.get_meta(FAILED_ATTEMPTS):
            self._store.set_meta(FAILED_ATTEMPTS, None)

    def failed_attempts(self) -> dict[str, Any] | None:
        """{count, since, last, reason} while the server has not answered since it last failed, else None."""
        kept = self._store.get_meta(FAILED_ATTEMPTS)
        return kept if isinstance(kept, dict) and kept.get("count") else None

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first: {id, started_at, finished_at, ok, pushed, pulled, conflicts,
        rejected, error}."""
        cur = self.conn.execute(
            "SELECT id, started_at, finished_at, ok, pushed, pulled, conflicts, rejected, error "
            "FROM sync_runs ORDER BY id DESC LIMIT ?", (limit,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
