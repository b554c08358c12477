"""Opening the replica of a data dir: the one place the CLI, the daemon, `status` and the app
turn ``Paths`` into a ``Replica`` (so what every opening needs, e.g. a key, is added once)."""

from __future__ import annotations

from typing import Any

from cache.replica import Replica
from crm_tui.paths import Paths


def open_replica(paths: Paths, *, read_only: bool = False, **options: Any) -> Replica:
    """The replica at ``paths`` with its hot cache; ``options`` as for ``Replica``.
    ``read_only`` opens an existing replica without writing anything (ReplicaError if none)."""
    return Replica(paths.replica, paths.cache_dir, read_only=read_only, **options)
