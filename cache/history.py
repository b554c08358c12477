"""The replica's sync history: one row per sync run, for `status`, the Sync screen and the
one-line "last sync" everywhere. Kept short: the newest 500 runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_tui.core.domain import format_datetime

if TYPE_CHECKING:
    from cache.replica import Replica

KEEP_RUNS = 500


class SyncHistory:
    def __init__(self, replica: Replica):
        self.replica = replica
        self.conn = replica.conn

    def start_run(self) -> int:
        """Record that a sync run starts now (``replica.clock``); returns its id. Runs older
        than the newest KEEP_RUNS are forgotten."""
        with self.replica.transaction() as conn:
            cur = conn.execute("INSERT INTO sync_runs(started_at) VALUES (?)",
                               (format_datetime(self.replica.clock()),))
            run_id = cur.lastrowid or 0
            conn.execute("DELETE FROM sync_runs WHERE id <= ?", (run_id - KEEP_RUNS,))
        return run_id

    def finish_run(self, run_id: int, *, ok: bool, pushed: int, pulled: int, conflicts: int, rejected: int,
                   error: str | None) -> None:
        """Record how run ``run_id`` ended, and the replica's last-sync marks: ``last_sync_at``
        (success) or ``last_failed_at``, and ``last_error`` (None after a success)."""
        now = format_datetime(self.replica.clock())
        with self.replica.transaction() as conn:
            conn.execute(
                "UPDATE sync_runs SET finished_at = ?, ok = ?, pushed = ?, pulled = ?, conflicts = ?, rejected = ?,"
                " error = ? WHERE id = ?",
                (now, int(ok), pushed, pulled, conflicts, rejected, error, run_id),
            )
            self.replica.set_meta("last_sync_at" if ok else "last_failed_at", now)
            self.replica.set_meta("last_error", error)
