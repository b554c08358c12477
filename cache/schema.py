"""The replica's schema: tables built from the domain model, indexes for every lookup the screens
make, FTS5 search tables kept current by triggers, and numbered migrations.

The schema version lives in ``PRAGMA user_version``; ``migrate`` brings any older replica up to
date in one transaction and refuses a replica written by a newer crm-tui.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlite_utils

from cache.errors import ReplicaError, SchemaTooNew
from cache.sqlite import sqlite3
from crm_tui.core.domain import ACTIVE_TICKET_STATUSES, ENTITIES, Entity

SCHEMA_VERSION = 8

# Entities added after the first schema, by the replica version that brought each: version 1
# creates the others; the migration to a listed version creates its entity.
LATER_ENTITIES: dict[str, int] = {"task": 3, "order_event": 4}


def phone_key_sql(column: str) -> str:
    """SQL for the digits of a phone number: what exact phone lookups compare and index."""
    expr = column
    for ch in (" ", "-", "(", ")", "+", ".", "/"):
        expr = f"replace({expr}, '{ch}', '')"
    return expr


def entity_columns(ent: Entity) -> dict[str, type]:
    cols: dict[str, type] = {"id": str}
    for f in ent.fields:
        cols[f.name] = int if f.sql_type == "INTEGER" else str
    cols["version"] = int
    cols["_gen"] = int
    return cols


# Indexes for the screens' lookups: (table, name, SQL expression list).
INDEXES: list[tuple[str, str, str]] = [
    ("customers", "ix_customers_name", "name COLLATE NOCASE"),
    ("customers", "ix_customers_email", "email COLLATE NOCASE"),
    ("customers", "ix_customers_phone", phone_key_sql("phone")),
    ("customers", "ix_customers_territory", "territory"),
    ("customers", "ix_customers_owner", "owner_id"),
    ("contacts", "ix_contacts_customer", "customer_id"),
    ("contacts", "ix_contacts_name", "name COLLATE NOCASE"),
    ("contacts", "ix_contacts_email", "email COLLATE NOCASE"),
    ("contacts", "ix_contacts_phone", phone_key_sql("phone")),
    ("orders", "ix_orders_customer_date", "customer_id, order_date DESC"),
    ("orders", "ix_orders_date", "order_date"),
    ("orders", "ix_orders_number", "number"),
    ("tickets", "ix_tickets_customer", "customer_id, created_at DESC"),
    ("tickets", "ix_tickets_status_sla", "status, sla_due"),
    ("tickets", "ix_tickets_sla", "sla_due, id"),  # every ticket, whatever its status, in queue order
    ("tickets", "ix_tickets_assignee_sla", "assignee_id, status, sla_due"),
    ("tickets", "ix_tickets_team_sla", "team, status, sla_due"),
    ("tickets", "ix_tickets_number", "number"),
    ("deals", "ix_deals_customer", "customer_id"),
    ("deals", "ix_deals_stage", "stage, close_date"),
    ("deals", "ix_deals_owner", "owner_id, stage"),
    ("activities", "ix_activities_customer", "customer_id, occurred_at DESC"),
    ("activities", "ix_activities_ticket", "ticket_id, occurred_at"),
    ("activities", "ix_activities_deal", "deal_id, occurred_at"),
    ("order_events", "ix_order_events_order", "order_id, occurred_at"),
    # The Today view and reminders: open tasks by due time, all of them or one owner's.
    ("tasks", "ix_tasks_status_due", "status, due_at, id"),
    ("tasks", "ix_tasks_owner_due", "owner_id, status, due_at, id"),
    ("tasks", "ix_tasks_customer", "customer_id, due_at"),
]

# Full-text search: unicode61 word prefixes (with prefix indexes so 1-3 letter prefixes stay
# cheap) and a trigram index over email and phone digits for substring lookups.
FTS_COLUMNS = {
    "customers": ("name", "company", "email", "phone", "city"),
    "contacts": ("name", "title", "email", "phone"),
}
# Word indexes: the searchable tables', and the tickets' (an order's detail finds the tickets that
# mention its number through it, never by scanning ticket text).
WORD_COLUMNS = {**FTS_COLUMNS, "tickets": ("subject", "description")}


def _tri_key(prefix: str) -> str:
    return f"lower(coalesce({prefix}email, '')) || ' ' || coalesce({phone_key_sql(prefix + 'phone')}, '')"


def search_tables_sql(table: str) -> list[str]:
    cols = FTS_COLUMNS[table]
    return [
        f"CREATE VIRTUAL TABLE {table}_fts USING fts5({', '.join(cols)}, content='{table}', "
        "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2', prefix='1 2 3')",
        f"CREATE VIRTUAL TABLE {table}_tri USING fts5(key, tokenize='trigram', columnsize=0)",
    ]


def word_table_sql(table: str) -> str:
    """The word index of a table that has no fragment index (tickets)."""
    return (f"CREATE VIRTUAL TABLE IF NOT EXISTS {table}_fts USING fts5({', '.join(WORD_COLUMNS[table])}, "
            f"content='{table}', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')")


def fts_triggers_sql(table: str) -> list[str]:
    """Triggers that keep a table's word index current on every insert, update, delete."""
    cols = WORD_COLUMNS[table]
    fts = f"{table}_fts"
    col_list = ", ".join(cols)
    new_vals = ", ".join(f"new.{c}" for c in cols)
    old_vals = ", ".join(f"old.{c}" for c in cols)
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in cols)
    return [
        f"""CREATE TRIGGER {table}_fts_ai AFTER INSERT ON {table} BEGIN
              INSERT INTO {fts}(rowid, {col_list}) VALUES (new.rowid, {new_vals});
            END""",
        f"""CREATE TRIGGER {table}_fts_ad AFTER DELETE ON {table} BEGIN
              INSERT INTO {fts}({fts}, rowid, {col_list}) VALUES ('delete', old.rowid, {old_vals});
            END""",
        f"""CREATE TRIGGER {table}_fts_au AFTER UPDATE ON {table} WHEN {changed} BEGIN
              INSERT INTO {fts}({fts}, rowid, {col_list}) VALUES ('delete', old.rowid, {old_vals});
              INSERT INTO {fts}(rowid, {col_list}) VALUES (new.rowid, {new_vals});
            END""",
    ]


def tri_triggers_sql(table: str) -> list[str]:
    """Triggers that keep a table's email/phone fragment index current. Its key is only the email
    and the phone digits, so other edits (a city, a name) leave it alone: re-indexing trigrams
    on every change was half the cost of an incremental sync."""
    tri = f"{table}_tri"
    return [
        f"""CREATE TRIGGER {table}_tri_ai AFTER INSERT ON {table} BEGIN
              INSERT INTO {tri}(rowid, key) VALUES (new.rowid, {_tri_key('new.')});
            END""",
        f"""CREATE TRIGGER {table}_tri_ad AFTER DELETE ON {table} BEGIN
              DELETE FROM {tri} WHERE rowid = old.rowid;
            END""",
        f"""CREATE TRIGGER {table}_tri_au AFTER UPDATE ON {table}
              WHEN old.email IS NOT new.email OR old.phone IS NOT new.phone BEGIN
              UPDATE {tri} SET key = {_tri_key('new.')} WHERE rowid = new.rowid;
            END""",
    ]


def search_triggers_sql(table: str) -> list[str]:
    return fts_triggers_sql(table) + tri_triggers_sql(table)


_TRIGGER_SUFFIXES = ("search_ai", "search_ad", "search_au", "fts_ai", "fts_ad", "fts_au", "tri_ai", "tri_ad", "tri_au")


# The ticket queue's default view: active tickets by SLA due. reads.py's queries use the same
# condition word for word, so SQLite can use these partial indexes.
ACTIVE_TICKETS_SQL = "status IN (" + ", ".join(f"'{s}'" for s in ACTIVE_TICKET_STATUSES) + ")"
_ACTIVE = f"WHERE {ACTIVE_TICKETS_SQL}"
ACTIVE_QUEUE_COLUMNS = "sla_due, id, status, number, subject, team, assignee_id, customer_id"
PARTIAL_INDEXES: list[tuple[str, str, str]] = [
    # Covering for the whole active queue: its count, a `/` filter's count (number, subject, team,
    # assignee, customer) and any block of it are read from this index alone, never from the
    # table's rows (a filtered count of 250k active tickets: 520 -> 165 ms of CPU, plaintext).
    ("tickets", "ix_tickets_active_sla", f"CREATE INDEX ix_tickets_active_sla ON tickets({ACTIVE_QUEUE_COLUMNS}) {_ACTIVE}"),
    ("tickets", "ix_tickets_active_assignee",
     f"CREATE INDEX ix_tickets_active_assignee ON tickets(assignee_id, sla_due, id) {_ACTIVE}"),
    ("tickets", "ix_tickets_active_team", f"CREATE INDEX ix_tickets_active_team ON tickets(team, sla_due, id) {_ACTIVE}"),
]


def secondary_indexes(table: str | None = None) -> list[tuple[str, str, str]]:
    """(table, index name, CREATE INDEX statement) for every secondary index (of one table)."""
    out = [(t, name, f"CREATE INDEX {name} ON {t}({expr})") for t, name, expr in INDEXES]
    out += PARTIAL_INDEXES
    return [i for i in out if table is None or i[0] == table]


def drop_derived(conn: sqlite3.Connection) -> None:
    """Drop secondary indexes and search triggers before a bulk load into empty tables.

    Maintaining them row by row costs most of a bootstrap's time; ``build_derived`` and
    ``build_fragments`` make them again, in one pass per table, when the table is complete."""
    for _, name, _sql in secondary_indexes():
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    for table in WORD_COLUMNS:
        for suffix in _TRIGGER_SUFFIXES:
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}")


def build_derived(conn: sqlite3.Connection, table: str) -> None:
    """(Re)build a table's secondary indexes and word index, and restore their triggers: what
    lookups and search need. The email/phone fragment index is ``build_fragments``'s."""
    for _, _name, sql in secondary_indexes(table):
        conn.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
    if table in WORD_COLUMNS:
        conn.execute(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')")
        for suffix in ("fts_ai", "fts_ad", "fts_au", "search_ai", "search_ad", "search_au"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}")
        for sql in fts_triggers_sql(table):
            conn.execute(sql)


def build_fragments(conn: sqlite3.Connection, table: str) -> None:
    """(Re)build a table's email/phone fragment (trigram) index and restore its triggers."""
    conn.execute(f"DELETE FROM {table}_tri")
    conn.execute(f"INSERT INTO {table}_tri(rowid, key) SELECT rowid, {_tri_key('')} FROM {table}")
    for suffix in ("tri_ai", "tri_ad", "tri_au"):
        conn.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}")
    for sql in tri_triggers_sql(table):
        conn.execute(sql)


def _create_entity_table(db: sqlite_utils.Database, ent: Entity) -> None:
    db[ent.table].create(  # type: ignore[union-attr]
        entity_columns(ent),
        pk="id",
        not_null={"id", "version", "_gen"},
        defaults={"version": 0, "_gen": 0},
    )


def _create_v1(db: sqlite_utils.Database) -> None:
    first = [ent for ent in ENTITIES.values() if ent.name not in LATER_ENTITIES]
    for ent in first:
        _create_entity_table(db, ent)
    tables = {ent.table for ent in first}
    for table, _name, sql in secondary_indexes():
        if table in tables:
            db.execute(sql)
    for table in FTS_COLUMNS:
        for sql in search_tables_sql(table) + search_triggers_sql(table):
            db.execute(sql)
    db.executescript(
        """
        CREATE TABLE replica_meta (key TEXT PRIMARY KEY, value TEXT);
        -- Bumped in the same transaction as any change to a customer or what hangs off it:
        -- the hot cache compares it to know, exactly, when an assembled view is stale.
        CREATE TABLE customer_rev (customer_id TEXT PRIMARY KEY, rev INTEGER NOT NULL);
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            op_id TEXT NOT NULL UNIQUE,
            op TEXT NOT NULL,
            entity TEXT NOT NULL,
            record_id TEXT NOT NULL,
            base_version INTEGER,
            fields TEXT NOT NULL DEFAULT '{}',
            base_values TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL DEFAULT 'pending',
            sent_count INTEGER NOT NULL DEFAULT 0,
            last_sent_at TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX ix_outbox_record ON outbox(entity, record_id, state);
        CREATE INDEX ix_outbox_state ON outbox(state, seq);
        CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT NOT NULL,
            record_id TEXT NOT NULL,
            op_id TEXT,
            server_version INTEGER,
            kind TEXT NOT NULL DEFAULT 'fields',
            fields TEXT NOT NULL,
            created_at TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE INDEX ix_conflicts_record ON conflicts(entity, record_id, resolved_at);
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT,
            record_id TEXT,
            error TEXT NOT NULL,
            raw TEXT,
            seen_at TEXT NOT NULL
        );
        CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            ok INTEGER,
            pushed INTEGER NOT NULL DEFAULT 0,
            pulled INTEGER NOT NULL DEFAULT 0,
            conflicts INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        """
    )


def _split_search_triggers_v2(db: sqlite_utils.Database) -> None:
    """v2: separate word-index and fragment-index triggers (the fragment index is re-indexed only
    when an email or phone changes)."""
    in_bulk = db.conn.execute("SELECT 1 FROM replica_meta WHERE key = 'bulk_tables'").fetchone()
    for table in FTS_COLUMNS:
        for suffix in _TRIGGER_SUFFIXES:
            db.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}")
        if not in_bulk:  # during a bulk load the triggers come back with the indexes
            for sql in search_triggers_sql(table):
                db.execute(sql)


def _add_entity(name: str) -> Callable[[sqlite_utils.Database], None]:
    """A migration that adds the table of a new entity (empty: its records arrive by the feed)."""

    def upgrade(db: sqlite_utils.Database) -> None:
        ent = ENTITIES[name]
        _create_entity_table(db, ent)
        row = db.conn.execute("SELECT value FROM replica_meta WHERE key = 'bulk_tables'").fetchone()
        if row is not None:
            # A bulk load is under way: the new table's indexes come with the others'.
            bulk = json.loads(row[0])
            db.conn.execute("UPDATE replica_meta SET value = ? WHERE key = 'bulk_tables'",
                            (json.dumps([ent.table, *bulk]),))
        else:
            for _table, _name, sql in secondary_indexes(ent.table):
                db.execute(sql)
        row = db.conn.execute("SELECT value FROM replica_meta WHERE key = 'complete_entities'").fetchone()
        if row is not None:
            complete = json.loads(row[0])
            before = [e for e in ENTITIES if e not in LATER_ENTITIES or LATER_ENTITIES[e] < LATER_ENTITIES[name]]
            if all(e in complete for e in before):
                # A replica that had everything has every one of the new records too: none yet.
                db.conn.execute("UPDATE replica_meta SET value = ? WHERE key = 'complete_entities'",
                                (json.dumps([*complete, name]),))

    return upgrade


def _orders_calls_and_outcomes_v4(db: sqlite_utils.Database) -> None:
    """v4: order history and requests (a table), call outcomes and lost reasons (columns), and a
    word index over ticket subjects and descriptions (tickets that mention an order). A replica
    made new already has the table and columns: its first migration builds from today's domain."""
    conn = db.conn
    ent = ENTITIES["order_event"]
    if not db[ent.table].exists():
        _add_entity(ent.name)(db)
    for ent_name, fields in (("deal", ("lost_reason",)), ("activity", ("outcome", "duration_min", "contact_id"))):
        table = ENTITIES[ent_name].table
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for field in fields:
            if field not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {field} {ENTITIES[ent_name].by_name[field].sql_type}")
    conn.execute(word_table_sql("tickets"))
    row = conn.execute("SELECT value FROM replica_meta WHERE key = 'bulk_tables'").fetchone()
    bulk: list[str] = json.loads(row[0]) if row else []
    # In a bulk load, tables still loading get their indexes when they are complete.
    if "tickets" not in bulk:
        build_derived(conn, "tickets")
    if not bulk:
        build_derived(conn, ent.table)


def _refetch_table_v5(db: sqlite_utils.Database) -> None:
    """v5: the records the next sync must fetch again are a table (a set of (entity, id),
    oldest request first), no longer a JSON list in replica_meta['refetch']; requests waiting
    in the list move into it, in order."""
    conn = db.conn
    conn.execute("CREATE TABLE IF NOT EXISTS refetch (entity TEXT NOT NULL, record_id TEXT NOT NULL,"
                 " PRIMARY KEY (entity, record_id))")
    row = conn.execute("SELECT value FROM replica_meta WHERE key = 'refetch'").fetchone()
    if row is not None:
        wanted = json.loads(row[0]) or []
        conn.executemany("INSERT OR IGNORE INTO refetch(entity, record_id) VALUES (?, ?)",
                         [(e, r) for e, r in wanted])
        conn.execute("DELETE FROM replica_meta WHERE key = 'refetch'")


def _covering_active_queue_v6(db: sqlite_utils.Database) -> None:
    """v6: the active queue's index covers what the queue counts, filters and walks (it held only
    (sla_due, id): every filtered count read each active ticket's row)."""
    conn = db.conn
    row = conn.execute("SELECT value FROM replica_meta WHERE key = 'bulk_tables'").fetchone()
    if row is not None and "tickets" in json.loads(row[0]):
        return  # tickets are bulk-loading: the index is built, as it is now, when they are complete
    conn.execute("DROP INDEX IF EXISTS ix_tickets_active_sla")
    for _table, name, sql in PARTIAL_INDEXES:
        if name == "ix_tickets_active_sla":
            conn.execute(sql)


def _open_conflicts_index_v7(db: sqlite_utils.Database) -> None:
    """v7: the conflicts waiting for the user have an index of their own, in place of one over
    every conflict (resolved conflicts are kept, and the status line's count after each change
    read every one of them). Every look-up of conflicts asks for open ones only: the count and
    the list in id order (one key, NULL: its entries are in rowid order) and a record's."""
    db.conn.execute("DROP INDEX IF EXISTS ix_conflicts_record")
    db.conn.execute("CREATE INDEX IF NOT EXISTS ix_conflicts_open ON conflicts(resolved_at) "
                    "WHERE resolved_at IS NULL")
    db.conn.execute("CREATE INDEX IF NOT EXISTS ix_conflicts_open_record ON conflicts(entity, record_id, resolved_at) "
                    "WHERE resolved_at IS NULL")


def _every_ticket_index_v8(db: sqlite_utils.Database) -> None:
    """v8: every ticket in queue order (SLA due, then id), for the queue with the status filter
    "any": each block of it sorted the whole table (500k tickets at 1M customers)."""
    conn = db.conn
    row = conn.execute("SELECT value FROM replica_meta WHERE key = 'bulk_tables'").fetchone()
    if row is not None and "tickets" in json.loads(row[0]):
        return  # tickets are bulk-loading: their indexes, this one too, are built when they are complete
    conn.execute("CREATE INDEX IF NOT EXISTS ix_tickets_sla ON tickets(sla_due, id)")


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _create_v1,
    2: _split_search_triggers_v2,
    3: _add_entity("task"),
    4: _orders_calls_and_outcomes_v4,
    5: _refetch_table_v5,
    6: _covering_active_queue_v6,
    7: _open_conflicts_index_v7,
    8: _every_ticket_index_v8,
}


def check_version(conn: sqlite3.Connection) -> int:
    """The replica's schema version, for reading it as it is. Raises SchemaTooNew for a file
    written by a newer crm-tui, ReplicaError for one that needs a migration first."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"this replica has schema version {current}, newer than this crm-tui understands "
            f"({SCHEMA_VERSION}); upgrade crm-tui or use another --data-dir"
        )
    if current < SCHEMA_VERSION:
        raise ReplicaError(f"this replica has the older schema version {current}; open it once with "
                           "`crm-tui` or `crm-tui sync --once` to bring it up to date")
    return current


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the replica's schema to SCHEMA_VERSION; returns the version it started at.

    Raises SchemaTooNew if the file was written by a newer crm-tui.
    """
    conn: sqlite3.Connection = db.conn
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current == SCHEMA_VERSION:
        return current
    if current > SCHEMA_VERSION:
        check_version(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current
