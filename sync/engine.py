"""The sync engine: push the outbox, then pull the change feed, keeping the replica converged.

One ``run_once`` is a whole sync, under one deadline (``sync.run_timeout``):

1. ``/v1/me`` — who we are (the replica keeps it, for "mine" views and authorship), and when
   the token is due for renewal (it is renewed then, and the new one stored);
2. push — the outbox in batches, every per-op result stored (cache.push_results);
3. refetch — records whose rejected edits were discarded come back as the server has them;
4. pull — the change feed, checked for progress page by page (sync/feed.py).

The engine knows nothing of Textual: progress goes out through a plain callback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cache.errors import MalformedPage, ReplicaError
from cache.outbox import OutboxOp
from cache.refetch import CUSTOMER_HISTORY
from cache.replica import Replica
from cache.sqlite import sqlite3
from crm_tui.config import SyncSettings
from crm_tui.core.domain import CUSTOMER_CHILDREN, ENTITIES
from crm_tui.core.syncstate import SyncEvent, SyncReport, failed_attempts_text
from crm_tui.core.text import plural
from sync.client import CrmClient
from sync.errors import (
    AuthError,
    DeadlineExceeded,
    DeviceRevoked,
    ProtocolError,
    Redirected,
    RequestRejected,
    ResponseTooLarge,
    ServerUnavailable,
    Stopped,
    SyncError,
)
from sync.feed import FeedPull

log = logging.getLogger("crm_tui.sync")

Progress = Callable[[SyncEvent], None]

__all__ = ["Progress", "Stopped", "SyncEngine"]


def _ignore(_: SyncEvent) -> None:
    pass


class SyncEngine:
    def __init__(self, replica: Replica, client: CrmClient, settings: SyncSettings | None = None,
                 on_event: Progress | None = None, stop: threading.Event | None = None,
                 on_new_token: Callable[[str], None] | None = None):
        """``on_new_token(token)`` stores a renewed token (crm_tui.credentials); without it the
        token is never renewed (one from the environment, say). "Now" (when runs start and end,
        when a token is due for renewal) is ``replica.clock``, handed to the replica when it
        was opened: the engine has no clock of its own."""
        self.replica = replica
        self.on_new_token = on_new_token
        self.client = client
        self.settings = settings or client.settings
        self.on_event = on_event or _ignore
        self.stop = stop or threading.Event()
        self.deadline: float | None = None
        self._failed = 0  # failed attempts in a row, as last counted (-1: not looked at yet)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped("stopped before the sync finished; it resumes where it left off")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceeded.after(self.settings.run_timeout)

    # ------------------------------------------------------------------ whole runs

    def run_once(self) -> SyncReport:
        """Push, then pull to the end of the feed. Never raises for network or data trouble:
        the report says what happened, and the replica's sync history records it."""
        report = SyncReport(ok=False)
        run_id: int | None = None
        self.deadline = time.monotonic() + self.settings.run_timeout
        self.client.run_deadline = self.deadline
        self.client.on_retry = self._retrying
        self.client.on_answer = self._answered
        self._failed = -1  # not known yet: the first answer clears what earlier runs counted
        try:
            run_id = self.replica.history.start_run()
            me = self.refresh_me()
            self.renew_if_due(me, report)
            self.push(report)
            self.refetch()
            self.pull(report)
            report.ok = True
        except ServerUnavailable as exc:
            if not isinstance(exc, DeadlineExceeded):  # the last attempt, which is not retried
                reason = str(exc) if isinstance(exc, Redirected) else exc.reason
                report.failed_attempts = self._failed_attempt(reason)
                report.offline_detail = failed_attempts_text(report.failed_attempts, reason)
            report.offline = True
            report.retry_after = exc.retry_after
            report.error = str(exc)
        except AuthError as exc:
            report.refused = True
            report.error = str(exc)
        except DeviceRevoked as exc:
            report.revoked = True
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
        finally:
            self.client.run_deadline = None
            self.client.on_retry = None
            self.client.on_answer = None
        self._finish_run(run_id, report)
        self.on_event(SyncEvent("done" if report.ok else "error", report.summary))
        return report

    def _retrying(self, reason: str, unreachable: bool, attempt: int) -> None:
        """A request failed and is retried: say so now, not when the retries run out (an
        unreachable server is "offline" from its first refused or unanswered attempt). The
        number said is the failed attempts in a row across runs (``history.failed_attempt``),
        not this request's retry: a new run never counts from 1 again while the server is gone."""
        failed = self._failed_attempt(None if unreachable else reason)
        if unreachable:
            self.on_event(SyncEvent("offline", failed_attempts_text(failed)))
        else:
            self.on_event(SyncEvent("retry", failed_attempts_text(failed, reason)))

    def _failed_attempt(self, reason: str | None) -> int:
        try:
            self._failed = self.replica.history.failed_attempt(reason)
        except (ReplicaError, sqlite3.Error):  # a replica busy past its timeout: count on in memory
            self._failed = max(self._failed, 0) + 1
        return self._failed

    def _answered(self) -> None:
        """The server answered: the failed attempts in a row (of this run or earlier ones) are over."""
        if self._failed:
            with contextlib.suppress(ReplicaError, sqlite3.Error):
                self.replica.history.answered()
            self._failed = 0

    def refresh_me(self) -> dict[str, Any]:
        """Who the token belongs to. A replica holds one user's data and queued writes: a token
        of someone else is refused before anything is pushed under their name."""
        me = self.client.me()
        known = self.replica.reads.me()
        if known and known.get("id") and known["id"] != me["id"]:
            raise SyncError(
                f"this replica belongs to {known.get('name') or known['id']}, but the token is "
                f"{me.get('name') or me['id']}'s; use another --data-dir for another account")
        self.replica.set_meta("me", {k: me.get(k) for k in ("id", "name", "role", "team", "territories",
                                                             "all_territories")})
        times = me.get("token")
        expires = times.get("expires_at") if isinstance(times, dict) else None
        self.replica.set_meta("token_expires_at", expires if isinstance(expires, str) else None)  # for `status`
        return me

    def renew_if_due(self, me: dict[str, Any], report: SyncReport) -> None:
        """Renew the token once the server says it is due (``renew_after`` in /v1/me: two thirds
        of its lifetime gone), and hand the new one to ``on_new_token`` to be stored."""
        times = me.get("token")
        if not isinstance(times, dict):
            return
        due = times.get("renew_after")
        if not isinstance(due, str):
            return
        try:
            due_at = dt.datetime.fromisoformat(due.replace("Z", "+00:00"))
        except ValueError:
            return
        if self.replica.clock() < due_at:
            return
        if self.on_new_token is None:
            report.messages.append(f"the API token expires {times.get('expires_at')} and is not renewed "
                                   "automatically (it comes from CRM_TUI_TOKEN); get a new one before then")
            return
        renewed = self.client.renew_token()
        self.on_new_token(renewed["token"])
        report.renewed_until = renewed.get("expires_at") if isinstance(renewed.get("expires_at"), str) else None
        report.messages.append(f"renewed the API token; the new one expires {report.renewed_until or 'never'}")
        self.replica.set_meta("token_expires_at", report.renewed_until)
        log.info("renewed the API token; the new one expires %s", report.renewed_until or "never")

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
            self.on_event(SyncEvent("push", f"sending {plural(len(ops), 'change')}", report.pushed, total))
            self._send(ops, report)
        return report

    def _send(self, ops: list[OutboxOp], report: SyncReport) -> None:
        """Send one batch; a batch the server finds too large (413) is split in halves, and a
        single op too large to send at all is set aside as rejected, with the reason."""
        try:
            results = self.client.batch([op.to_wire() for op in ops])
        except (RequestRejected, ResponseTooLarge) as exc:
            # A batch too large to send (413), or whose answer is over the size cap, goes again in
            # halves: op ids make a re-sent op count once.
            if isinstance(exc, RequestRejected) and exc.status != 413:
                raise
            if isinstance(exc, ResponseTooLarge) and len(ops) == 1:
                raise
            if len(ops) == 1:
                self.replica.rejected.reject_locally(
                    ops[0], "too_large", "this change is larger than the server accepts; shorten it")
                report.rejected += 1
                report.messages.append(f"rejected: {ops[0].summary}: too large to send")
                return
            half = len(ops) // 2
            self._send(ops[:half], report)
            self._send(ops[half:], report)
            return
        stats = self.replica.results.apply(ops, results)
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
        for entity_name, record_id in self.replica.refetch.wanted():
            self._check_stop()
            if entity_name == CUSTOMER_HISTORY:
                for child in CUSTOMER_CHILDREN:
                    records = list(self.client.list_all(child.table, customer_id=record_id))
                    if records:
                        self.replica.server_apply.apply_records(child, records)
            else:
                ent = ENTITIES[entity_name]
                record = self.client.get(ent.table, record_id)
                if record is None:
                    self.replica.server_apply.remove_records(ent, [record_id])
                else:
                    self.replica.server_apply.apply_records(ent, [record])
            done.append((entity_name, record_id))
        if done:
            self.replica.refetch.done(done)

    # ------------------------------------------------------------------ pull

    def pull(self, report: SyncReport | None = None) -> SyncReport:
        """Pull pages until the feed is drained (sync/feed.py: progress checks, resync)."""
        report = report or SyncReport(ok=True)
        FeedPull(self.replica, self.client, self.settings, self.on_event, self._check_stop).run(report)
        return report

    # ------------------------------------------------------------------ history

    def _finish_run(self, run_id: int | None, report: SyncReport) -> None:
        if run_id is None:
            return
        try:
            self.replica.history.finish_run(run_id, ok=report.ok, pushed=report.pushed, pulled=report.pulled,
                                            conflicts=report.conflicts, rejected=report.rejected,
                                            error=report.error)
        except Exception:  # the history is a courtesy; never let it hide the report
            log.exception("could not record the sync run")
