"""The SQLite schema: entity tables from the domain model, typed store info, and migrations.

Entity tables are clustered by id (WITHOUT ROWID) because every read pages through them by id.
``store_info`` is one typed row (schema version, epoch, cursor key, horizon, counters): the
first release kept these in a key/value ``meta`` table of mixed types, which migration 2 turns
into this row.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from crm_server.store import tokens
from crm_server.store.base import StoreError
from crm_server.store.gateway_sqlite import GATEWAY_DDL
from crm_server.store.migrations import MIGRATIONS, Migration, SchemaEditor, upgrade
from crm_server.store.schema import IndexSpec, all_entity_indexes, entity_indexes, q
from crm_tui.core.domain import ENTITIES, Entity, Field


def entity_table_sql(ent: Entity) -> str:
    """The CREATE TABLE statement of an entity."""
    cols = ['"id" TEXT PRIMARY KEY NOT NULL']
    cols += [f"{q(f.name)} {f.sql_type}" for f in ent.fields]
    if ent.anchor == "customer_id":
        cols.append('"territory" TEXT')
    cols += ['"version" INTEGER NOT NULL', '"field_versions" TEXT']
    return f"CREATE TABLE IF NOT EXISTS {q(ent.table)} ({', '.join(cols)}) WITHOUT ROWID"


BASE_TABLES = [
    # kind: upsert | delete (one row per record: its latest change) | move (append-only)
    """CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY,
        entity TEXT NOT NULL,
        record_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        territory TEXT,
        old_territory TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS op_results (
        op_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        entity TEXT NOT NULL,
        record_id TEXT NOT NULL,
        result TEXT NOT NULL,
        at INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS tokens (
        hash TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at INTEGER,
        lifetime INTEGER,
        revoked_device TEXT
    ) WITHOUT ROWID""",
    # Each write transaction (by its last seq): when it committed, for `compact --keep-days` and
    # the op-result window, and a random nonce that cursors carry, so a database restored from an
    # older copy is detected.
    "CREATE TABLE IF NOT EXISTS commits (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, nonce TEXT)",
    """CREATE TABLE IF NOT EXISTS store_info (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        schema_version INTEGER NOT NULL,
        epoch TEXT NOT NULL,
        cursor_key BLOB NOT NULL,
        horizon INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        commits_purged_through INTEGER NOT NULL,
        ticket_number INTEGER NOT NULL,
        order_number INTEGER NOT NULL
    )""",
]

BASE_INDEXES = [
    # One upsert or delete row per record: tombstone look-ups, and no id is ever taken twice.
    IndexSpec("changes_record", "changes", ("entity", "record_id"), where="kind <> 'move'", unique=True),
    # A rep's feed reads each of their territories as one range (and global records: NULL).
    IndexSpec("changes_territory", "changes", ("territory", "seq")),
    IndexSpec("changes_moves", "changes", ("old_territory", "seq"), where="kind = 'move'"),
    IndexSpec("op_results_at", "op_results", ("at",)),
    IndexSpec("tokens_user", "tokens", ("user_id",)),
    IndexSpec("commits_at", "commits", ("at",)),
]


def new_identity() -> tuple[str, bytes]:
    """A fresh epoch (names the database in cursors) and cursor key (AES-256-GCM)."""
    return secrets.token_hex(8), secrets.token_bytes(32)


class SQLiteSchemaEditor(SchemaEditor):
    """Runs migrations on one connection inside the opening transaction."""

    backend = "sqlite"
    sql_set_version = "UPDATE store_info SET schema_version = ?"

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def create_entity(self, ent: Entity) -> None:
        self.conn.execute(entity_table_sql(ent))
        for ix in entity_indexes(ent):
            self.conn.execute(ix.sql())

    def add_field(self, ent: Entity, f: Field) -> None:
        self.conn.execute(f"ALTER TABLE {q(ent.table)} ADD COLUMN {q(f.name)} {f.sql_type}")
        for ix in entity_indexes(ent):
            if f.name in ix.columns:  # the field's own indexes (others may need fields added later)
                self.conn.execute(ix.sql())

    def upgrade_first_release(self) -> None:
        conn = self.conn
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        epoch, key = meta["epoch"], secrets.token_bytes(32)  # the epoch stays: it names this database
        for stmt in BASE_TABLES:
            conn.execute(stmt)
        conn.execute(
            "INSERT INTO store_info VALUES (1, 1, ?, ?, ?, ?, 0, ?, ?)",
            (epoch, key, int(meta["horizon"]), int(meta["seq"]), int(meta["ticket_number"]), int(meta["order_number"])),
        )
        conn.execute("DROP TABLE meta")
        for stmt in GATEWAY_DDL:  # databases that never served as a gateway have none yet
            conn.execute(stmt)
        # Results stored before now are kept for a whole retention window from the upgrade on.
        conn.execute("ALTER TABLE op_results ADD COLUMN at INTEGER NOT NULL DEFAULT 0")
        conn.execute("UPDATE op_results SET at = ?", (int(time.time()),))
        if "nonce" not in {row[1] for row in conn.execute("PRAGMA table_info(commits)")}:
            conn.execute("ALTER TABLE commits ADD COLUMN nonce TEXT")
        # Replaced: tombstones by the unique changes_record; email lists by (email, id).
        for name in ("changes_tombstones", "customers_email", "contacts_email"):
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        # The first release kept one row per record too; should a record have two, the older goes.
        conn.execute(
            "DELETE FROM changes WHERE kind <> 'move' AND seq NOT IN"
            " (SELECT max(seq) FROM changes WHERE kind <> 'move' GROUP BY entity, record_id)"
        )
        for ix in BASE_INDEXES + all_entity_indexes():
            # Entities (tasks) and fields (outcomes) that later migrations add get their indexes there.
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({q(ix.table)})")}
            if set(ix.columns) <= columns:
                conn.execute(ix.sql())


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The schema version of an open database; None when it is empty."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "store_info" in tables:
        return int(conn.execute("SELECT schema_version FROM store_info").fetchone()[0])
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 1
    if tables:
        raise StoreError("this file holds tables that are not a crm-server database")
    return None


def create_or_upgrade(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Create the schema in an empty database or migrate an older one, inside the caller's write
    transaction. Returns the version the database had (0 for a new one)."""
    version = schema_version(conn)
    if version is None:
        for ent in ENTITIES.values():
            conn.execute(entity_table_sql(ent))
        for stmt in BASE_TABLES + GATEWAY_DDL + tokens.SQLITE_DDL:
            conn.execute(stmt)
        for ix in BASE_INDEXES + all_entity_indexes():
            conn.execute(ix.sql())
        epoch, key = new_identity()
        conn.execute("INSERT INTO store_info VALUES (1, ?, ?, ?, 0, 0, 0, 0, 0)", (migrations[-1].version, epoch, key))
        return 0
    try:
        upgrade(version, SQLiteSchemaEditor(conn), migrations)
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    return version


def json_row_expr(ent: Entity) -> str:
    """An SQL expression building the JSON array of a row in wire order, inside SQLite.

    Booleans become true/false and tag lists are embedded as arrays, so the rows need no work in
    Python before they go on the wire.
    """
    parts = []
    for c in ent.columns:
        f = ent.by_name.get(c)
        if f is not None and f.kind == "bool":
            parts.append(f"CASE {q(c)} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END")
        elif f is not None and f.kind == "tags":
            parts.append(f"json({q(c)})")
        else:
            parts.append(q(c))
    return "json_array(" + ", ".join(parts) + ")"
