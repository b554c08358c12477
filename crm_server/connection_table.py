"""Open-connection counts shared by the worker processes of one ``crm-server serve --workers N``.

The connection caps (``--max-connections``, ``--max-connections-per-client``) are caps of the
server, not of one process: a client must not get N times its share by landing on N workers.
The counts live in memory the supervisor maps before it forks the workers, so every worker
reads and updates the same numbers; a worker that dies is cleared by the supervisor
(:meth:`ConnectionTable.forget_worker`), so its connections stop counting.

Layout: ``keys[slot]`` is a 64-bit hash of a client address; ``counts[slot * W + w]`` is how
many of that client's connections worker ``w`` holds; ``totals[w]`` all of worker ``w``'s
connections. A client's slot is found by linear probing within :data:`WINDOW` slots of its hash
(a slot whose counts are all zero is reused); the table has at least 16 slots per connection
the server may hold, so a window is never full in practice — if one were, the connection is
refused as if the server were full, never admitted uncounted.

Updates take a POSIX record lock (``fcntl.lockf``) on a memfd: such locks belong to a process
and the kernel drops them when it dies, so a worker killed while holding it cannot stop the
others. Only the event-loop thread of each worker takes it, for a few microseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import multiprocessing
import os
from collections.abc import Iterator
from typing import Literal

WINDOW = 32
MIN_SLOTS = 4096

Refusal = Literal["total", "client"]


def _key(client: str) -> int:
    # Never 0: 0 marks a slot that was never used.
    return int.from_bytes(hashlib.blake2b(client.encode(), digest_size=8).digest(), "little") | 1


class ConnectionTable:
    """Counts of open connections per client and per worker, shared across a fork."""

    def __init__(self, workers: int, max_connections: int):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        slots = MIN_SLOTS
        while slots < 16 * max_connections:
            slots *= 2
        self.workers, self.mask = workers, slots - 1
        self.keys = multiprocessing.RawArray(ctypes.c_uint64, slots)
        self.counts = multiprocessing.RawArray(ctypes.c_int32, slots * workers)
        self.totals = multiprocessing.RawArray(ctypes.c_int32, workers)
        self._lock_fd = os.memfd_create("crm-server-connections", os.MFD_CLOEXEC)
        os.ftruncate(self._lock_fd, 1)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_UN)

    def _held(self, slot: int) -> int:
        base = slot * self.workers
        return sum(self.counts[base:base + self.workers])

    def _find(self, key: int, claim: bool) -> int | None:
        free = None
        for i in range(WINDOW):
            slot = (key + i) & self.mask
            seen = self.keys[slot]
            if seen == key:
                return slot
            if seen == 0:
                free = slot if free is None else free
                break
            if free is None and self._held(slot) == 0:
                free = slot
        if claim and free is not None:
            self.keys[free] = key
            return free
        return None

    def admit(self, worker: int, client: str, max_connections: int, max_per_client: int) -> Refusal | None:
        """Count a new connection of ``client`` on ``worker``; or say which cap it is over."""
        with self._locked():
            if sum(self.totals) >= max_connections:
                return "total"
            if max_per_client:
                slot = self._find(_key(client), claim=True)
                if slot is None:
                    return "total"
                if self._held(slot) >= max_per_client:
                    return "client"
                self.counts[slot * self.workers + worker] += 1
            self.totals[worker] += 1
        return None

    def release(self, worker: int, client: str, per_client: bool) -> None:
        """Forget a connection :meth:`admit` counted (``per_client``: it was counted per client too)."""
        with self._locked():
            if per_client:
                slot = self._find(_key(client), claim=False)
                if slot is not None and self.counts[slot * self.workers + worker] > 0:
                    self.counts[slot * self.workers + worker] -= 1
            if self.totals[worker] > 0:
                self.totals[worker] -= 1

    def forget_worker(self, worker: int) -> None:
        """Drop every connection ``worker`` held (it died; the kernel closed them)."""
        with self._locked():
            for slot in range(self.mask + 1):
                self.counts[slot * self.workers + worker] = 0
            self.totals[worker] = 0

    def open_connections(self) -> int:
        """Connections open in all workers now."""
        with self._locked():
            return sum(self.totals)
