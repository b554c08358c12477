"""Where a read is served: the primary, or a hot standby that has caught up (``serve --read-db``).

The rule (docs/sync-protocol.md, "Read standby"): a request is served by the standby only when
the standby's snapshot holds every write the primary had committed when the request arrived,
and, for the change feed, everything the client's cursor has seen. Otherwise the request waits
up to ``wait`` seconds for the standby's replay to catch up, then the primary serves it. So a
client never sees a gap, nor an older state than one it was already shown, nor lacks a write it
was told is saved; it only sometimes waits briefly. A standby that cannot be reached sends its
reads to the primary and is tried again every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from crm_server.store import Position, Store, StoreBusy, StoreConflict, StoreError, StoreInfo, is_postgres_url
from crm_server.store.base import commit_number

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_WAIT = 1.0  # seconds a request waits for the standby's replay before the primary serves it
POLL_FIRST, POLL_MAX = 0.005, 0.05  # how often a waiting request looks at the standby again
LAG_GRACE = 2.0  # after a wait ran out: for this long requests look once and do not wait
DOWN_RETRY = 5.0  # after the standby failed: for this long reads go straight to the primary


class StandbyBehind(Exception):
    """The standby has not replayed what this request must see (yet); nothing was sent."""


@dataclass(frozen=True, slots=True)
class Freshness:
    """What a read served by a standby must include: the primary's commit ``min_commit``."""

    min_commit: int

    def require(self, info: StoreInfo) -> None:
        """Raise StandbyBehind unless the snapshot ``info`` describes holds commit ``min_commit``."""
        if commit_number(info.history) < self.min_commit:
            raise StandbyBehind(f"replayed commit {commit_number(info.history)} of {self.min_commit}")

    def require_cursor(self, info: StoreInfo, pos: Position, history: str) -> None:
        """Raise StandbyBehind unless the snapshot holds everything a cursor at ``pos`` that saw
        commit ``history`` has seen: its head at or past ``pos``, and that commit."""
        if pos > info.head or commit_number(history) > commit_number(info.history):
            raise StandbyBehind("the cursor is ahead of the standby's replay")


class ReadRouter:
    """Serves reads from ``standby`` when it may, else from ``primary`` (see the module doc).

    ``work(store, freshness)`` does the read on ``store``; on the standby ``freshness`` is given
    and ``work`` must call its checks inside the snapshot it reads (raising StandbyBehind). With
    no standby every read goes to the primary and costs nothing extra.
    """

    def __init__(self, primary: Store, standby: Store | None = None, *, wait: float = DEFAULT_WAIT):
        self.primary, self.standby, self.wait = primary, standby, wait
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._hurry_until = 0.0
        self._down = False

    def run(self, work: Callable[[Store, Freshness | None], T]) -> T:
        """The result of ``work`` on the standby if it has caught up (waiting up to ``wait``
        seconds for it), else on the primary. Errors of ``work`` itself propagate."""
        standby = self.standby
        if standby is None:
            return work(self.primary, None)
        now = time.monotonic()
        if now < self._down_until:
            return work(self.primary, None)
        fresh = Freshness(self.primary.last_commit())
        wait = self.wait if now >= self._hurry_until else 0.0
        deadline = now + wait
        delay = POLL_FIRST
        while True:
            try:
                result = work(standby, fresh)
            except StandbyBehind:
                left = deadline - time.monotonic()
                if left > 0:
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, POLL_MAX)
                    continue
                if wait > 0:
                    # It lags by more than a moment: the next requests check once, not wait.
                    self._hurry_until = time.monotonic() + LAG_GRACE
                return work(self.primary, None)
            except StoreConflict:
                # A query the standby cancelled because replay needed its rows ("conflict with
                # recovery"): this request goes to the primary; the standby is fine.
                return work(self.primary, None)
            except StoreBusy as exc:
                self._went_down(exc)
                return work(self.primary, None)
            self._came_back()
            return result

    def close(self) -> None:
        """Close the standby's connections (the primary is its owner's to close)."""
        if self.standby is not None:
            self.standby.close()

    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = time.monotonic() + DOWN_RETRY
            if not self._down:
                self._down = True
                log.warning("the read standby cannot be used (%s); reads go to the primary, retrying every %.0f s",
                            " ".join(str(exc).split()), DOWN_RETRY)

    def _came_back(self) -> None:
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    log.warning("the read standby is back; reads go to it again")


def open_reads(primary: Store, read_db: str | None, *, wait: float = DEFAULT_WAIT) -> ReadRouter:
    """The reads of a server over ``primary``: from the hot standby at ``read_db`` when given.
    Raises StoreError (one line) when the standby cannot be reached or is not a copy of the
    primary's database, or the primary is not on PostgreSQL."""
    if read_db is None:
        return ReadRouter(primary, wait=wait)
    from crm_server.store.pg import PostgresStore
    from crm_server.store.pg_standby import PostgresStandby

    if not isinstance(primary, PostgresStore) or not is_postgres_url(read_db):
        raise StoreError("--read-db is a PostgreSQL hot standby of --db: both must be postgresql:// URLs")
    return ReadRouter(primary, PostgresStandby(read_db, primary), wait=wait)
