"""Versioned schema migrations, the same list for both backends.

A new database is created at :data:`LATEST` straight from the domain model. An existing one
(``store_info.schema_version``, or version 1 for the key/value ``meta`` of the first release)
runs every migration above its version, in order, in one transaction, when a server process
opens it; concurrent processes wait for the first one (SQLite's write lock, a PostgreSQL advisory
lock) and then find nothing left to do.

**When the domain model gains an entity or a field, add one line here** (docs/architecture.md)::

    Migration(5, "tasks and follow-ups", add_entity("task")),
    Migration(6, "deals remember why they were lost", add_field("deal", "lost_reason")),

``tests/server/test_migrations.py`` upgrades a first-release database to :data:`LATEST` and
checks that its schema is exactly the one a new database gets, so a field added to
``crm_tui/core/domain.py`` without its migration fails the tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from crm_tui.core.domain import ENTITIES, Entity, Field


class SchemaEditor(ABC):
    """What a migration may do to a database; each backend implements it inside the migration's
    transaction."""

    backend: str  # "sqlite" or "postgresql"
    sql_set_version: str  # the statement that records a new schema version

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (backend-specific SQL: check :attr:`backend` first)."""

    @abstractmethod
    def create_entity(self, ent: Entity) -> None:
        """Create an entity's table and its indexes (and on PostgreSQL its partitions)."""

    @abstractmethod
    def add_field(self, ent: Entity, f: Field) -> None:
        """Add a field's column (NULL in existing rows) and any index the field needs."""

    @abstractmethod
    def upgrade_first_release(self) -> None:
        """Version 1 -> 2 (SQLite only: PostgreSQL databases start at version 2)."""


Upgrade = Callable[[SchemaEditor], None]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int  # the schema version after this migration
    title: str
    upgrade: Upgrade


def add_entity(name: str) -> Upgrade:
    """A migration step that creates the table (and indexes) of the domain entity ``name``."""

    def run(db: SchemaEditor) -> None:
        db.create_entity(ENTITIES[name])

    return run


def add_field(entity: str, field: str) -> Upgrade:
    """A migration step that adds the domain field ``entity.field`` to an existing table."""

    def run(db: SchemaEditor) -> None:
        ent = ENTITIES[entity]
        db.add_field(ent, ent.by_name[field])

    return run


def _first_release(db: SchemaEditor) -> None:
    db.upgrade_first_release()


def _token_expiry_and_devices(db: SchemaEditor) -> None:
    from crm_server.store.tokens import upgrade_tokens

    upgrade_tokens(db)


def _gateway_on_postgresql(db: SchemaEditor) -> None:
    if db.backend == "postgresql":
        from crm_server.store.gateway_pg import PG_GATEWAY_DDL

        for stmt in PG_GATEWAY_DDL:
            db.execute(stmt)


def _orders_calls_and_outcomes(db: SchemaEditor) -> None:
    add_entity("order_event")(db)
    add_field("deal", "lost_reason")(db)
    for name in ("outcome", "duration_min", "contact_id"):
        add_field("activity", name)(db)


def _change_log_carries_dates(db: SchemaEditor) -> None:
    """PostgreSQL: the change log's upsert rows carry the partition key of their record (orders:
    order_date), filled in for the rows already there, so a feed page reads an order from its
    month's partition only. SQLite has no partitions: nothing to do."""
    if db.backend != "postgresql":
        return
    from crm_server.store.schema import PARTITIONED

    db.execute("ALTER TABLE changes ADD COLUMN IF NOT EXISTS part_date date")
    for name, key in PARTITIONED.items():
        db.execute(f"UPDATE changes AS c SET part_date = r.{key} FROM {ENTITIES[name].table} AS r"
                   " WHERE c.entity = %s AND c.kind = 'upsert' AND c.record_id = r.id", (name,))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "typed store info; feed by territory; op result times; an index per API filter", _first_release),
    Migration(3, "tokens expire; devices, and the tokens used on each (remote wipe)", _token_expiry_and_devices),
    Migration(4, "the gateway's state on PostgreSQL too (SQLite has had it since version 2)", _gateway_on_postgresql),
    Migration(5, "tasks and follow-ups", add_entity("task")),
    Migration(6, "order history and requests; call outcomes; why deals were lost", _orders_calls_and_outcomes),
    Migration(7, "PostgreSQL: the change log carries each order's date (feed pages read its month only)",
              _change_log_carries_dates),
)

LATEST = MIGRATIONS[-1].version


def pending(version: int, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    """The migrations a database at ``version`` still needs, in order. Raises ValueError for a
    database newer than this server (it must not be opened by older code)."""
    latest = migrations[-1].version
    if version > latest:
        raise ValueError(f"the database has schema version {version}; this server knows up to {latest}: upgrade crm-server")
    return [m for m in migrations if m.version > version]


def upgrade(version: int, editor: SchemaEditor, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Run the migrations a database at ``version`` still needs, recording each new version in
    ``store_info`` (inside the caller's transaction). Raises ValueError for a newer database."""
    for migration in pending(version, migrations):
        migration.upgrade(editor)
        editor.execute(editor.sql_set_version, (migration.version,))


def check_sequence(migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Raise AssertionError unless versions go 2, 3, 4, ... without gaps or repeats."""
    versions = [m.version for m in migrations]
    assert versions == list(range(2, 2 + len(versions))), f"migration versions must be 2, 3, ...: {versions}"


check_sequence()
