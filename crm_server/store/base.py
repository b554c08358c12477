"""The storage interface the server is written against.

Everything above this package (feed, batch, HTTP) speaks only these classes; the SQLite and the
PostgreSQL backends implement them. What every backend must guarantee:

* **Feed positions.** Every change row has a position ``(tx, seq)``; the feed delivers rows in
  position order. Each read snapshot knows its *head*: every change at or below it is committed,
  visible in the snapshot, and no change will ever appear at or below it later. A reader that
  never goes past the head never skips a change, whatever order transactions commit in.
  (SQLite: writers serialise, so ``tx`` is always 0 and the head is the last sequence number.
  PostgreSQL: ``tx`` is the writing transaction's id and the head sits just below the oldest
  transaction still running; see docs/sync-protocol.md, "Concurrent writers".)
* **Per-record versions are monotonic.** A writer locks a record before it takes the sequence
  number that becomes the record's new ``version``.
* **One change row per record** holding its latest change (``upsert`` or ``delete``), whose
  ``seq`` is the record's ``version``; plus append-only ``move`` rows when a customer changes
  territory. Writes through :class:`WriteTx` keep these rows; callers never write them.
* **Read transactions are snapshots**: every read inside one :meth:`Store.read` block sees the
  same committed state.
* **Shared state lives in the database**: the epoch, the cursor key, rate-limit buckets and
  idempotency records, so any number of server processes agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from crm_server.store.gateway_state import GatewayReads, GatewayWrites
from crm_server.store.tokens import Device, TokenCheck, TokenInfo
from crm_tui.core.domain import Entity

Position = tuple[int, int]  # (transaction order, sequence number): the change feed's order
MAX_SEQ = 2**62  # the sequence part of a position that stands for "all of this transaction"
ORIGIN: Position = (0, 0)

T = TypeVar("T")


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
    """One row of the change log, in position order (a tuple: the feed reads many of them)."""

    tx: int
    seq: int
    entity: str
    record_id: str
    kind: str  # "upsert", "delete" or "move"
    territory: str | None  # the record's territory at this change (a move: the new one)
    old_territory: str | None = None  # a move: the territory the customer left
    part_date: Any = None  # an upsert of a partitioned record (orders): its partition key, where stored

    @property
    def pos(self) -> Position:
        """Where this row is in the feed."""
        return (self.tx, self.seq)


@dataclass(frozen=True, slots=True)
class StoredOpResult:
    """The result of an op already applied, kept for idempotent replays."""

    user_id: str
    entity: str
    record_id: str
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """What a feed request needs to judge a cursor, read in the same snapshot as the data."""

    epoch: str  # names this database: a cursor of another database is useless here
    cursor_key: bytes  # the AES-256-GCM key cursors are sealed with (shared by every server process)
    head: Position  # see the module docstring; the feed never reads past it
    horizon: Position  # cursors below this position cannot be served (tombstones were purged)
    history: str  # a mark of the latest committed write transaction (see ReadTx.knows_history)


@dataclass(frozen=True, slots=True)
class MonthRevenue:
    """Revenue of one month in one currency (orders not cancelled or refunded)."""

    month: str  # "YYYY-MM"
    currency: str
    amount: int  # minor units
    orders: int


class StoreError(RuntimeError):
    """The database is unusable (corrupt, wrong schema, a bug in a statement)."""


class StoreBusy(StoreError):
    """Another writer held the database for too long; the request may be retried."""


class StoreConflict(StoreBusy):
    """The transaction lost a race (deadlock, serialisation failure) and was rolled back; run it again."""


class RecordMissing(StoreError, KeyError):
    """A record a write depends on does not exist (it may have been deleted concurrently)."""


class RecordExists(StoreError):
    """A record with this id exists already (or existed: ids are never reused)."""


class ReadTx(GatewayReads, ABC):
    """Reads inside one consistent snapshot (and the gateway's reads: store/gateway_state.py)."""

    @abstractmethod
    def info(self) -> StoreInfo:
        """Epoch, cursor key, head and horizon positions and history mark of this snapshot."""

    @abstractmethod
    def last_sequence(self) -> int:
        """A sequence number every change written after this call is numbered above (SQLite: the
        last one taken; PostgreSQL: the sequence's current value)."""

    @abstractmethod
    def knows_history(self, mark: str) -> bool:
        """True when the write transaction ``mark`` names (from :attr:`StoreInfo.history`) is part
        of this database's history. A database restored from an older copy has lost it, and gives
        its sequence numbers to other transactions: cursors carrying such a mark must resync."""

    @abstractmethod
    def user_id_for_token(self, token_hash: str) -> str | None:
        """The id of the user a token (given as its sha256 hex digest) belongs to, or None
        (whether or not it has expired: see :meth:`token_info`)."""

    @abstractmethod
    def token_info(self, token_hash: str) -> TokenInfo | None:
        """A token's user, expiry, lifetime and whether a device it was used on was revoked."""

    def token_check(self, token_hash: str, device_id: str | None) -> TokenCheck:
        """What a request's token check needs: whether ``device_id`` was revoked, the token,
        the device of the token's user and whether the token was used on it (no device: only the
        token). A store may read them with one statement."""
        info = self.token_info(token_hash)
        if device_id is None:
            return TokenCheck(False, info, None, False)
        return TokenCheck(self.device_revoked(device_id), info,
                          None if info is None else self.device(info.user_id, device_id),
                          self.token_used_on(token_hash, device_id))

    @abstractmethod
    def device(self, user_id: str, device_id: str) -> Device | None:
        """One device of a user, or None if the server never saw it."""

    @abstractmethod
    def devices(self, user_id: str) -> list[Device]:
        """Every device of a user, the first seen first."""

    @abstractmethod
    def device_revoked(self, device_id: str) -> bool:
        """Whether a device of this id (of any user) was revoked."""

    @abstractmethod
    def token_used_on(self, token_hash: str, device_id: str) -> bool:
        """Whether the token was ever used on (or issued to) the device."""

    @abstractmethod
    def get(self, ent: Entity, record_id: str) -> StoredRecord | None:
        """One live record, or None when it does not exist (or was deleted)."""

    @abstractmethod
    def tombstone(self, ent: Entity, record_id: str) -> ChangeRow | None:
        """The delete change row of a record that was deleted (until compaction purges it)."""

    @abstractmethod
    def get_many(self, ent: Entity, record_ids: Sequence[str], *, share: bool = False,
                 partitions: Sequence[Any] = ()) -> dict[str, StoredRecord]:
        """Record id -> live record, for those of ``record_ids`` that exist (one statement per few
        thousand ids). ``share`` (in a write transaction): until it ends, no other writer can
        change or delete the records found (what :meth:`WriteTx.insert` takes on a customer).
        ``partitions``: for a partitioned entity (orders), the partition keys (order dates) the
        records are known to have, so that only their partitions are read."""

    @abstractmethod
    def id_states(self, ent: Entity, record_ids: Sequence[str]) -> dict[str, str]:
        """Id -> what became of the record, for those of ``record_ids`` ever used: "upsert"
        (live), "delete" (deleted: its tombstone remains) or "retired" (deleted long ago). One
        index lookup per id in the change log, whatever the entity's table (or partitions)."""

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
        (global entities ignore it). Every filter the API offers is served by an index.
        """

    @abstractmethod
    def count(self, ent: Entity, territories: Sequence[str] | None) -> int:
        """How many live records of ``ent`` are in the given territories (None: all)."""

    def count_all(self, ents: Sequence[Entity], territories: Sequence[str] | None) -> int:
        """The sum of :meth:`count` over ``ents`` (one statement where the store can)."""
        return sum(self.count(e, territories) for e in ents)

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
    def rows_json(self, ent: Entity, ids: Sequence[str], dates: Sequence[Any] = ()) -> dict[str, str]:
        """Record id -> JSON text of the row (a list in ``ent.columns`` order), for live ids.
        ``dates`` (a partitioned entity: each id's partition key, from its change row, or None)
        lets the read skip the partitions none of the ids is in."""

    @abstractmethod
    def changes_after(
        self, after: Position, head: Position, limit: int, territories: Sequence[str] | None
    ) -> list[ChangeRow]:
        """Up to ``limit`` change rows with ``after < pos <= head``, in position order.

        ``territories`` None means every row. Otherwise only the rows a user of those territories
        needs: rows of those territories, rows of global records (territory None), and ``move``
        rows that left one of them. Each territory is read from its own index range, so the cost
        grows with what the user can see, not with the size of the whole log.
        """

    @abstractmethod
    def has_customers_in(self, territory: str) -> bool:
        """True when at least one customer belongs to ``territory``."""

    @abstractmethod
    def recent_orders(self, customer_id: str, *, since: str, limit: int) -> list[dict[str, Any]]:
        """A customer's orders dated ``since`` (YYYY-MM-DD) or later, newest first, at most ``limit``.

        On PostgreSQL this reads only the monthly partitions from ``since`` on.
        """

    @abstractmethod
    def revenue_by_month(
        self, *, since: str, until: str, territories: Sequence[str] | None
    ) -> list[MonthRevenue]:
        """Revenue per month and currency of orders dated ``since <= order_date < until``, in the
        given territories (None: all), orders cancelled or refunded left out; ordered by month.

        On PostgreSQL this reads only the monthly partitions of the range.
        """


class WriteTx(GatewayWrites, ReadTx):
    """A write transaction. Commits when its block ends normally, rolls back on an exception."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit: an exception inside rolls back only what the block did, then re-raises."""

    @abstractmethod
    def lock(self, ent: Entity, record_id: str) -> StoredRecord | None:
        """Like :meth:`get`, and no other writer can change or delete the record until this
        transaction ends. Read a record this way before deciding how to change it."""

    @abstractmethod
    def lock_many(self, ent: Entity, record_ids: Sequence[str]) -> dict[str, StoredRecord]:
        """:meth:`lock` of many records at once (in id order, one statement per few thousand
        ids): record id -> live record, for those of ``record_ids`` that exist."""

    @abstractmethod
    def next_number(self, counter: str) -> int:
        """The next value of a named counter ("ticket", "order"): unique and increasing. A number
        taken in a savepoint that rolls back may be skipped (PostgreSQL sequences never go back)."""

    @abstractmethod
    def insert(self, ent: Entity, record: Mapping[str, Any]) -> int:
        """Insert a new record (wire values, without version); returns its version.

        Attached records take their territory from their customer. Raises RecordMissing when the
        customer does not exist, RecordExists when the id is (or was) taken.
        """

    @abstractmethod
    def update(self, ent: Entity, record_id: str, changes: Mapping[str, Any]) -> int:
        """Change some fields of a live record; returns its new version.

        Every changed field's version becomes the new sequence. A customer whose territory
        changes gets a ``move`` row and every attached record is re-versioned into the new
        territory, so users who gain the customer receive its whole history from the feed.
        Raises RecordMissing when the record does not exist.
        """

    @abstractmethod
    def delete(self, ent: Entity, record_id: str) -> int:
        """Delete a live record, leaving a tombstone; returns the tombstone's sequence.

        Deleting a customer deletes (and tombstones) every record attached to it first.
        Raises RecordMissing when the record does not exist.
        """

    @abstractmethod
    def op_result(self, op_id: str) -> StoredOpResult | None:
        """The stored result of an op id already applied (within the retention window), or None."""

    @abstractmethod
    def save_op_result(self, op_id: str, user_id: str, ent: Entity, record_id: str, result: dict) -> None:
        """Remember an op's result, in the same transaction as its effect."""

    @abstractmethod
    def op_results(self, op_ids: Sequence[str]) -> dict[str, StoredOpResult]:
        """Op id -> stored result, for those of ``op_ids`` already applied (see :meth:`op_result`)."""

    @abstractmethod
    def save_op_results(self, rows: Sequence[tuple[str, str, Entity, str, dict]]) -> None:
        """:meth:`save_op_result` of many ops at once: (op id, user id, entity, record id, result)."""

    @abstractmethod
    def next_numbers(self, counter: str, n: int) -> list[int]:
        """``n`` values of :meth:`next_number` at once, increasing."""

    @abstractmethod
    def insert_many(self, items: Sequence[tuple[Entity, Mapping[str, Any]]]) -> list[int]:
        """:meth:`insert` of many new records at once, a few statements in all; returns their versions,
        increasing in the order given (as if each had been inserted in turn).

        Raises RecordMissing when a customer does not exist and RecordExists when an id is taken;
        then some of the records may have been inserted: call it inside a :meth:`savepoint`.
        """

    @abstractmethod
    def update_many(self, items: Sequence[tuple[Entity, StoredRecord, Mapping[str, Any]]]) -> list[int]:
        """:meth:`update` of many records at once, a few statements in all: (entity, the record as
        :meth:`lock_many` read it in this transaction, the changed fields) each. Returns their
        new versions, increasing in the order given (as if each had been updated in turn).

        Each record at most once; none may change a customer's territory (that is a move:
        :meth:`update`). Fields the caller did not change keep their versions.
        """

    @abstractmethod
    def add_token(self, user_id: str, token_hash: str, *, expires_at: int | None = None,
                  lifetime: int | None = None) -> None:
        """Let a token (its sha256 hex digest) authenticate as ``user_id`` until ``expires_at``
        (unix seconds; None: for ever). ``lifetime`` (seconds) is what a renewal gives again."""

    @abstractmethod
    def revoke_tokens(self, user_id: str) -> int:
        """Forget every token of ``user_id``; returns how many there were."""

    @abstractmethod
    def expire_token(self, token_hash: str, at: int) -> None:
        """Make a token expire at ``at`` (unix seconds) unless it expires sooner already."""

    @abstractmethod
    def purge_expired_tokens(self, before: int) -> int:
        """Forget tokens that expired before ``before`` (unix seconds); returns how many."""

    @abstractmethod
    def note_device(self, user_id: str, device_id: str, token_hash: str, name: str | None, now: int) -> None:
        """Record that ``device_id`` of ``user_id`` was seen at ``now`` using the token (a new
        device is added; ``name``, when given, replaces the one known)."""

    @abstractmethod
    def revoke_device(self, user_id: str, device_id: str, now: int) -> int:
        """Mark a device revoked (lost) and every token used on it; returns how many tokens."""


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
    horizon: Position
    purged: int


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one round of :meth:`Store.maintain` did."""

    op_results_purged: int = 0
    commits_purged: int = 0
    rate_buckets_purged: int = 0
    partitions_created: list[str] = field(default_factory=list)
    rows_moved_from_default: int = 0


# How long an op's result is kept for idempotent replays (see docs/sync-protocol.md).
OP_RESULT_RETENTION_DAYS = 30.0


class Store(ABC):
    """A CRM database."""

    backend: str  # "sqlite" or "postgresql"

    @abstractmethod
    def read(self) -> AbstractContextManager[ReadTx]:
        """A read-only snapshot transaction."""

    @abstractmethod
    def write(self) -> AbstractContextManager[WriteTx]:
        """A write transaction: commits when the block ends normally, rolls back on an exception.

        Raises StoreConflict when it lost a race with another writer (nothing was written; run
        it again: :meth:`transact` does), StoreBusy when a lock stayed taken for too long.
        """

    def transact(self, work: Callable[[WriteTx], T], *, attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, again from the start (in a new transaction) when
        it loses a race with another writer; raises StoreConflict after ``attempts`` losses."""
        for attempt in range(attempts):
            try:
                with self.write() as tx:
                    return work(tx)
            except StoreConflict:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    @abstractmethod
    def bulk_load(self) -> AbstractContextManager[BulkLoader]:
        """A bulk-load session (one big transaction)."""

    @abstractmethod
    def compact(self, *, before_seq: int | None = None, keep_days: float | None = None,
                now: float | None = None) -> CompactResult:
        """Purge old tombstones and move rows; cursors that had not seen one of them get 410.

        Give ``before_seq`` (purge changes older than the first one with a sequence at or above
        it) or ``keep_days`` (purge what was committed longer ago than that, before ``now``:
        epoch seconds, default the clock; for tests). The horizon becomes the position of the
        last row purged (cursors below it resync); it never moves backwards.
        """

    @abstractmethod
    def maintain(self, *, op_retention_days: float = OP_RESULT_RETENTION_DAYS, now: float | None = None) -> MaintenanceReport:
        """Housekeeping that any server process may run at any time (safe to run concurrently):
        purge op results and commit bookkeeping older than ``op_retention_days``, forget idle
        rate-limit buckets, refresh the planner's statistics, and on PostgreSQL create the coming
        months' order partitions and move rows that landed in the default partition into
        partitions of their own. ``now`` (epoch seconds; default: the clock) is for tests."""

    def last_commit(self) -> int:
        """The number of the latest committed write transaction (the commit clock): a read that
        sees at least this commit sees every write acknowledged before this call."""
        with self.read() as tx:
            return commit_number(tx.info().history)

    @abstractmethod
    def take_rate_token(self, key: str, rate: float, burst: float) -> float:
        """Take one request from ``key``'s token bucket (``rate`` per second, bursts of ``burst``),
        shared by every server process: 0.0 if allowed, else seconds until one would be."""

    @abstractmethod
    def metered(self) -> AbstractContextManager[Any]:
        """Record what the read transactions of this thread do inside the block (statements, and
        on SQLite virtual machine steps): see :mod:`crm_server.store.probe`."""

    @abstractmethod
    def poller_lock(self) -> Any:
        """A lock only one process serving this database can hold at a time (``try_acquire() ->
        bool``, ``release()``): the gateway's upstream poller runs only where it is held."""

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


def commit_number(mark: str) -> int:
    """The commit a history mark (:attr:`StoreInfo.history`) names; commits are numbered in
    commit order. An unreadable mark is 0."""
    n_text = mark.partition(":")[0]
    return int(n_text) if n_text.isdigit() else 0


def previous(pos: Position) -> Position:
    """The position just before ``pos`` (nothing lies strictly between them)."""
    tx, seq = pos
    return (tx, seq - 1) if seq > 0 else (tx - 1, MAX_SEQ)
