"""Process locks on a replica: who syncs it, and who serves it as its daemon.

An advisory ``flock`` on a file in the data dir; the kernel drops it when the process dies, so
a crashed syncer never leaves a stale lock. The file holds the holder's pid, for `status` and
for messages. Two files, two meanings (see sync/runner.py for the rules):

* ``sync.lock`` — held for the length of one sync run, by whoever runs it (the app, the daemon,
  `sync --once`): runs of one replica happen one at a time;
* ``daemon.lock`` — held by a sync daemon for its whole life: one daemon per replica, and the
  app leaves its background syncing to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from crm_tui.core.text import span
from sync.errors import LockHeld, Stopped

POLL = 0.2  # seconds between attempts while waiting for a lock


class SyncLock:
    def __init__(self, path: str | Path, what: str = "sync"):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False if another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def acquire(self, wait: float = 0.0, stop: threading.Event | None = None,
                on_wait: Callable[[int | None], None] | None = None) -> SyncLock:
        """Take the lock, waiting up to ``wait`` seconds for its holder to let go (``on_wait``
        is told the holder's pid once, when the wait starts). Raises LockHeld naming the holder,
        or Stopped if ``stop`` is set while waiting."""
        deadline = time.monotonic() + wait
        told = False
        while not self.try_acquire():
            holder = holder_pid(self.path)
            if time.monotonic() >= deadline:
                waited = f" after {span(wait)} (sync.lock_wait)" if wait else ""
                raise LockHeld(f"another {self.what} (pid {holder or '?'}) holds this replica{waited}", holder)
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            if stop is not None and stop.wait(POLL):
                raise Stopped(f"stopped while waiting for the {self.what} of pid {holder or '?'}")
            if stop is None:
                time.sleep(POLL)
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SyncLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_pid(path: str | Path) -> int | None:
    """The pid of the process holding the lock, or None if nobody holds it (-1: held, pid
    unreadable). Works in a data dir that cannot be written."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
