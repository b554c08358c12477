"""The replica: one SQLite file holding the user's slice of the CRM, its outbox and its conflicts.

A ``Replica`` is one connection; open one per thread (the app's screens use one, the sync
worker its own). Every write goes through ``transaction()``, which takes SQLite's write lock up
front (BEGIN IMMEDIATE) so a reader never sees half a change.

``Replica`` opens the file and builds the parts over one ``Store`` (the connection, its
transactions, replica_meta, the clock), handing each part only the others it works with:
``reads``, ``lists``, ``tasks``, ``search``, ``reports`` (what the screens show); ``writes``
(local saves and conflict resolutions); ``outbox`` (the queue of ops), ``conflicts``,
``rejected``, ``refetch``; ``server_apply`` (``ServerApply``: pulled pages, and the server's records
that push ``results`` and refetches bring); ``history`` (sync runs) and ``saves`` (the save
journal). The parts never import this module.

Given a ``key``, the file (and its WAL) is SQLCipher-encrypted, and so are the hot cache and the
save journal beside it. Where the key comes from is not this layer's business:
``crm_tui.replicas.open_replica`` finds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from cache.conflicts import Conflicts
from cache.errors import ReplicaError, ReplicaKeyError, ReplicaNotEncrypted
from cache.export_names import ExportNames
from cache.exports import export_file
from cache.history import SyncHistory
from cache.hot import HotCache
from cache.lists import Lists
from cache.local_writes import LocalWrites
from cache.outbox import Outbox
from cache.pull import ServerApply
from cache.push_results import PushResults
from cache.quarantine import Quarantine
from cache.reads import Reads
from cache.records import Records
from cache.refetch import Refetch
from cache.rejected import RejectedOps
from cache.reports import Reports
from cache.revisions import Revisions
from cache.save_queue import SaveQueue
from cache.schema import check_version, migrate
from cache.search import Search
from cache.sqlite import connect_keyed, has_plaintext_header, sqlite3
from cache.store import Store
from cache.tasks import TaskReads
from crm_tui.core.domain import utcnow


def _check_key(path: Path, key: bytes | None) -> bool | None:
    """Refuse a key for a plaintext file before opening it; returns what the header says."""
    plaintext = has_plaintext_header(str(path))
    if plaintext and key is not None:
        raise ReplicaNotEncrypted(f"the replica at {path} is not encrypted yet; "
                                  "run `crm-tui encrypt` to encrypt it in place")
    return plaintext


def _prove_key(conn: sqlite3.Connection, path: Path, key: bytes | None, plaintext: bool | None) -> None:
    """Read the schema: a wrong key (or none for an encrypted file) fails here, with a message."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        if plaintext is not False or isinstance(exc, sqlite3.OperationalError):
            raise
        conn.close()
        if key is None:
            raise ReplicaKeyError(f"the replica at {path} is encrypted and no key was given") from None
        raise ReplicaKeyError(f"the key does not open the replica at {path} "
                              "(a wrong key or passphrase, or a damaged file)") from None


def _connect(path: Path, busy_timeout: float, read_only: bool, key: bytes | None) -> sqlite3.Connection:
    plaintext = _check_key(path, key)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect_keyed(str(path), key, timeout=busy_timeout)
        with contextlib.suppress(OSError):  # private to the user; never adds a permission
            os.chmod(path, os.stat(path).st_mode & 0o700)
        _prove_key(conn, path, key, plaintext)
        return conn
    if not path.exists():
        raise ReplicaError(f"there is no replica at {path}")
    uri = path.resolve().as_uri()
    conn = connect_keyed(f"{uri}?mode=ro", key, timeout=busy_timeout, uri=True)
    try:
        _prove_key(conn, path, key, plaintext)
    except sqlite3.OperationalError:
        # A WAL replica in a directory we may not write to: without its shared-memory file,
        # SQLite reads it only as immutable (safe: nobody can be writing there either).
        conn.close()
        conn = connect_keyed(f"{uri}?immutable=1", key, timeout=busy_timeout, uri=True)
        _prove_key(conn, path, key, plaintext)
    return conn


def _open_error(path: Path, exc: sqlite3.Error, read_only: bool) -> str:
    if not read_only and not os.access(path.parent, os.W_OK | os.X_OK):
        return f"cannot open the replica at {path}: its directory is not writable"
    if "readonly" in str(exc) or "read-only" in str(exc):
        return f"cannot open the replica at {path}: it is read-only here ({exc})"
    return f"cannot open the replica at {path}: {exc}"


class Replica:
    """The local replica at ``path`` (created if missing), with its hot cache in ``hot_dir``.

    ``read_only=True`` opens an existing replica for reading only (``status`` does; it works in
    a data dir that cannot be written): nothing is migrated, created or written.

    ``key`` (32 raw bytes) opens or creates an encrypted replica; None means a plaintext one.
    Raises ReplicaKeyError when the key does not open the file (or the file is encrypted and no
    key was given), ReplicaNotEncrypted when a key is given for a plaintext file.

    ``cache_mb`` and ``temp_in_memory`` size SQLite's page cache and where it sorts (an encrypted
    replica always sorts in memory: SQLite's temporary files are not encrypted).

    ``durable=True`` (the default) makes every commit wait for the disk (synchronous=FULL):
    a save the UI acknowledged survives a crash or power cut. The sync worker's bulk pulls may
    open with ``durable=False``; a page and its cursor still commit together, so a crash only
    costs a re-download.
    """

    def __init__(self, path: str | Path, hot_dir: str | Path | None = None, *, key: bytes | None = None,
                 durable: bool = True, busy_timeout: float = 30.0, cache_mb: int = 64, temp_in_memory: bool = True,
                 read_only: bool = False, clock: Callable[[], dt.datetime] = utcnow):
        """``clock`` is "now" for everything this replica records (local writes, queued saves,
        results, conflicts, quarantine, sync runs); the one clock of the process that opens it."""
        self.path = Path(path)
        self.read_only = read_only
        self._key = key
        self._options = {"durable": durable, "busy_timeout": busy_timeout, "cache_mb": cache_mb,
                         "temp_in_memory": temp_in_memory, "read_only": read_only}
        self._closers: list[Callable[[], None]] = []
        conn = None
        try:
            conn = _connect(self.path, busy_timeout, read_only, key)
            if not read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                if not durable:
                    # The sync worker writes in bursts: let the WAL grow to ~40 MB before a commit
                    # has to checkpoint it, and checkpoint when a sync ends instead (``checkpoint``).
                    conn.execute("PRAGMA wal_autocheckpoint = 10000")
            conn.execute("PRAGMA foreign_keys = OFF")
            # The app keeps a small page cache and sorts big results on disk (it lives all day next
            # to other programs); the sync worker trades memory for speed while it runs.
            conn.execute(f"PRAGMA temp_store = {'MEMORY' if temp_in_memory or key is not None else 'FILE'}")
            conn.execute(f"PRAGMA cache_size = -{int(cache_mb) * 1024}")
            self.conn = conn
            self.db = sqlite_utils.Database(conn)
            if read_only:
                check_version(conn)
            else:
                migrate(self.db)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, ReplicaError):
                raise ReplicaError(_open_error(self.path, exc, read_only)) from None
            raise
        self.clock = clock
        self.store = store = Store(conn, clock)
        if not read_only and store.get_meta("replica_id") is None:
            with store.transaction():
                conn.execute("INSERT OR IGNORE INTO replica_meta(key, value) VALUES ('replica_id', ?)",
                             (json.dumps(uuid.uuid4().hex),))
        self.hot = HotCache(hot_dir if hot_dir is not None else self.path.parent / "hot-cache", secret=key)
        # The replica's parts, each over the one store, each handed the parts it works with.
        records = self.records = Records(store)
        revisions = Revisions(store)
        quarantine = Quarantine(store)
        self.history = SyncHistory(store)
        self.tasks = TaskReads(store)
        self.reads = Reads(store, records, revisions, self.hot, self.tasks, self.history, quarantine)
        self.lists = Lists(store)
        self.search = Search(store)
        self.reports = Reports(store, revisions, self.hot)
        self.conflicts = Conflicts(store)
        self.outbox = Outbox(store, self.conflicts)
        self.refetch = Refetch(store)
        self.writes = LocalWrites(store, records, revisions, self.outbox, self.conflicts, self.reads.me)
        self.rejected = RejectedOps(store, records, revisions, self.outbox, self.refetch)
        self.server_apply = ServerApply(store, revisions, quarantine)
        self.results = PushResults(store, self.outbox, self.conflicts, self.refetch, self.server_apply)
        self.saves = SaveQueue(self.path, key, clock=clock)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.saves.close()
        with contextlib.suppress(Exception):
            self.conn.close()
        self.hot.close()
        while self._closers:
            self._closers.pop()()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, after the connection is closed (e.g. to release a file lock)."""
        self._closers.append(callback)

    @property
    def encrypted(self) -> bool:
        return self._key is not None

    def export_file(self, destination: str | Path, *, overwrite: bool = False) -> Any:
        """A text stream for an export to ``destination``; see ``cache.exports.export_file``
        (in progress, the rows are sealed in this replica's directory, never in plaintext)."""
        return export_file(self.path.parent, Path(destination), overwrite=overwrite)

    def export_names(self) -> ExportNames:
        """The names an export puts beside its ids (``cache.export_names``), for one export."""
        return ExportNames(self.store)

    def reopen(self, **options: Any) -> Replica:
        """Another connection to this replica (same key and hot cache), e.g. for a worker thread;
        ``options`` override this one's (``durable``, ``busy_timeout``, ``cache_mb``, ...); the
        clock is this one's."""
        return Replica(self.path, self.hot.directory, key=self._key, clock=self.clock, **{**self._options, **options})

    def checkpoint(self) -> None:
        """Copy the WAL back into the database file without waiting for readers (after a sync)."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Run the block in one write transaction (nested blocks join the outer one); raises
        ReplicaBusy when another process holds the write lock past the busy timeout."""
        return self.store.transaction()

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` in replica_meta, or ``default``."""
        return self.store.get_meta(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Store ``value`` (as JSON) under ``key`` in replica_meta, in the caller's transaction
        if there is one, else in one of its own."""
        self.store.set_meta(key, value)

    @property
    def cursor(self) -> str | None:
        """The change-feed cursor this replica's data corresponds to (None: never synced)."""
        cursor = self.get_meta("cursor")
        return cursor if isinstance(cursor, str) else None

    @property
    def epoch(self) -> int:
        """Bumped when the whole replica is replaced; part of every hot-cache stamp."""
        return int(self.get_meta("epoch", 0))

    # ------------------------------------------------------------------ records

    def get(self, entity_name: str, record_id: str) -> dict[str, Any] | None:
        """One record from the replica by id, or None."""
        return self.records.get(entity_name, record_id)

    def count(self, entity_name: str) -> int:
        return self.records.count(entity_name)

    def counts(self) -> dict[str, int]:
        return self.records.counts()
