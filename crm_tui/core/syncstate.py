"""What the sync engine tells the rest of the app: progress events and the report of a run.

Shared shapes, so the screens can show sync without importing the engine (which speaks HTTP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from crm_tui.core.text import grouped, plural

# The exit code of every crm-tui command (the app too) once an admin revoked this device and its
# local data was deleted; the shipped systemd unit does not restart on it.
EXIT_WIPED = 6


@dataclass(frozen=True)
class SyncEvent:
    """Progress of a sync run. ``phase``: push, pull, snapshot, backfill, resync, done, error;
    offline (the server is unreachable; the run retries) and retry (a failed request is retried)."""

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
    refused: bool = False  # no login, or the server refused the token
    busy: bool = False  # another process's sync kept the replica longer than we wait
    by_daemon: bool = False  # a background run left to the sync daemon serving this replica
    daemon_pid: int | None = None
    retry_after: float | None = None  # the server asked to be left alone this long (seconds)
    messages: list[str] = field(default_factory=list)
    renewed_until: str | None = None  # the token was renewed this run; the new one expires then
    revoked: bool = False  # an admin revoked this device (the caller wipes the local data)
    wiped: bool = False  # ... and the local data was deleted
    # Requests that found no answer (or an answer asking to come back) in a row, across runs and
    # processes, since the server last answered (0 once it has): what "offline" says.
    failed_attempts: int = 0
    offline_detail: str = ""  # what the status says after an offline run (failed_attempts_text)

    @property
    def summary(self) -> str:
        if self.by_daemon:
            return f"sync by daemon (pid {self.daemon_pid})" if self.daemon_pid else "sync by daemon"
        if self.revoked:
            return self.error or "an admin revoked this device"
        if not self.ok:
            return f"sync failed: {self.error}"
        parts = [f"pushed {grouped(self.pushed)}", f"pulled {grouped(self.pulled)}"]
        if self.conflicts:
            parts.append(plural(self.conflicts, "conflict"))
        if self.rejected:
            parts.append(f"{grouped(self.rejected)} rejected")
        return "synced: " + ", ".join(parts)


def failed_attempts_text(n: int, reason: str | None = None) -> str:
    """What the status says while the server fails: ``n`` failed attempts in a row, counted
    across runs until the server answers again, so the number only ever grows (a count per run
    or per request would start again at 1 with each run). ``reason``: the last failure, when
    the server did answer (an HTTP 503); None: no answer at all."""
    so_far = f"{plural(n, 'failed attempt')} so far"
    return f"{reason}; {so_far}" if reason else f"the server does not answer; {so_far}"


# A runner the CLI hands to the app: ``runner(on_event, periodic=...)`` runs one sync, reporting
# progress through the callback; a ``periodic`` (background) run may be left to a sync daemon.
SyncRunner = Callable[..., SyncReport]
