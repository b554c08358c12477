"""Pulling the change feed: pages until ``has_more`` is false, each applied with its cursor in
one transaction, under a guard that the feed really moves forward.

A server (or whatever answers in its place) that keeps saying ``has_more: true`` would keep a
sync running for ever and leave a bogus cursor behind. So every page is checked *before* it is
applied (a page that fails a check is never applied, and its cursor never stored):

* its cursor is new in this run (the same cursor again, or an earlier one, is no progress);
* in the snapshot and backfill phases, the records delivered keep growing and stay within what
  the server announced when the phase started (``progress.total``, with a little slack for
  records created meanwhile);
* the feed phase ends within ``sync.max_feed_pages`` pages, and a run starts few phases;
* the run's deadline (``sync.run_timeout``) has not passed.

An answer too large for ``sync.max_response_mb`` is asked for again in smaller pages; a cursor
the server cannot read (410, or 400 ``invalid_cursor``) starts a replacement snapshot that keeps
the outbox (cache.pull.start_resync).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cache.pull import prepare_page
from cache.replica import Replica
from crm_tui.config import SyncSettings
from crm_tui.core.syncstate import SyncEvent, SyncReport
from crm_tui.core.text import plural
from sync.client import CrmClient
from sync.errors import FeedStalled, ResponseTooLarge, ResyncRequired

log = logging.getLogger("crm_tui.sync")

# Phases a run may go through: snapshot (or a resync's new one), feed, a backfill, feed again ...
MAX_PHASES_PER_RUN = 8
SLACK_PAGES = 10


def _digest(cursor: str) -> bytes:
    return hashlib.blake2b(cursor.encode(), digest_size=16).digest()


class FeedGuard:
    """Checks, page by page, that one run's pull makes progress; raises FeedStalled if not."""

    def __init__(self, settings: SyncSettings, start_cursor: str | None):
        self.settings = settings
        self.seen: set[bytes] = {_digest(start_cursor)} if start_cursor else set()
        self.phase: str | None = None
        self.phases = 0
        self.pages_in_phase = 0
        self.done: int | None = None
        self.allowed: int | None = None  # records the phase may still deliver, from its announcement
        self.stalls = 0  # pages in a row that delivered nothing new

    def check(self, sent: str | None, page: dict[str, Any], limit: int) -> None:
        """Judge a (shape-checked) page fetched with cursor ``sent`` at page size ``limit``."""
        cursor, more, phase = page["cursor"], page["has_more"], page["phase"]
        if more and cursor == sent:
            raise FeedStalled("the server's change feed answered with the same cursor again and says there is "
                              "more: it is not moving forward")
        if more and _digest(cursor) in self.seen:
            raise FeedStalled("the server's change feed went back to a cursor it had already sent in this sync")
        self.seen.add(_digest(cursor))
        if phase != self.phase:
            self.phase, self.pages_in_phase, self.done, self.allowed, self.stalls = phase, 0, None, None, 0
            self.phases += 1
            if self.phases > MAX_PHASES_PER_RUN:
                raise FeedStalled(f"the server's change feed switched phases more than {MAX_PHASES_PER_RUN} "
                                  "times in one sync")
        self.pages_in_phase += 1
        if phase == "feed":
            if more and self.pages_in_phase >= self.settings.max_feed_pages:
                raise FeedStalled(f"the change feed did not end within {self.settings.max_feed_pages} pages "
                                  "(sync.max_feed_pages); what arrived is kept and the next sync goes on from there")
            return
        self._check_snapshot(page, limit)

    def _check_snapshot(self, page: dict[str, Any], limit: int) -> None:
        progress = page.get("progress") or {}
        done, total = progress.get("done"), progress.get("total")
        if not isinstance(done, int) or not isinstance(total, int) or isinstance(done, bool):
            if page["has_more"] and self.pages_in_phase > SLACK_PAGES:
                raise FeedStalled(f"the server's {page['phase']} pages announce no progress")
            return
        if self.done is None:
            # What the phase announced when this run met it: records still to come, plus slack
            # for records created while it streams.
            left = max(total - done, 0)
            self.allowed = done + left + left // 10 + SLACK_PAGES * limit
        elif page["has_more"] and done <= self.done:
            # One empty page is legitimate (the phase ended exactly at a page boundary); more are not.
            self.stalls += 1
            if self.stalls > 2:
                raise FeedStalled(f"the server's {page['phase']} is not moving forward ({done:,} of {total:,} "
                                  "records, as on the pages before)")
        else:
            self.stalls = 0
        self.done = max(done, self.done or 0)
        if self.allowed is not None and done > self.allowed:
            raise FeedStalled(f"the server's {page['phase']} sent {done:,} records, more than the {total:,} it "
                              "announced")


class FeedPull:
    """One run's pull of the change feed into ``replica``."""

    def __init__(self, replica: Replica, client: CrmClient, settings: SyncSettings,
                 on_event: Callable[[SyncEvent], None], check_stop: Callable[[], None]):
        """``check_stop`` raises when the run must end (a stop request, its deadline)."""
        self.replica = replica
        self.client = client
        self.settings = settings
        self.on_event = on_event
        self.check_stop = check_stop
        self.limit = settings.page_size

    def run(self, report: SyncReport) -> None:
        """Pull pages until the feed is drained. A cursor the server cannot continue from turns
        into a replacement snapshot (once per run)."""
        try:
            self._pages(report)
        except ResyncRequired as exc:
            log.warning("the server asked for a resync: %s", exc)
            self.on_event(SyncEvent("resync", "the server asked for a full resync; replacing the replica"))
            self.replica.server_apply.start_resync()
            self._pages(report)
        if self.replica.get_meta("resync_active"):
            dropped = self.replica.server_apply.finish_resync()
            log.info("resync finished; %d stale records dropped", dropped)

    def _fetch(self, cursor: str | None, gen: int) -> tuple[str | None, int, dict[str, Any]]:
        # An answer over the size cap is asked for again in halves: a legitimate page of very
        # large records still arrives, in smaller pages; only a single record over the cap fails.
        limit = self.limit
        while True:
            try:
                return cursor, limit, prepare_page(self.client.changes(cursor, limit), gen)
            except ResponseTooLarge:
                if limit <= 1:
                    raise
                limit = max(1, limit // 2)
                log.info("a change page was over the size cap; asking for %d records per page", limit)

    def _pages(self, report: SyncReport) -> None:
        # The next page is fetched while this one is applied: the server's work and the wire
        # overlap the replica's. A fetched page that never gets applied (an error, a stop, a
        # failed check) is simply dropped. Checking a page's rows (prepare_page) happens in the
        # fetching thread too, overlapping the database work of the page before it.
        gen = self.replica.server_apply.generation()
        guard = FeedGuard(self.settings, self.replica.cursor)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-prefetch") as pool:
            ahead: Future[tuple[str | None, int, dict[str, Any]]] = pool.submit(self._fetch, self.replica.cursor, gen)
            while True:
                self.check_stop()
                sent, limit, page = ahead.result()
                self.limit = min(self.limit, limit)
                guard.check(sent, page, limit)
                if page["has_more"]:
                    ahead = pool.submit(self._fetch, page["cursor"], gen)
                stats = self.replica.server_apply.apply_page(page)
                report.pulled += stats.records
                if stats.quarantined:
                    report.messages.append(f"{stats.quarantined} invalid records from the server were set aside")
                self._report_page(page, report)
                if not page["has_more"]:
                    return

    def _report_page(self, page: dict[str, Any], report: SyncReport) -> None:
        progress = page.get("progress") or {}
        complete = progress.get("complete") or []
        phase = page["phase"]
        search_ready = phase == "feed" or ("customer" in complete and "contact" in complete)
        if phase == "feed":
            msg = f"pulled {plural(report.pulled, 'change')}"
        else:
            msg = f"{phase}: {progress.get('entity') or ''} {progress.get('done', 0):,}/{progress.get('total', 0):,}"
        self.on_event(SyncEvent(phase if phase != "feed" else "pull", msg,
                                int(progress.get("done", 0) or 0), int(progress.get("total", 0) or 0),
                                search_ready=search_ready))
