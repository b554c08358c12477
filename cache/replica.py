"""The replica: one SQLite file holding the user's slice of the CRM, its outbox and its conflicts.

A ``Replica`` is one connection; open one per thread (the app's screens use one, the sync
worker its own). Every write goes through ``transaction()``, which takes SQLite's write lock up
front (BEGIN IMMEDIATE) so a reader never sees half a change.

Given a ``key``, the file (and its WAL) is SQLCipher-encrypted, and so are the hot cache and the
save journal beside it. Where the key comes from is not this layer's business:
``crm_tui.replicas.open_replica`` finds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from cache.errors import ReplicaBusy, ReplicaError, ReplicaKeyError, ReplicaNotEncrypted
from cache.exports import export_file
from cache.history import SyncHistory
from cache.hot import HotCache
from cache.lists import Lists
from cache.local_writes import LocalWrites
from cache.outbox import Outbox
from cache.pull import PullApplier
from cache.reads import Reads
from cache.reports import Reports
from cache.save_queue import SaveQueue
from cache.schema import check_version, migrate
from cache.search import Search
from cache.sqlite import connect_keyed, has_plaintext_header, sqlite3
from cache.tasks import TaskReads
from crm_tui.core.codec import decode_value, encode_value
from crm_tui.core.domain import ENTITIES, Entity, entity, utcnow


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
        self._lock = threading.RLock()
        self._depth = 0
        if not read_only and self.get_meta("replica_id") is None:
            with self.transaction():
                self.conn.execute("INSERT OR IGNORE INTO replica_meta(key, value) VALUES ('replica_id', ?)",
                                  (json.dumps(uuid.uuid4().hex),))
        self.hot = HotCache(hot_dir if hot_dir is not None else self.path.parent / "hot-cache", secret=key)
        # The replica's parts, each over this one connection.
        self.reads = Reads(self)
        self.lists = Lists(self)
        self.tasks = TaskReads(self)
        self.search = Search(self)
        self.writes = LocalWrites(self)
        self.outbox = Outbox(self)
        self.pull = PullApplier(self)
        self.history = SyncHistory(self)
        self.saves = SaveQueue(self.path, key, clock=clock)
        self.reports = Reports(self)

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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction (nested blocks join the outer one)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise ReplicaBusy(
                    "the replica is busy: another process (the app or a sync) is writing to it; try again in a moment"
                ) from exc
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM replica_meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        """Store ``value`` (as JSON) under ``key`` in replica_meta, in the caller's transaction
        if there is one, else in one of its own."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO replica_meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    @property
    def cursor(self) -> str | None:
        """The change-feed cursor this replica's data corresponds to (None: never synced)."""
        cursor = self.get_meta("cursor")
        return cursor if isinstance(cursor, str) else None

    @property
    def epoch(self) -> int:
        """Bumped when the whole replica is replaced; part of every hot-cache stamp."""
        return int(self.get_meta("epoch", 0))

    # ------------------------------------------------------------------ rows

    def decode_row(self, ent: Entity, row: sqlite3.Row | tuple[Any, ...], names: list[str]) -> dict[str, Any]:
        """A stored row as a wire record (tags parsed, booleans as bool)."""
        rec = dict(zip(names, row, strict=False))
        for f in ent.fields:
            if f.kind in ("tags", "bool") and rec.get(f.name) is not None:
                rec[f.name] = decode_value(f.kind, rec[f.name])
        rec.pop("_gen", None)
        return rec

    def get(self, entity_name: str, record_id: str) -> dict[str, Any] | None:
        """One record from the replica by id, or None."""
        ent = entity(entity_name)
        cur = self.conn.execute(f"SELECT * FROM {ent.table} WHERE id = ?", (record_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return self.decode_row(ent, row, [d[0] for d in cur.description])

    def count(self, entity_name: str) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {entity(entity_name).table}").fetchone()[0])

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in ENTITIES}

    def bump_customer_revs(self, customer_ids: set[str] | list[str]) -> None:
        """Mark these customers' assembled views stale (call inside the changing transaction)."""
        if not customer_ids:
            return
        self.conn.executemany(
            "INSERT INTO customer_rev(customer_id, rev) VALUES (?, 1) "
            "ON CONFLICT(customer_id) DO UPDATE SET rev = rev + 1",
            [(c,) for c in customer_ids if c],
        )
        self._count_up("rev")

    def insert_record(self, ent: Entity, record_id: str, values: dict[str, Any], *, version: int = 0) -> None:
        """Insert a new row from wire ``values`` (inside the caller's transaction), stamped with
        the current sync generation, so a replacement sync under way keeps it (``_gen``)."""
        kinds = {f.name: f.kind for f in ent.fields}
        names = ["id", *values, "version", "_gen"]
        self.conn.execute(
            f"INSERT INTO {ent.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [record_id, *(encode_value(kinds[k], v) for k, v in values.items()), version, self.pull.generation()])

    def set_fields(self, ent: Entity, record_id: str, values: dict[str, Any]) -> None:
        """Write wire values into a stored record's columns (inside the caller's transaction)."""
        if not values:
            return
        kinds = {f.name: f.kind for f in ent.fields}
        sets = ", ".join(f"{k} = ?" for k in values)
        self.conn.execute(f"UPDATE {ent.table} SET {sets} WHERE id = ?",
                          [*(encode_value(kinds[k], v) for k, v in values.items()), record_id])

    def touch(self, ent: Entity, record: dict[str, Any]) -> None:
        """Mark the assembled views built from ``record`` stale: its customer's, or every view
        naming users and territories (inside the changing transaction)."""
        if ent.anchor is None:
            self.bump_directory_rev()
        elif ent.anchor == "self" and record.get("id"):
            self.bump_customer_revs([record["id"]])
        elif ent.anchor == "customer_id" and record.get("customer_id"):
            self.bump_customer_revs([record["customer_id"]])

    def _count_up(self, key: str) -> None:
        """Add one to the counter ``key`` in replica_meta (1 if new), in the caller's transaction."""
        self.conn.execute(
            "INSERT INTO replica_meta(key, value) VALUES (?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1", (key,))

    def bump_epoch(self) -> None:
        """Retire every assembled view at once (call inside the changing transaction)."""
        self._count_up("epoch")

    def bump_directory_rev(self) -> None:
        """Users or territories changed: every assembled view naming an owner or a territory is
        stale (call inside the changing transaction)."""
        self._count_up("dir_rev")

    _STAMP_SQL = (
        "SELECT (SELECT value FROM replica_meta WHERE key = 'replica_id'),"
        " (SELECT CAST(value AS INTEGER) FROM replica_meta WHERE key = 'epoch'),"
        " (SELECT CAST(value AS INTEGER) FROM replica_meta WHERE key = 'dir_rev'),"
    )

    def customer_stamp(self, customer_id: str) -> tuple[Any, ...]:
        """What a customer's assembled views were built from: this replica file (a new one never
        inherits an old one's cache entries), its epoch, the user/territory directory, and the
        customer's own revision."""
        return tuple(self.conn.execute(
            self._STAMP_SQL + " (SELECT rev FROM customer_rev WHERE customer_id = ?)", (customer_id,)
        ).fetchone())

    def replica_stamp(self) -> tuple[Any, ...]:
        """The same for views built from the whole replica (reports, the pipeline)."""
        return tuple(self.conn.execute(
            self._STAMP_SQL + " (SELECT CAST(value AS INTEGER) FROM replica_meta WHERE key = 'rev')"
        ).fetchone())
