"""Opening the replica the way every command does: the one place that decides encryption.

``open_replica(paths, settings)`` is what the app, the sync runner, the daemon, `status` and
`login` call. It finds (or, for a new replica, creates) the key, refuses a plaintext replica
unless the user opted out of encryption (loudly), and holds a shared "in use" lock on the data
dir for as long as the replica is open, so `crm-tui encrypt` can be sure nobody else has it open
before it swaps the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path
from typing import Any

from cache.errors import ReplicaError
from cache.replica import Replica
from cache.sqlite import has_plaintext_header
from crm_tui import replica_key
from crm_tui.config import Settings
from crm_tui.paths import Paths
from crm_tui.replica_key import UnlockError

IN_USE = "replica.inuse"

_warned: set[str] = set()


class ReplicaInUse(ReplicaError):
    """Another process has the replica open (or is converting it)."""


def in_use_path(paths: Paths) -> Path:
    return paths.data_dir / IN_USE


def hold_in_use(paths: Paths, *, exclusive: bool = False) -> int:
    """Take the data dir's in-use lock (shared for users of the replica, exclusive for
    `crm-tui encrypt`) without waiting; returns the fd that holds it. Raises ReplicaInUse."""
    paths.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(in_use_path(paths), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        if exclusive:
            raise ReplicaInUse(f"the replica at {paths.replica} is open in another crm-tui process (the app, a "
                               "sync or the daemon); close it and try again") from None
        raise ReplicaInUse(f"the replica at {paths.replica} is being encrypted by `crm-tui encrypt`; "
                           "try again when it has finished") from None
    return fd


def release_in_use(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def replica_key_for(paths: Paths, settings: Settings, *, interactive: bool = False) -> bytes | None:
    """The key to open the replica at ``paths`` with (None: it is and stays plaintext).

    A new replica gets a new key, unless encryption is switched off. Raises UnlockError (no key,
    wrong passphrase) and ReplicaError (a plaintext replica while encryption is on)."""
    plaintext = has_plaintext_header(str(paths.replica))
    if plaintext is False:
        return replica_key.unlock(paths, interactive=interactive)
    if not settings.security.encrypt_replica:
        _warn_plaintext(paths)
        return None
    if plaintext:
        raise ReplicaError(f"the replica at {paths.replica} is not encrypted; run `crm-tui encrypt` to encrypt "
                           "it in place (pending edits are kept), or set security.encrypt_replica = false "
                           "to keep it in plaintext")
    if replica_key.read_key_info(paths) is not None:  # a replica file removed, its key kept
        return replica_key.unlock(paths, interactive=interactive)
    return replica_key.create(paths, settings, interactive=interactive)


def _warn_plaintext(paths: Paths) -> None:
    if str(paths.data_dir) in _warned:
        return
    _warned.add(str(paths.data_dir))
    print(f"crm-tui: WARNING: encryption is off (security.encrypt_replica = false): the replica at "
          f"{paths.replica} and the hot cache in {paths.cache_dir} keep customer data in plaintext",
          file=sys.stderr)


def open_replica(paths: Paths, settings: Settings, *, interactive: bool = False, read_only: bool = False,
                 **options: Any) -> Replica:
    """The replica at ``paths``, opened with its key (created with one if new).

    ``interactive`` lets a passphrase be asked for on the terminal; without it a passphrase
    comes from CRM_TUI_PASSPHRASE or from an earlier unlock in this process. ``read_only`` opens
    an existing replica without writing anything (no key is created; ReplicaError if there is no
    replica). ``options`` go to ``Replica`` (``durable``, ``busy_timeout``, ``cache_mb``, ...).

    Raises UnlockError, ReplicaInUse (being encrypted), and ReplicaError (plaintext while
    encryption is on; a key that does not open the file)."""
    if read_only and not paths.replica.exists():
        raise ReplicaError(f"there is no replica at {paths.replica}")
    key = replica_key_for(paths, settings, interactive=interactive)
    try:
        fd: int | None = hold_in_use(paths)
    except OSError:
        if not read_only:
            raise
        fd = None  # a data dir nobody may write to: nobody can be converting the replica either
    try:
        replica = Replica(paths.replica, paths.cache_dir, key=key, read_only=read_only,
                          clock=settings.make_clock(), **options)
    except BaseException:
        if fd is not None:
            release_in_use(fd)
        raise
    if fd is not None:
        replica.on_close(lambda: release_in_use(fd))
    return replica


__all__ = ["ReplicaInUse", "UnlockError", "open_replica", "replica_key_for"]
