"""Opening the app: the replica, the sync runner (when a server is configured) and the screens."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cache.errors import ReplicaError
from cache.replica import Replica
from crm_tui import credentials
from crm_tui.config import Settings
from crm_tui.core.syncstate import EXIT_WIPED, SyncEvent, SyncReport
from crm_tui.paths import Paths
from crm_tui.replica_key import UnlockError
from crm_tui.replicas import open_replica
from crm_tui.wipe import was_wiped, wipe_device, wipe_message

# The app's own replica connection: a small page cache (the app reads a screenful at a time; whole
# scans run on workers' connections), sorts on disk unless encrypted, a few seconds' wait for the
# sync worker's write lock. The benchmark's memory scenario opens its replica with these too.
UI_REPLICA: dict[str, Any] = {"busy_timeout": 5.0, "cache_mb": 16, "temp_in_memory": False}


def run_app(paths: Paths, settings: Settings, *, config_file: Path | None = None,
            quit_note: Callable[[bool], str] | None = None,
            before_close: Callable[[Replica], None] | None = None) -> int:
    """Run the TUI on the replica at ``paths`` until the user quits; returns the exit code.
    A theme chosen in the app is saved to ``config_file`` (default: the one ``paths`` names).
    ``quit_note(saved)`` adds to the quit question; ``before_close(replica)`` sees the replica
    once the app has ended, before it is closed."""
    from screens.app import CrmApp
    from sync.runner import daemon_pid, sync_once, wake_daemon, wiped_before_message

    if (when := was_wiped(paths)) is not None:
        print(f"crm-tui: {wiped_before_message(paths, when)}", file=sys.stderr)
        return EXIT_WIPED
    paths.ensure()
    try:
        # A passphrase is asked for here, before the app owns the terminal; the sync worker's
        # own connections reuse the unlocked key. The UI waits at most a few seconds for the
        # sync worker's write lock, then says so.
        replica = open_replica(paths, settings, interactive=sys.stdin.isatty(), **UI_REPLICA)
    except (ReplicaError, UnlockError) as exc:
        print(f"crm-tui: {exc}", file=sys.stderr)
        return 1
    try:
        creds = credentials.load(paths)
    except credentials.TokenUnavailable as exc:  # the replica still answers; only sync is off
        print(f"crm-tui: {exc}; the app opens without syncing", file=sys.stderr)
        creds = None
    stop = threading.Event()
    runner = None
    if creds is not None:
        def runner(on_event: Callable[[SyncEvent], None], periodic: bool = False) -> SyncReport:
            # Background runs leave the work to a sync daemon serving this replica, if any.
            return sync_once(paths, settings, on_event, stop, periodic=periodic)
    try:
        app = CrmApp(replica, settings, sync_runner=runner, server_label=creds.server if creds else None,
                     config_path=config_file or paths.config_file,
                     daemon_probe=lambda: daemon_pid(paths), daemon_wake=lambda: wake_daemon(paths),
                     quit_note=quit_note)
        app.run()
    finally:
        stop.set()
        try:
            if before_close is not None:
                before_close(replica)
        finally:
            replica.close()
    if app.return_code == EXIT_WIPED:
        # The sync worker wiped the data while this process still had the replica open: once
        # closed, anything the app wrote since (hot cache entries) goes too.
        wipe_device(paths)
        print(f"crm-tui: {app.revoked_message or wipe_message(paths)}", file=sys.stderr)
    return app.return_code or 0
