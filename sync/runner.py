"""Running a sync for a replica on disk: credentials, the lock, the replica and the client,
put together for the CLI, the daemon and the app's background worker."""

from __future__ import annotations

import logging
import threading
import time

from crm_tui import credentials
from crm_tui.config import Settings
from crm_tui.domain import format_datetime, utcnow
from crm_tui.paths import Paths
from crm_tui.replicas import open_replica
from crm_tui.syncstate import SyncEvent, SyncReport
from sync.client import CrmClient
from sync.engine import Progress, SyncEngine
from sync.errors import LockHeld, NotConfigured
from sync.lock import SyncLock

log = logging.getLogger("crm_tui.sync")


def _client(paths: Paths, settings: Settings) -> CrmClient:
    try:
        creds = credentials.load(paths)
    except credentials.TokenUnavailable as exc:
        raise NotConfigured(str(exc)) from None
    if creds is None:
        raise NotConfigured("no server configured for this replica; run `crm-tui login --server URL` first")
    return CrmClient(creds.server, creds.token, settings.sync)


def request_daemon_sync(paths: Paths, settings: Settings) -> None:
    """Ask the daemon holding the lock to sync now (it polls for this once a second)."""
    with open_replica(paths, settings) as replica:
        replica.set_meta("sync_requested", format_datetime(utcnow()))


def sync_once(paths: Paths, settings: Settings, on_event: Progress | None = None,
              stop: threading.Event | None = None) -> SyncReport:
    """One sync of the replica at ``paths``. If a daemon holds the lock, ask it to sync instead.

    Raises NotConfigured when there is no server to sync with; everything else is in the report."""
    client = _client(paths, settings)
    try:
        lock = SyncLock(paths.lock).acquire()
    except LockHeld:
        client.close()
        request_daemon_sync(paths, settings)
        return SyncReport(ok=True, by_daemon=True)
    try:
        with open_replica(paths, settings, durable=False) as replica:
            report = SyncEngine(replica, client, settings.sync, on_event, stop).run_once()
            replica.checkpoint()
            return report
    finally:
        client.close()
        lock.release()


def run_daemon(paths: Paths, settings: Settings, stop: threading.Event, interval: float | None = None,
               on_event: Progress | None = None) -> int:
    """Sync every ``interval`` seconds (or sooner when the app asks) until ``stop`` is set.

    Holds the replica's lock the whole time; raises LockHeld if another syncer has it.
    Returns 0 after a graceful stop."""
    interval = interval or settings.sync.interval
    lock = SyncLock(paths.lock).acquire()
    client = _client(paths, settings)
    try:
        with open_replica(paths, settings, durable=False) as replica:
            engine = SyncEngine(replica, client, settings.sync, on_event, stop)
            log.info("daemon started (pid lock %s, every %.0fs)", paths.lock, interval)
            while not stop.is_set():
                try:
                    replica.set_meta("sync_requested", None)
                    report = engine.run_once()
                except Exception:  # a daemon outlives any one bad run; the next one retries
                    log.exception("sync run failed unexpectedly")
                else:
                    if report.ok:
                        log.info(report.summary)
                    else:
                        log.warning(report.summary)
                replica.checkpoint()
                deadline = time.monotonic() + interval
                while not stop.is_set() and time.monotonic() < deadline:
                    if stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                        break
                    if replica.get_meta("sync_requested"):
                        log.info("sync requested")
                        break
            log.info("daemon stopped")
    finally:
        client.close()
        lock.release()
    return 0


__all__ = ["SyncEvent", "SyncReport", "request_daemon_sync", "run_daemon", "sync_once"]
