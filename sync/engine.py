"""The sync engine: push the outbox, then pull the change feed, keeping the replica converged.

One ``run_once`` is a whole sync:

1. ``/v1/me`` — who we are (the replica keeps it, for "mine" views and authorship);
2. push — the outbox in batches, every per-op result stored (cache.outbox.apply_results);
3. refetch — records whose rejected edits were discarded come back as the server has them;
4. pull — pages until ``has_more`` is false, each applied with its cursor in one transaction;
   a 410 starts a replacement snapshot that keeps the outbox (cache.pull.start_resync).

The engine knows nothing of Textual: progress goes out through a plain callback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cache.errors import MalformedPage, ReplicaError
from cache.outbox import CUSTOMER_HISTORY
from cache.pull import prepare_page
from cache.replica import Replica
from cache.sqlite import sqlite3
from crm_tui.config import SyncSettings
from crm_tui.domain import CUSTOMER_CHILDREN, ENTITIES, format_datetime, utcnow
from crm_tui.syncstate import SyncEvent, SyncReport
from sync.client import CrmClient
from sync.errors import ProtocolError, RequestRejected, ResyncRequired, ServerUnavailable, SyncError

log = logging.getLogger("crm_tui.sync")

Progress = Callable[[SyncEvent], None]


def _ignore(_: SyncEvent) -> None:
    pass


class Stopped(SyncError):
    """The sync was asked to stop (SIGTERM, app quitting); it stopped between two pages."""


class SyncEngine:
    def __init__(self, replica: Replica, client: CrmClient, settings: SyncSettings | None = None,
                 on_event: Progress | None = None, stop: threading.Event | None = None):
        self.replica = replica
        self.client = client
        self.settings = settings or client.settings
        self.on_event = on_event or _ignore
        self.stop = stop or threading.Event()

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped("stopped before the sync finished; it resumes where it left off")

    # ------------------------------------------------------------------ whole runs

    def run_once(self) -> SyncReport:
        """Push, then pull to the end of the feed. Never raises for network or data trouble:
        the report says what happened, and the replica's sync history records it."""
        report = SyncReport(ok=False)
        run_id: int | None = None
        try:
            run_id = self._start_run()
            self.refresh_me()
            self.push(report)
            self.refetch()
            self.pull(report)
            report.ok = True
        except ServerUnavailable as exc:
            report.offline = True
            report.error = str(exc)
        except (SyncError, MalformedPage, ReplicaError) as exc:
            report.error = str(exc)
        except sqlite3.Error as exc:
            # The replica itself refused (locked for too long, disk full): nothing was half-applied,
            # every page and result commits whole; say so and let the next run retry.
            log.exception("replica error during sync")
            report.error = f"the local replica could not be written: {exc}"
        except Exception as exc:  # a last resort: a sync run reports; it never takes its caller down
            log.exception("unexpected error during sync")
            report.error = f"unexpected error: {type(exc).__name__}: {exc}"
        self._finish_run(run_id, report)
        self.on_event(SyncEvent("done" if report.ok else "error", report.summary))
        return report

    def refresh_me(self) -> dict:
        """Who the token belongs to. A replica holds one user's data and queued writes: a token
        of someone else is refused before anything is pushed under their name."""
        me = self.client.me()
        known = self.replica.get_meta("me")
        if isinstance(known, dict) and known.get("id") and known["id"] != me["id"]:
            raise SyncError(
                f"this replica belongs to {known.get('name') or known['id']}, but the token is "
                f"{me.get('name') or me['id']}'s; use another --data-dir for another account")
        self.replica.set_meta("me", {k: me.get(k) for k in ("id", "name", "role", "team", "territories",
                                                             "all_territories")})
        return me

    # ------------------------------------------------------------------ push

    def push(self, report: SyncReport | None = None) -> SyncReport:
        """Send every pending op, batch by batch, storing each result. Stops at the first
        failing request (its ops stay pending, to be re-sent with the same op ids)."""
        report = report or SyncReport(ok=True)
        self.replica.saves.apply_all(self.replica)  # saves the app queued while the replica was busy
        sent_this_run: set[int] = set()
        total = self.replica.outbox.counts()["pending"]
        while True:
            self._check_stop()
            ops = self.replica.outbox.next_batch(self.settings.batch_size)
            ops = [op for op in ops if op.seq not in sent_this_run]
            if not ops:
                break
            sent_this_run.update(op.seq for op in ops)
            self.on_event(SyncEvent("push", f"sending {len(ops)} changes", report.pushed, total))
            self._send(ops, report)
        return report

    def _send(self, ops: list, report: SyncReport) -> None:
        """Send one batch; a batch the server finds too large (413) is split in halves, and a
        single op too large to send at all is set aside as rejected, with the reason."""
        try:
            results = self.client.batch([op.to_wire() for op in ops])
        except RequestRejected as exc:
            if exc.status != 413:
                raise
            if len(ops) == 1:
                self.replica.outbox.reject_locally(
                    ops[0], "too_large", "this change is larger than the server accepts; shorten it")
                report.rejected += 1
                report.messages.append(f"rejected: {ops[0].summary}: too large to send")
                return
            half = len(ops) // 2
            self._send(ops[:half], report)
            self._send(ops[half:], report)
            return
        stats = self.replica.outbox.apply_results(ops, results)
        report.pushed += stats.done
        report.conflicts += stats.conflicts
        report.rejected += stats.rejected
        report.messages.extend(stats.messages)
        if stats.unanswered:
            raise ProtocolError(f"the server left {stats.unanswered} ops without a readable result")

    def refetch(self) -> None:
        """Fetch again what the replica asked for (after a discarded rejected op, or a kept
        customer whose local delete had taken its history)."""
        done = []
        for entity_name, record_id in self.replica.outbox.take_refetch():
            self._check_stop()
            if entity_name == CUSTOMER_HISTORY:
                for child in CUSTOMER_CHILDREN:
                    records = list(self.client.list_all(child.table, customer_id=record_id))
                    if records:
                        self.replica.pull.apply_records(child, records)
            else:
                ent = ENTITIES[entity_name]
                record = self.client.get(ent.table, record_id)
                if record is None:
                    self.replica.pull.remove_records(ent, [record_id])
                else:
                    self.replica.pull.apply_records(ent, [record])
            done.append((entity_name, record_id))
        if done:
            self.replica.outbox.done_refetch(done)

    # ------------------------------------------------------------------ pull

    def pull(self, report: SyncReport | None = None) -> SyncReport:
        """Pull pages until the feed is drained. A 410 turns into a replacement snapshot."""
        report = report or SyncReport(ok=True)
        try:
            self._pull_pages(report)
        except ResyncRequired as exc:
            log.warning("server asked for a resync: %s", exc)
            self.on_event(SyncEvent("resync", "the server asked for a full resync; replacing the replica"))
            self.replica.pull.start_resync()
            self._pull_pages(report)
        if self.replica.get_meta("resync_active"):
            dropped = self.replica.pull.finish_resync()
            log.info("resync finished; %d stale records dropped", dropped)
        return report

    def _pull_pages(self, report: SyncReport) -> None:
        # The next page is fetched while this one is applied: the server's work and the wire
        # overlap the replica's. The cursor of a page is known before it is applied, and a
        # fetched page that never gets applied (an error, a stop) is simply dropped.
        # Checking a page's rows (prepare_page) happens in the fetching thread too, overlapping
        # the database work of the page before it.
        size = self.settings.page_size
        gen = self.replica.pull.generation()

        def fetch(cursor: str | None) -> dict:
            return prepare_page(self.client.changes(cursor, size), gen)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-prefetch") as pool:
            ahead = pool.submit(fetch, self.replica.cursor)
            while True:
                self._check_stop()
                page = ahead.result()
                if page.get("has_more") is True and isinstance(page.get("cursor"), str):
                    ahead = pool.submit(fetch, page["cursor"])
                stats = self.replica.pull.apply_page(page)
                report.pulled += stats.records
                if stats.quarantined:
                    report.messages.append(f"{stats.quarantined} invalid records from the server were set aside")
                self._report_page(page, report)
                if not page["has_more"]:
                    return

    def _report_page(self, page: dict, report: SyncReport) -> None:
        progress = page.get("progress") or {}
        complete = progress.get("complete") or []
        phase = page["phase"]
        search_ready = phase == "feed" or ("customer" in complete and "contact" in complete)
        if phase == "feed":
            msg = f"pulled {report.pulled} changes"
        else:
            msg = f"{phase}: {progress.get('entity') or ''} {progress.get('done', 0):,}/{progress.get('total', 0):,}"
        self.on_event(SyncEvent(phase if phase != "feed" else "pull", msg,
                                int(progress.get("done", 0) or 0), int(progress.get("total", 0) or 0),
                                search_ready=search_ready))

    # ------------------------------------------------------------------ history

    def _start_run(self) -> int:
        with self.replica.transaction() as conn:
            cur = conn.execute("INSERT INTO sync_runs(started_at) VALUES (?)", (format_datetime(utcnow()),))
            conn.execute("DELETE FROM sync_runs WHERE id < ?", ((cur.lastrowid or 0) - 500,))
            return cur.lastrowid or 0

    def _finish_run(self, run_id: int | None, report: SyncReport) -> None:
        now = format_datetime(utcnow())
        if run_id is None:
            return
        try:
            with self.replica.transaction() as conn:
                conn.execute(
                    "UPDATE sync_runs SET finished_at = ?, ok = ?, pushed = ?, pulled = ?, conflicts = ?, rejected = ?,"
                    " error = ? WHERE id = ?",
                    (now, int(report.ok), report.pushed, report.pulled, report.conflicts, report.rejected,
                     report.error, run_id),
                )
            self.replica.set_meta("last_sync_at" if report.ok else "last_failed_at", now)
            self.replica.set_meta("last_error", report.error)
        except Exception:  # the history is a courtesy; never let it hide the report
            log.exception("could not record the sync run")
