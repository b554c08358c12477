"""Keeping the mirror exact although BottleCRM has no change feed (docs/gateway.md, "Pull").

Two ways in, both ending in :func:`crm_server.gateway.mirror.apply_row`:

* **Quick refresh** (every ``poll_interval``): the audit log (``GET /api/activities/``, the 50
  newest entries, no cursor) names records created, updated or deleted since the newest entry
  already handled; each is fetched again (a 404 is a hard delete). When the entry handled last
  is no longer among the 50, the window was missed (more than 50 entries happened between two
  polls): a full scan runs at once.
* **Full scan** (every ``scan_interval``, and whenever a window was missed): every row of every
  mirrored module, compared by content hash with what the mirror last saw; mirror records whose
  upstream id the scan did not return are deletion candidates, each confirmed with a detail
  request (offset paging over a random order can skip a row when inserts happen mid-scan), so a
  hard delete is found even when no audit entry names it (an account's cascaded cases and
  opportunities).

A row fetched before a write-through changed the same record is not applied over it: the mirror
record's version is newer than the sequence noted when the fetch began.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from crm_server.gateway.mapping import ENTITY_OF, MODULE_OF
from crm_server.gateway.mirror import ORDER, apply_row, delete_local
from crm_server.gateway.upstream import MODULES, BottleCRM, UpstreamError
from crm_server.store import Store, StoreError
from crm_tui.core.domain import ENTITIES

log = logging.getLogger("crm_server.gateway")

AUDIT_KEY = "audit_last_entry"
SCAN_KEY = "last_full_scan"
CHUNK = 500  # rows applied per write transaction, so writers never wait long on a scan
_ENTITY_OF_TYPE = {MODULES[m].entity_type: ENTITY_OF[m] for m in MODULE_OF.values()}


@dataclass
class PullReport:
    """What one refresh or scan did, by outcome ("inserted", "updated", "deleted", ...)."""

    kind: str  # "poll", "scan"
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + n


class Puller:
    """Pulls BottleCRM into the mirror; one per gateway process (a thread runs :meth:`run`)."""

    def __init__(self, store: Store, upstream: BottleCRM, territory: str, *,
                 poll_interval: float = 5.0, scan_interval: float = 300.0):
        self.store, self.upstream, self.territory = store, upstream, territory
        self.poll_interval, self.scan_interval = poll_interval, scan_interval
        self._lock = threading.Lock()  # one pull at a time (the thread, and tests calling in)
        self.scans = 0  # full scans run by this process
        self.missed_windows = 0  # quick refreshes that found the audit log no longer reached back
        self._last_scan = time.monotonic()  # the first scan runs before serving (see service.py)

    def scan_soon(self) -> None:
        """Make the next tick a full scan (this process just took over polling)."""
        self._last_scan = float("-inf")

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event, may_poll: Callable[[], bool] = lambda: True) -> None:
        """Refresh until ``stop`` is set, on each tick that ``may_poll()`` allows (the gateway's
        poller lock: one process polls the upstream). Upstream or store failures are logged
        (one line) and the next tick tries again; nothing here ends the loop but ``stop``."""
        while not stop.wait(self.poll_interval):
            if not may_poll():
                continue
            try:
                if time.monotonic() >= self._last_scan + self.scan_interval:
                    self.full_scan()
                else:
                    self.poll()
            except (UpstreamError, StoreError) as exc:
                log.warning("pull from BottleCRM failed (will retry): %s", exc)
        log.info("puller stopped")

    # ------------------------------------------------------------------ quick refresh

    def poll(self) -> PullReport:
        """One quick refresh from the audit log; runs a full scan instead when the window was missed
        (or no audit entry was ever handled)."""
        with self._lock:
            entries = self.upstream.audit_log()
            with self.store.read() as tx:
                last = tx.gateway_value(AUDIT_KEY)
            ids = [e["id"] for e in entries]
            if last is None or last not in ids:
                if last is not None:
                    self.missed_windows += 1
                    log.info("the audit log no longer reaches back to the last entry seen: full scan")
                report = self._scan()
                self._remember(ids)
                return report
            report = PullReport("poll")
            fresh = entries[: ids.index(last)]
            targets = _targets(reversed(fresh))
            for entity in ORDER:
                for upstream_id in targets.get(entity, ()):
                    with self.store.read() as tx:
                        before = tx.last_sequence()
                    row = self.upstream.get(MODULE_OF[entity], upstream_id)
                    with self.store.write() as tx:
                        if row is not None:
                            report.add(apply_row(tx, entity, row, self.territory, skip_after=before))
                        else:
                            link = tx.gateway_link(entity, upstream_id=upstream_id)
                            if link is not None:
                                delete_local(tx, entity, link.local_id)
                                report.add("deleted")
            self._remember(ids, last)
            return report

    def _remember(self, ids: list[str], last: str | None = None) -> None:
        if ids and ids[0] != last:
            with self.store.write() as tx:
                tx.set_gateway_value(AUDIT_KEY, ids[0])

    # ------------------------------------------------------------------ full scan

    def full_scan(self) -> PullReport:
        """Compare every upstream row with the mirror; apply changes and confirmed hard deletes."""
        with self._lock:
            return self._scan()

    def _scan(self) -> PullReport:
        report = PullReport("scan")
        # Entries written to the audit log from here on are newer than anything this scan misses.
        entries = self.upstream.audit_log()
        with self.store.read() as tx:
            start_seq = tx.last_sequence()
        for entity in ORDER:
            rows = {}
            for row in self.upstream.list_rows(MODULE_OF[entity]):
                rows[row["id"]] = row  # a row repeated by offset paging counts once
            items = list(rows.values())
            for start in range(0, len(items), CHUNK):
                with self.store.write() as tx:
                    for row in items[start : start + CHUNK]:
                        report.add(apply_row(tx, entity, row, self.territory, skip_after=start_seq))
            self._sweep(entity, set(rows), start_seq, report)
        self._remember([e["id"] for e in entries])
        self.scans += 1
        self._last_scan = time.monotonic()
        with self.store.write() as tx:
            tx.set_gateway_value(SCAN_KEY, str(int(time.time())))
        log.info("full scan of BottleCRM: %s", report.counts)
        return report

    def _sweep(self, entity: str, seen: set[str], start_seq: int, report: PullReport) -> None:
        """Delete mirror records whose upstream record is gone (confirmed one by one)."""
        with self.store.read() as tx:
            candidates = [link for link in tx.gateway_links(entity) if link.upstream_id not in seen]
        for link in candidates:
            row = self.upstream.get(MODULE_OF[entity], link.upstream_id)
            with self.store.write() as tx:
                current = tx.gateway_link(entity, local_id=link.local_id)
                if current is None or current.upstream_id != link.upstream_id:
                    continue  # deleted or re-linked meanwhile
                if row is not None:
                    report.add(apply_row(tx, entity, row, self.territory, skip_after=start_seq))
                    continue
                stored = tx.get(ENTITIES[entity], link.local_id)
                if stored is not None and stored.version > start_seq:
                    report.add("skipped")  # written through while this scan ran; judged next time
                    continue
                delete_local(tx, entity, link.local_id)
                report.add("deleted")


def _targets(entries: Iterable[dict]) -> dict[str, list[str]]:
    """Upstream ids named by audit entries (oldest first), by crm-tui entity, each once."""
    out: dict[str, list[str]] = {}
    for entry in entries:
        entity = _ENTITY_OF_TYPE.get(str(entry.get("entity_type")))
        upstream_id = entry.get("entity_id")
        if entity is None or not isinstance(upstream_id, str):
            continue
        ids = out.setdefault(entity, [])
        if upstream_id not in ids:
            ids.append(upstream_id)
    return out
