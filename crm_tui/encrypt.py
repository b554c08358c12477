"""`crm-tui encrypt`: turn a plaintext replica (from before encryption, or from an opt-out)
into an encrypted one in place, keeping everything in it, pending edits included.

While it runs it holds the sync lock and the replica's in-use lock exclusively, so no sync, daemon
or app has the file open: the swap can never strand a write in the old file. Order of work:
key first (created, or the one an interrupted earlier run already stored), the encrypted copy
next to the replica (checked table by table), the old hot cache removed (its entries were
plaintext), then one atomic rename. A crash at any point leaves either the old replica or the new
one, never neither; running the command again finishes the job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cache import hot
from cache.errors import ReplicaError
from cache.rekey import export_encrypted
from cache.save_queue import journal_path
from cache.sqlite import has_plaintext_header
from crm_tui import replica_key
from crm_tui.config import Settings
from crm_tui.paths import Paths
from crm_tui.replicas import hold_in_use, open_replica, release_in_use
from sync.lock import SyncLock


@dataclass
class EncryptResult:
    already: bool
    records: int = 0
    pending: int = 0
    key_store: str = ""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_wal_files(replica: Path) -> None:
    """After the last connection closed, the WAL must be empty: a plaintext WAL next to the new
    file would be read as part of it."""
    wal, shm = Path(f"{replica}-wal"), Path(f"{replica}-shm")
    if wal.exists() and wal.stat().st_size > 0:
        raise ReplicaError(f"{wal} still holds changes; open and close the app once, then try again")
    wal.unlink(missing_ok=True)
    shm.unlink(missing_ok=True)


def _convert(path: Path, key: bytes) -> None:
    """Replace the plaintext database at ``path`` by a checked, encrypted copy."""
    staging = path.with_name(path.name + ".encrypting")
    export_encrypted(path, staging, key)
    _remove_wal_files(path)
    os.replace(staging, path)


def encrypt_replica(paths: Paths, settings: Settings, *, interactive: bool = False) -> EncryptResult:
    """Encrypt the plaintext replica at ``paths`` in place (a no-op if it is encrypted already).

    Raises sync.errors.LockHeld (a sync or daemon runs), replicas.ReplicaInUse (the app has it
    open), replica_key.UnlockError (no place for the key) and ReplicaError (nothing to encrypt,
    or the copy did not check out; the replica is then left as it was)."""
    state = has_plaintext_header(str(paths.replica))
    if state is None:
        raise ReplicaError(f"there is no replica at {paths.replica} yet; new replicas are encrypted from the start")
    if state is False:
        return EncryptResult(already=True)
    daemon = SyncLock(paths.daemon_lock, "sync daemon").acquire()  # no daemon serves it meanwhile
    try:
        _encrypt_locked(paths, settings, interactive)
    finally:
        daemon.release()
    with open_replica(paths, settings) as replica:
        pending = replica.outbox.counts()["pending"]
        records = sum(replica.counts().values())
    info = replica_key.read_key_info(paths) or {}
    return EncryptResult(already=False, records=records, pending=pending, key_store=str(info.get("store", "")))


def _encrypt_locked(paths: Paths, settings: Settings, interactive: bool) -> None:
    lock = SyncLock(paths.lock).acquire()  # no sync run either
    try:
        fd = hold_in_use(paths, exclusive=True)
        try:
            if replica_key.read_key_info(paths) is not None:  # an earlier run stored the key, then stopped
                key = replica_key.unlock(paths, interactive=interactive)
            else:
                key = replica_key.create(paths, settings, interactive=interactive)
            # The save journal beside the replica (saves the app queued) is converted first: a
            # crash between the two swaps leaves an encrypted journal that the rerun skips.
            journal = journal_path(paths.replica)
            if has_plaintext_header(str(journal)):
                _convert(journal, key)
            hot.destroy(paths.cache_dir)
            _convert(paths.replica, key)
            _fsync_dir(paths.data_dir)
        finally:
            release_in_use(fd)
    finally:
        lock.release()


__all__ = ["EncryptResult", "encrypt_replica"]
