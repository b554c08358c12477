"""Converting a plaintext replica into an encrypted one (what `crm-tui encrypt` runs on).

``export_encrypted`` copies everything (tables, FTS indexes, triggers, the outbox and its pending
edits, ``user_version``) into a new SQLCipher file with SQLCipher's own ``sqlcipher_export``, then
proves the copy: an integrity check and the same row count in every table. Swapping the files
is the caller's job, done only after this returns and while nobody has the replica open.
"""

from __future__ import annotations

from pathlib import Path

from cache.errors import ReplicaError
from cache.sqlite import connect_keyed, sqlite3


def _row_counts(conn: sqlite3.Connection, schema: str = "main") -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name")]
    return {n: conn.execute(f'SELECT count(*) FROM {schema}."{n}"').fetchone()[0] for n in names}


def fold_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Copy the WAL into the database file and empty it; raises ReplicaError if a reader or
    writer elsewhere kept part of it (the caller should hold the replica exclusively)."""
    busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise ReplicaError(f"the replica at {path} is in use by another process; its write-ahead log "
                           "could not be folded in")


def export_encrypted(source: Path, target: Path, key: bytes) -> dict[str, int]:
    """Write an encrypted copy of the plaintext replica ``source`` to ``target`` (replaced if it
    exists), keyed with ``key``; returns the row count per table. Raises ReplicaError if the
    copy cannot be made or does not match the original (``target`` is then removed)."""
    for leftover in (target, Path(f"{target}-journal"), Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    src = connect_keyed(str(source), None, timeout=5.0)
    try:
        fold_wal(src, source)
        version = int(src.execute("PRAGMA user_version").fetchone()[0])
        expected = _row_counts(src)
        src.execute("ATTACH DATABASE ? AS encrypted KEY ?", (str(target), f"x'{key.hex()}'"))
        src.execute("SELECT sqlcipher_export('encrypted')")
        src.execute(f"PRAGMA encrypted.user_version = {version}")
        src.execute("DETACH DATABASE encrypted")
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise ReplicaError(f"could not write an encrypted copy of {source}: {exc}") from None
    finally:
        src.close()
    copy = connect_keyed(str(target), key, timeout=5.0)
    try:
        check = copy.execute("PRAGMA quick_check").fetchone()[0]
        counts = _row_counts(copy)
        same_version = int(copy.execute("PRAGMA user_version").fetchone()[0]) == version
    except sqlite3.Error as exc:
        check, counts, same_version = str(exc), {}, False
    finally:
        copy.close()
    if check != "ok" or counts != expected or not same_version:
        target.unlink(missing_ok=True)
        differ = sorted(n for n in set(expected) | set(counts) if expected.get(n) != counts.get(n))
        raise ReplicaError(f"the encrypted copy of {source} did not check out ({check}; tables differing: "
                           f"{', '.join(differ) or 'none'}); the replica was left as it was")
    return counts
