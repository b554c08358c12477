"""What the sync engine tells the rest of the app: progress events and the report of a run.

Shared shapes, so the screens can show sync without importing the engine (which speaks HTTP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from crm_tui.text import plural


@dataclass(frozen=True)
class SyncEvent:
    """Progress of a sync run. ``phase``: push, pull, snapshot, backfill, resync, done, error."""

    phase: str
    message: str
    done: int = 0
    total: int = 0
    search_ready: bool = False  # customers and contacts are in: search works


@dataclass
class SyncReport:
    ok: bool
    pushed: int = 0
    pulled: int = 0
    conflicts: int = 0
    rejected: int = 0
    error: str | None = None
    offline: bool = False  # the server could not be reached (not an error of the data)
    by_daemon: bool = False  # another process (the daemon) holds the replica's sync lock
    messages: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.by_daemon:
            return "sync is run by the daemon"
        if not self.ok:
            return f"sync failed: {self.error}"
        parts = [f"pushed {self.pushed}", f"pulled {self.pulled}"]
        if self.conflicts:
            parts.append(plural(self.conflicts, "conflict"))
        if self.rejected:
            parts.append(f"{self.rejected} rejected")
        return "synced: " + ", ".join(parts)


# A runner the CLI hands to the app: run one sync, reporting progress through the callback.
SyncRunner = Callable[[Callable[[SyncEvent], None]], SyncReport]
