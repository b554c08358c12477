"""Running syncs of a replica on disk, for the CLI, the daemon and the app's background worker.

The rules when the app, a daemon and one-shot `sync --once` runs share a replica:

* Runs happen one at a time. Every run (the app's, the daemon's, a one-shot one) holds the
  replica's run lock for its length; a run that finds it taken waits for the other one to end
  (at most ``sync.lock_wait``, then it gives up: exit 5), then does its own run, so what it
  reports is what its run did.
* One daemon per replica. The daemon holds the daemon lock for its whole life; a second daemon
  exits 5 at once, naming the first. A daemon started while another process syncs just waits
  for that run to end.
* While a daemon serves the replica, the app leaves its background syncing to it (it shows
  "sync by daemon (pid N)"); an explicit "sync now" in the app still runs, like `sync --once`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

from cache.errors import ReplicaError
from crm_tui import credentials
from crm_tui.config import Settings
from crm_tui.core.syncstate import SyncEvent, SyncReport
from crm_tui.device import device_id, device_name
from crm_tui.keyring_store import KeyringUnavailable
from crm_tui.paths import Paths
from crm_tui.replicas import UnlockError, open_replica
from crm_tui.wipe import was_wiped, wipe_device, wipe_message
from sync.client import CrmClient
from sync.engine import Progress, SyncEngine
from sync.errors import DeviceWiped, LockHeld, NotConfigured, Stopped, SyncError
from sync.lock import SyncLock, holder_pid

log = logging.getLogger("crm_tui.sync")

RETRY_AFTER_MAX_WAIT = 3600.0  # the daemon honours a server's Retry-After up to an hour


def _ignore(_: SyncEvent) -> None:
    pass


def daemon_pid(paths: Paths) -> int | None:
    """The pid of the sync daemon serving this replica, or None."""
    return holder_pid(paths.daemon_lock)


def wake_daemon(paths: Paths) -> int | None:
    """Ask the sync daemon serving this replica to sync now (SIGUSR1, as `kill -USR1` does; a
    request while it runs makes one more run after it). Returns its pid, or None when no daemon
    serves the replica (or it is gone before it could be asked)."""
    pid = daemon_pid(paths)
    if not pid or pid < 0:
        return None
    try:
        os.kill(pid, signal.SIGUSR1)
    except (ProcessLookupError, PermissionError):
        return None
    return pid


def sync_once(paths: Paths, settings: Settings, on_event: Progress | None = None,
              stop: threading.Event | None = None, *, periodic: bool = False) -> SyncReport:
    """One sync run of the replica at ``paths`` by this process, waiting first (up to
    ``sync.lock_wait``) for another process's run to end.

    ``periodic`` (the app's background timer): a run is left to the daemon when one serves this
    replica (the report says ``by_daemon``). Never raises for sync trouble: the report says
    what happened (``refused``: no login or token refused; ``busy``: the other run went on
    longer than we wait; ``offline``; or ``error``)."""
    on_event = on_event or _ignore
    stop = stop or threading.Event()
    if (when := was_wiped(paths)) is not None:
        return SyncReport(ok=False, revoked=True, wiped=True, error=wiped_before_message(paths, when))
    if periodic and (pid := daemon_pid(paths)):
        return SyncReport(ok=True, by_daemon=True, daemon_pid=pid)
    try:
        creds = credentials.load(paths)
    except credentials.TokenUnavailable as exc:
        return SyncReport(ok=False, refused=True, error=str(exc))
    if creds is None:
        error = NotConfigured("no server configured for this replica; run `crm-tui login --server URL` first")
        return SyncReport(ok=False, refused=True, error=str(error))

    def waiting(pid: int | None) -> None:
        whose = "the sync daemon's run" if pid and pid == daemon_pid(paths) else "another sync"
        on_event(SyncEvent("wait", f"waiting for {whose} (pid {pid or '?'}) to finish"))

    lock = SyncLock(paths.lock)
    try:
        lock.acquire(settings.sync.lock_wait, stop, waiting)
    except LockHeld as exc:
        report = SyncReport(ok=False, busy=True, error=f"{exc}; its result will show in `crm-tui status`")
        on_event(SyncEvent("error", report.summary))
        return report
    except Stopped as exc:
        return SyncReport(ok=False, error=str(exc))
    try:
        try:
            replica = open_replica(paths, settings, durable=False)
        except (ReplicaError, UnlockError) as exc:
            report = SyncReport(ok=False, error=str(exc))
            on_event(SyncEvent("error", report.summary))
            return report
        device = device_id(paths)
        with CrmClient(creds.server, creds.token, settings.sync, stop=stop,
                       device=(device, device_name()) if device else None) as client, replica:
            engine = SyncEngine(replica, client, settings.sync, on_event, stop,
                                on_new_token=None if creds.store == "env" else _token_saver(paths, creds))
            report = engine.run_once()
            if not report.revoked:
                replica.checkpoint()
        if report.revoked:
            result = wipe_device(paths)
            report.wiped = True
            report.error = wipe_message(paths, result)
        return report
    finally:
        lock.release()


def wiped_before_message(paths: Paths, when: str) -> str:
    """What a process of a replica another process wiped says."""
    return (f"an admin revoked this device; its local data in {paths.data_dir} was deleted at {when}; "
            "log in again to start afresh")


def _token_saver(paths: Paths, creds: credentials.Credentials) -> Callable[[str], None]:
    def save(token: str) -> None:
        try:
            credentials.save(paths, credentials.Credentials(server=creds.server, token=token))
        except (KeyringUnavailable, OSError) as exc:
            raise SyncError(f"the API token was renewed but the new one could not be stored ({exc}); the old "
                            "one keeps working for an hour: fix the keyring and sync again") from None

    return save


def _log_run(report: SyncReport) -> None:
    if not report.ok:
        log.warning(report.summary)
    elif report.pushed or report.pulled or report.conflicts or report.rejected:
        log.info(report.summary)
    else:
        log.debug(report.summary)  # quiet when nothing happened


def run_daemon(paths: Paths, settings: Settings, stop: threading.Event, interval: float | None = None,
               on_event: Progress | None = None, wake: threading.Event | None = None) -> int:
    """Serve the replica: sync now, then every ``interval`` seconds (or as soon as ``wake`` is
    set: the CLI sets it on SIGUSR1), until ``stop`` is set (set ``wake`` too, to end a wait).

    Holds the daemon lock the whole time (raises LockHeld if another daemon serves this
    replica) and raises NotConfigured when there is no login to start with. Each run re-reads
    the login (a new `crm-tui login` takes effect at the next run) and takes the run lock like
    any other sync. Returns 0 after a graceful stop. Raises DeviceWiped once an admin revoked
    this device and its data was wiped (the CLI exits 6, which the shipped systemd unit does not
    restart)."""
    interval = interval or settings.sync.interval
    wake = wake or stop
    daemon_lock = SyncLock(paths.daemon_lock, "sync daemon")
    daemon_lock.acquire()
    try:
        if (when := was_wiped(paths)) is not None:
            raise DeviceWiped(wiped_before_message(paths, when))
        try:
            creds = credentials.load(paths)
        except credentials.TokenUnavailable as exc:
            raise NotConfigured(str(exc)) from None
        if creds is None:
            raise NotConfigured("no server configured for this replica; run `crm-tui login --server URL` first")
        log.info("daemon started (pid lock %s, every %.0f s)", paths.daemon_lock, interval)
        while not stop.is_set():
            if wake is not stop:
                wake.clear()
            report = sync_once(paths, settings, on_event, stop)
            _log_run(report)
            if report.revoked:
                log.warning("daemon stopped: %s", report.error)
                raise DeviceWiped(report.error or "an admin revoked this device")
            wait = interval
            if report.retry_after:
                wait = max(interval, min(report.retry_after, RETRY_AFTER_MAX_WAIT))
            if wake.wait(wait) and not stop.is_set():
                log.info("woken up: syncing now")
        log.info("daemon stopped")
    finally:
        daemon_lock.release()
    return 0


__all__ = ["SyncEvent", "SyncReport", "daemon_pid", "run_daemon", "sync_once", "wake_daemon"]
