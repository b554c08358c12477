"""Housekeeping on a schedule: every server process runs :meth:`Store.maintain` (and forgets
long-expired tokens, and with ``compact_days`` purges tombstones older than that) in a
background thread, at start and then every ``interval`` seconds.

Running it in several processes at once is safe (each step is idempotent; PostgreSQL's partition
work takes an advisory lock). A failed round is logged and retried at the next one: housekeeping
never stops the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from crm_server.accounts import purge_expired_tokens
from crm_server.store import Store, StoreError
from crm_server.store.base import OP_RESULT_RETENTION_DAYS

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3600.0


class Maintenance:
    """The background housekeeping of one server process; ``start()`` it, ``stop()`` it at exit."""

    def __init__(self, store: Store, *, interval: float = DEFAULT_INTERVAL,
                 op_retention_days: float = OP_RESULT_RETENTION_DAYS, compact_days: float | None = None,
                 clock: Callable[[], float] = time.time):
        """``compact_days`` None: tombstones stay until `crm-server compact`. ``clock`` (epoch
        seconds) is what each round takes as now (tests move it)."""
        self.store, self.interval, self.op_retention_days = store, interval, op_retention_days
        self.compact_days, self.clock = compact_days, clock
        self.rounds = 0  # rounds completed (a failed one is not counted)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crm-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait (at most ``timeout`` s) for a round in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def round(self) -> None:
        """One round of housekeeping, now. Raises StoreError when the database fails."""
        # The database's own clock unless a test moved this one.
        now = None if self.clock is time.time else self.clock()
        report = self.store.maintain(op_retention_days=self.op_retention_days, now=now)
        log.info("maintenance: %s; %d long-expired tokens purged", report,
                 purge_expired_tokens(self.store, now=now))
        if self.compact_days:
            compacted = self.store.compact(keep_days=self.compact_days, now=now)
            log.info("maintenance: %d tombstones and moves older than %g days purged", compacted.purged,
                     self.compact_days)
        self.rounds += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.round()
            except StoreError as exc:
                log.warning("maintenance failed, retrying in %.0f s: %s", self.interval, exc)
            except Exception:  # a bug in one step must not end housekeeping for the process's lifetime
                log.exception("maintenance failed, retrying in %.0f s", self.interval)
            self._stop.wait(self.interval)
