"""The hot cache: assembled objects that are costly to build (the customer 360 view, report
results), kept in a diskcache directory shared by every process on this replica.

Each entry is stored with the *stamp* of the data it was built from (the replica epoch plus a
revision counter the replica bumps in the same transaction as any change to that data). A read
whose stamp differs rebuilds, so an entry is never served stale, even when the TUI and the daemon
change the replica concurrently. The directory holds nothing that is not also in SQLite: deleting
it at any time loses nothing.

With a ``secret`` (the replica is encrypted), nothing readable reaches the directory: each value is
pickled and sealed with AES-GCM under a key derived from the secret, and each entry's name (which
may carry a customer id) is replaced by a keyed hash of it. An entry that does not open with the
current key (a re-keyed replica, an altered file) is a miss.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from cache.sealing import SealBroken, Sealer, blind, derive

T = TypeVar("T")

SIZE_LIMIT = 256 * 1024 * 1024


class HotCache:
    def __init__(self, directory: str | Path, secret: bytes | None = None):
        self.directory = Path(directory)
        self._sealer = Sealer(derive(secret, "hot-cache values")) if secret is not None else None
        self._names = derive(secret, "hot-cache names") if secret is not None else None
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
        entry = self._get(key)
        if entry is not None and entry[0] == stamp:
            self.hits += 1
            hit: T = entry[1]
            return hit
        self.misses += 1
        value = build()
        with contextlib.suppress(Exception):
            self._set(key, (stamp, value))
        return value

    def get_fresh(self, key: str, stamp: Hashable) -> Any:
        """The entry for ``key`` if it was built from data at ``stamp``, else None (no building)."""
        entry = self._get(key)
        return entry[1] if entry is not None and entry[0] == stamp else None

    def peek(self, key: str) -> Any:
        """The stored ``(stamp, value)`` for ``key``, whatever its stamp, or None."""
        return self._get(key)

    def _name(self, key: str) -> str:
        return key if self._names is None else blind(self._names, key)

    def _get(self, key: str) -> Any:
        name = self._name(key)
        try:
            stored = self.cache.get(name)
        except Exception:
            return None
        if self._sealer is None or stored is None:
            return stored
        try:
            return pickle.loads(self._sealer.open(stored, name.encode()))
        except (SealBroken, TypeError, pickle.UnpicklingError):
            return None

    def _set(self, key: str, entry: tuple[Hashable, Any]) -> None:
        name = self._name(key)
        if self._sealer is None:
            self.cache.set(name, entry)
        else:
            self.cache.set(name, self._sealer.seal(pickle.dumps(entry, pickle.HIGHEST_PROTOCOL), name.encode()))

    def clear(self) -> None:
        with contextlib.suppress(Exception):
            self.cache.clear()

    def close(self) -> None:
        if self._cache is not None:
            with contextlib.suppress(Exception):
                self._cache.close()
            self._cache = None


_DISKCACHE_PARTS = re.compile(r"^(cache\.db(-wal|-shm|-journal)?|[0-9a-f]{2})$")


def destroy(directory: str | Path) -> None:
    """Remove a hot-cache directory's diskcache files (its index and value files), not the
    directory itself nor anything else in it. Used when the replica's key changes: entries
    written under the old key (or none) must not outlive it. Deleted files can linger in the
    disk's free space; the docs say so."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for part in directory.iterdir():
        if not _DISKCACHE_PARTS.match(part.name):
            continue
        if part.is_dir():
            shutil.rmtree(part, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
