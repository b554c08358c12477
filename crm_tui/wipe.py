"""Remote wipe: what a client does when the server says an admin revoked its device.

``wipe_device(paths)`` deletes everything of the replica at ``paths`` that holds customer data
or could reach the server again: the replica (and its WAL, and any half-made encrypted copy), the
hot cache, the save journal, exports in progress, the replica's key (keyring entry and key file:
whatever is left on the disk becomes unreadable), the stored credentials (the token in the
keyring or the 0600 file) and the device id. It leaves a small marker (no data: the time only) so
every other process of this replica (the app, a daemon, the next `sync --once`) says what
happened instead of "not logged in"; a new `crm-tui login` removes it.

The files are unlinked, not overwritten: on SSDs and journaling filesystems overwriting does not
reach the old blocks. What makes leftovers unreadable is the key's deletion (docs/security.md).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from crm_tui import credentials, replica_key
from crm_tui.paths import Paths

log = logging.getLogger("crm_tui.wipe")

EXPORT_SPOOL = "exports-in-progress"  # cache/exports.py's SPOOL_DIR


@dataclass
class WipeResult:
    deleted: list[str] = field(default_factory=list)  # what was there and is gone
    failed: list[str] = field(default_factory=list)  # "<path>: <reason>", for the log and the user


def was_wiped(paths: Paths) -> str | None:
    """When this replica was wiped (the marker's UTC time), or None."""
    try:
        return paths.wiped_marker.read_text().strip() or "earlier"
    except OSError:
        return None


def clear_marker(paths: Paths) -> None:
    """Forget an earlier wipe (a new login starts afresh). Nothing is written when there is no
    marker (a read-only mount refuses even the removal of a file that is not there)."""
    if paths.wiped_marker.exists():
        paths.wiped_marker.unlink(missing_ok=True)


def _remove(path: Path, result: WipeResult) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            return
    except OSError as exc:
        result.failed.append(f"{path}: {exc.strerror or exc}")
        return
    result.deleted.append(str(path))


def wipe_device(paths: Paths) -> WipeResult:
    """Delete this replica's local data, key, credentials and device id (see the module doc);
    never raises for a file it cannot delete (``failed`` names it). Safe to run again."""
    result = WipeResult()
    data = paths.data_dir
    with contextlib.suppress(OSError):
        paths.wiped_marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
    # The key first: should anything below fail, what stays on the disk is already unreadable.
    try:
        had_key = replica_key.key_file(paths).exists()
        replica_key.destroy(paths)
        if had_key:
            result.deleted.append(str(replica_key.key_file(paths)))
    except Exception as exc:  # a keyring that refuses: say so, go on deleting
        result.failed.append(f"replica key: {exc}")
    targets = sorted(data.glob(paths.replica.name + "*")) + sorted(data.glob(paths.replica.stem + "-saves.db*"))
    for path in [*targets, data / EXPORT_SPOOL, paths.cache_dir]:
        _remove(path, result)
    try:
        if credentials.forget(paths):
            result.deleted.append("stored credentials")
    except OSError as exc:
        result.failed.append(f"{paths.credentials}: {exc.strerror or exc}")
    _remove(paths.device_file, result)
    log.warning("remote wipe of %s: deleted %d item(s)%s", data, len(result.deleted),
                f"; could not delete {', '.join(result.failed)}" if result.failed else "")
    return result


def wipe_message(paths: Paths, result: WipeResult | None = None) -> str:
    """The one line a user is shown."""
    line = (f"an admin revoked this device: deleted the replica, hot cache, save journal, exports in progress, "
            f"replica key and stored credentials of {paths.data_dir}; log in again to start afresh")
    if result is not None and result.failed:
        line += f" (could not delete: {'; '.join(result.failed)})"
    return line
