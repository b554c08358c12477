"""A bounded pool of database connections (SQLite's; PostgreSQL's comes from psycopg_pool).

At most ``size`` connections ever exist; a request that finds them all busy waits up to
``timeout`` seconds and then gets StoreBusy (a 503 the client retries), instead of opening one
more connection with its own page cache per server thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from crm_server.store.base import StoreBusy

C = TypeVar("C")
WAIT_SECONDS = 30.0


class BoundedPool(Generic[C]):
    """Connections made on demand, reused most-recent first, never more than ``size``."""

    def __init__(self, connect: Callable[[], C], size: int, close: Callable[[C], None], timeout: float = WAIT_SECONDS):
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self._connect, self._close, self.size, self.timeout = connect, close, size, timeout
        self._idle: queue.LifoQueue[C] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[C] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[C]:
        """A connection for the block; raises StoreBusy when none frees up within the timeout."""
        if not self._slots.acquire(timeout=self.timeout):
            raise StoreBusy(f"all {self.size} database connections stayed busy for {self.timeout:.0f} s")
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
                with self._lock:
                    self._all.append(conn)
            try:
                yield conn
            finally:
                self._idle.put(conn)
        finally:
            self._slots.release()

    @property
    def opened(self) -> int:
        """How many connections exist (never more than ``size``)."""
        return len(self._all)

    def close(self) -> None:
        """Close every connection this pool made."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            self._close(conn)
