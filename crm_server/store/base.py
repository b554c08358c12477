"""The storage interface the server is written against.

Everything above this package (feed, batch, HTTP) speaks only these classes, so a PostgreSQL
backend can follow without touching the protocol. What every backend must guarantee:

* **Commit order is sequence order.** A write transaction takes the commit-sequence counter
  under a lock held until commit (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT value FROM
  meta WHERE key = 'seq' FOR UPDATE`` as the first statement of the transaction). So a reader
  that sees change *n+1* always sees change *n*, and the feed never skips a change.
* **One change row per record** holding its latest change (``upsert`` or ``delete``), whose
  ``seq`` is the record's ``version``; plus append-only ``move`` rows when a customer changes
  territory. Writes through :class:`WriteTx` keep these rows; callers never write them.
* **Read transactions are snapshots**: every read inside one :meth:`Store.read` block sees the
  same committed state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from crm_server.store.gateway_state import GatewayReads, GatewayWrites
from crm_tui.domain import Entity


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as stored: its wire fields, the territory it belongs to, and per-field versions."""

    record: dict[str, Any]  # wire form: id, every field, version
    territory: str | None  # None for global records (territories, users)
    field_versions: dict[str, int] = field(default_factory=dict)  # field -> seq of its last change

    @property
    def version(self) -> int:
        """The sequence number of the record's latest change."""
        return self.record["version"]


class ChangeRow(NamedTuple):
    """One row of the change log, in sequence order (a tuple: the feed scans many of them)."""

    seq: int
    entity: str
    record_id: str
    kind: str  # "upsert", "delete" or "move"
    territory: str | None  # the record's territory at this change (a move: the new one)
    old_territory: str | None = None  # a move: the territory the customer left


@dataclass(frozen=True, slots=True)
class StoredOpResult:
    """The result of an op already applied, kept for idempotent replays."""

    user_id: str
    entity: str
    record_id: str
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What a feed request needs to judge a cursor, read in the same snapshot as the data."""

    epoch: str
    secret: bytes
    seq: int  # the last committed sequence number
    horizon: int  # cursors below this sequence cannot be served (tombstones were purged)


class StoreError(RuntimeError):
    """The database is unusable (corrupt, wrong schema, a bug in a statement)."""


class StoreBusy(StoreError):
    """Another writer held the database for too long; the request may be retried."""


class ReadTx(GatewayReads, ABC):
    """Reads inside one consistent snapshot (and the gateway's reads: store/gateway_state.py)."""

    @abstractmethod
    def meta(self) -> FeedMeta:
        """Epoch, cursor secret, last committed sequence and purge horizon."""

    @abstractmethod
    def commit_fingerprint(self, seq: int) -> str | None:
        """A random token of the write transaction that took sequence ``seq`` (None for 0 or
        unknown). A database restored from an older copy gives the same numbers to different
        transactions, so a cursor carrying this token can tell it is no longer valid."""

    @abstractmethod
    def user_id_for_token(self, token_hash: str) -> str | None:
        """The id of the user a token (given as its sha256 hex digest) belongs to, or None."""

    @abstractmethod
    def get(self, ent: Entity, record_id: str) -> StoredRecord | None:
        """One live record, or None when it does not exist (or was deleted)."""

    @abstractmethod
    def tombstone(self, ent: Entity, record_id: str) -> ChangeRow | None:
        """The delete change row of a record that was deleted (until compaction purges it)."""

    @abstractmethod
    def list_records(
        self,
        ent: Entity,
        *,
        after: str | None,
        limit: int,
        filters: Mapping[str, Any],
        territories: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` wire records in id order after ``after``, matching equality ``filters``.

        ``territories`` None means every territory; otherwise only records of those territories
        (global entities ignore it).
        """

    @abstractmethod
    def count(self, ent: Entity, territories: Sequence[str] | None) -> int:
        """How many live records of ``ent`` are in the given territories (None: all)."""

    @abstractmethod
    def page_json(
        self, ent: Entity, *, territory: str | None, after: str, limit: int
    ) -> tuple[str | None, int, str | None]:
        """A snapshot page: up to ``limit`` records with id > ``after`` in id order.

        ``territory`` None means every record. Returns (rows, count, last id) where rows is the
        JSON text of the rows (each a list in ``ent.columns`` order) joined by commas, without
        the enclosing brackets, or None when there are none.
        """

    @abstractmethod
    def rows_json(self, ent: Entity, ids: Sequence[str]) -> dict[str, str]:
        """Record id -> JSON text of the row (a list in ``ent.columns`` order), for live ids."""

    @abstractmethod
    def changes_after(self, seq: int, limit: int) -> Iterator[ChangeRow]:
        """Up to ``limit`` change rows with a sequence above ``seq``, in sequence order.

        Lazy: rows are read as the caller iterates (inside this transaction), so a caller that
        stops early does not pay for the rest.
        """

    @abstractmethod
    def has_changes_after(self, seq: int) -> bool:
        """True when any change row has a sequence above ``seq``."""

    @abstractmethod
    def has_customers_in(self, territory: str) -> bool:
        """True when at least one customer belongs to ``territory``."""


class WriteTx(GatewayWrites, ReadTx):
    """A write transaction holding the commit-sequence lock until it ends."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit: an exception inside rolls back only what the block did, then re-raises."""

    @abstractmethod
    def next_number(self, counter: str) -> int:
        """The next value of a named counter ("ticket", "order"); rolled back with its savepoint."""

    @abstractmethod
    def insert(self, ent: Entity, record: Mapping[str, Any]) -> int:
        """Insert a new record (wire values, without version); returns its version.

        Attached records take their territory from their customer, which must exist.
        """

    @abstractmethod
    def update(self, ent: Entity, record_id: str, changes: Mapping[str, Any]) -> int:
        """Change some fields of a live record; returns its new version.

        Every changed field's version becomes the new sequence. A customer whose territory
        changes gets a ``move`` row and every attached record is re-versioned into the new
        territory, so users who gain the customer receive its whole history from the feed.
        """

    @abstractmethod
    def delete(self, ent: Entity, record_id: str) -> int:
        """Delete a live record, leaving a tombstone; returns the tombstone's sequence.

        Deleting a customer deletes (and tombstones) every record attached to it first.
        """

    @abstractmethod
    def op_result(self, op_id: str) -> StoredOpResult | None:
        """The stored result of an op id already applied, or None."""

    @abstractmethod
    def save_op_result(self, op_id: str, user_id: str, ent: Entity, record_id: str, result: dict) -> None:
        """Remember an op's result, in the same transaction as its effect."""

    @abstractmethod
    def add_token(self, user_id: str, token_hash: str) -> None:
        """Let a token (its sha256 hex digest) authenticate as ``user_id``."""

    @abstractmethod
    def revoke_tokens(self, user_id: str) -> int:
        """Forget every token of ``user_id``; returns how many there were."""


class BulkLoader(ABC):
    """Fast loading of many new records (the seed); versions and change rows are still written."""

    @abstractmethod
    def add(self, ent: Entity, rows: Iterable[Sequence[Any]]) -> int:
        """Insert rows of wire values in ``ent.columns`` order without the version.

        Attached entities carry one extra value at the end: the customer's territory.
        Returns how many rows were inserted.
        """

    @abstractmethod
    def set_counter(self, counter: str, value: int) -> None:
        """Set a named counter ("ticket", "order") so server-assigned numbers continue after it."""


@dataclass(frozen=True, slots=True)
class CompactResult:
    horizon: int
    purged: int


class Store(ABC):
    """A CRM database."""

    @abstractmethod
    def read(self) -> AbstractContextManager[ReadTx]:
        """A read-only snapshot transaction."""

    @abstractmethod
    def write(self) -> AbstractContextManager[WriteTx]:
        """A write transaction: commits when the block ends normally, rolls back on an exception."""

    @abstractmethod
    def bulk_load(self) -> AbstractContextManager[BulkLoader]:
        """A bulk-load session (one big transaction, indexes rebuilt at the end)."""

    @abstractmethod
    def compact(self, *, before_seq: int | None = None, keep_days: float | None = None) -> CompactResult:
        """Purge tombstones and move rows below a horizon and record it, so older cursors get 410.

        Give ``before_seq`` (purge sequences below it) or ``keep_days`` (purge what was committed
        longer ago than that). The horizon never moves backwards.
        """

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""


def iter_chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Split an iterable into lists of at most ``size`` items."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

