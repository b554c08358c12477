"""The hot cache: assembled objects that are costly to build (the customer 360 view, report
results), kept in a diskcache directory shared by every process on this replica.

Each entry is stored with the *stamp* of the data it was built from (the replica epoch plus a
revision counter the replica bumps in the same transaction as any change to that data). A read
whose stamp differs rebuilds, so an entry is never served stale, even when the TUI and the daemon
change the replica concurrently. The directory holds nothing that is not also in SQLite: deleting
it at any time loses nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import diskcache

T = TypeVar("T")

SIZE_LIMIT = 256 * 1024 * 1024


class HotCache:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        # A directory that cannot be made (a read-only data dir) leaves a cache that builds
        # every time: the cache is a speed-up, never a reason to fail.
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, os.stat(self.directory).st_mode & 0o700)
        self._cache: diskcache.Cache | None = None
        self.hits = 0
        self.misses = 0

    @property
    def cache(self) -> diskcache.Cache:
        if self._cache is None:
            # Entries are small pickled dicts; the default SQLite-backed index is what makes
            # a warm get well under a millisecond.
            self._cache = diskcache.Cache(str(self.directory), size_limit=SIZE_LIMIT)
        return self._cache

    def get_or_build(self, key: str, stamp: Hashable, build: Callable[[], T]) -> T:
        """The entry for ``key`` if it was built from data at ``stamp``; else build, store, return.

        A broken or unreadable cache directory degrades to building every time; it never raises.
        """
        try:
            entry = self.cache.get(key)
        except Exception:
            entry = None
        if entry is not None and entry[0] == stamp:
            self.hits += 1
            return entry[1]
        self.misses += 1
        value = build()
        with contextlib.suppress(Exception):
            self.cache.set(key, (stamp, value))
        return value

    def get_fresh(self, key: str, stamp: Hashable) -> Any:
        """The entry for ``key`` if it was built from data at ``stamp``, else None (no building)."""
        try:
            entry = self.cache.get(key)
        except Exception:
            return None
        return entry[1] if entry is not None and entry[0] == stamp else None

    def peek(self, key: str) -> Any:
        with contextlib.suppress(Exception):
            return self.cache.get(key)
        return None

    def clear(self) -> None:
        with contextlib.suppress(Exception):
            self.cache.clear()

    def close(self) -> None:
        if self._cache is not None:
            with contextlib.suppress(Exception):
                self._cache.close()
            self._cache = None
