"""A one-line progress display on a terminal, fed by sync events."""

from __future__ import annotations

import sys
from collections.abc import Callable

from crm_tui.core.syncstate import SyncEvent


def terminal_progress(enabled: bool) -> Callable[[SyncEvent], None]:
    """A one-line progress display for a terminal (bootstrap can take a while)."""
    state = {"last": ""}

    def show(event: SyncEvent) -> None:
        if not enabled:
            return
        if event.total:
            width = 30
            filled = int(width * min(event.done, event.total) / max(event.total, 1))
            line = f"[{'#' * filled}{'.' * (width - filled)}] {event.message}"
        else:
            line = event.message
        if event.search_ready and event.phase == "snapshot":
            line += "  (search ready)"
        pad = max(0, len(state["last"]) - len(line))
        sys.stderr.write("\r" + line + " " * pad)
        sys.stderr.flush()
        state["last"] = line
        if event.phase in ("done", "error"):
            sys.stderr.write("\n")

    return show
