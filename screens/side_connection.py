"""A second connection to the replica for work in worker threads (counting matches, counting a
filtered list, counting unsynced changes), used by one thread at a time.

A screen starts a count in a thread worker and, when the user types again, starts another:
Textual cancels the first worker, but a thread cannot be stopped, so without care two threads
run statements on the same connection at once — and the sqlite3 module does not survive that
(the app crashed with a segmentation fault at 1M customers, typing in Search). Here a newer
count interrupts the statement under way and waits for its thread to let go of the connection
(giving up as soon as it is stale itself); closing waits the same way, within a deadline.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

WAIT_STEP = 0.05  # seconds between two looks while another thread holds the connection
CLOSE_WAIT = 5.0  # seconds closing waits for a count under way to let go; then that thread closes it


class SideClosed(Exception):
    """The side connection was closed (its screen or app has ended): the work is dropped."""


class SideConnection:
    """A lazily opened second replica connection (``opener()`` makes it), one user at a time."""

    def __init__(self, opener: Callable[[], Any]):
        self._opener = opener
        self._replica: Any = None
        self._user = threading.Lock()  # held by the one thread running statements on it
        self._guard = threading.Lock()  # interrupt() and close() never overlap on the C connection
        self._closed = False
        self.waits = 0  # times a thread waited for another to let go (tests count them)

    @contextlib.contextmanager
    def use(self, stale: Callable[[], bool] = lambda: False) -> Iterator[Any]:
        """The connection's replica, for this thread alone until the block ends. While another
        thread holds it, that thread's statement is interrupted and this one waits; raises
        SideClosed when closed meanwhile, or when ``stale()`` says this work is no longer wanted."""
        while not self._user.acquire(timeout=WAIT_STEP):
            self.waits += 1
            if self._closed or stale():
                raise SideClosed()
            self.interrupt()  # between two statements an interrupt is lost: ask again
        try:
            if self._closed:
                raise SideClosed()
            if self._replica is None:
                self._replica = self._opener()
            yield self._replica
        finally:
            if self._closed:
                self._close_now()
            self._user.release()

    def interrupt(self) -> None:
        """Stop the statement under way on the connection, if any (from any thread)."""
        with self._guard:
            if self._replica is not None:
                self._replica.conn.interrupt()

    def close(self) -> None:
        """Interrupt what runs and close the connection; when the thread using it does not let go
        within CLOSE_WAIT, it closes the connection itself when it does."""
        self._closed = True
        for _step in range(int(CLOSE_WAIT / WAIT_STEP)):
            self.interrupt()  # again each step: an interrupt between two statements is lost
            if self._user.acquire(timeout=WAIT_STEP):
                try:
                    self._close_now()
                finally:
                    self._user.release()
                return

    def _close_now(self) -> None:
        with self._guard:
            replica, self._replica = self._replica, None
        if replica is not None:
            with contextlib.suppress(Exception):
                replica.close()

    @property
    def closed(self) -> bool:
        return self._closed
