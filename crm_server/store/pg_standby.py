"""A PostgreSQL hot standby of the server's database, for reads only (``crm-server serve --read-db``).

The standby is a physical copy that follows the primary by streaming replication, so it has the
same schema, epoch and cursor key, and the same change positions: a cursor means the same thing on
both. It may lag behind the primary; :mod:`crm_server.reads` decides when a request may be served
from it. Nothing is ever written here: writes, rate-limit buckets and every other shared state
go to the primary.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any, NoReturn

import psycopg

from crm_server.store.base import OP_RESULT_RETENTION_DAYS, CompactResult, MaintenanceReport, StoreError
from crm_server.store.pg import POOL_SIZE, PostgresStore, open_pool, redact

# A standby that went away must not hold requests long: they go to the primary instead.
STANDBY_WAIT = 2.0
STANDBY_CONNECT_TIMEOUT = 3
STANDBY_SILENCE_MS = 5000  # data unacknowledged this long: the standby's connection is dead


class ReadOnlyStandby(StoreError):
    """Something tried to write to the read standby (a bug: writes go to the primary)."""


class PostgresStandby(PostgresStore):
    """Reads of :class:`PostgresStore` from a hot standby of ``primary``'s database."""

    def __init__(self, url: str, primary: PostgresStore, *, pool_size: int = POOL_SIZE):
        """Open the standby at ``url``. Raises StoreError (one line) when it cannot be reached or
        is not a copy of ``primary``'s database (another epoch or schema version)."""
        self.url = url
        self.primary = primary
        self._meter = threading.local()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=STANDBY_CONNECT_TIMEOUT) as conn:
                mine = conn.execute("SELECT epoch, schema_version FROM store_info").fetchone()
            with psycopg.connect(primary.url, autocommit=True, connect_timeout=STANDBY_CONNECT_TIMEOUT) as conn:
                theirs = conn.execute("SELECT epoch, schema_version FROM store_info").fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"cannot use read standby {redact(url)}: {' '.join(str(exc).split())}") from None
        if mine[0] != theirs[0]:
            raise StoreError(f"{redact(url)} is not a standby of {redact(primary.url)}: it holds another database "
                             "(make it with pg_basebackup -R from the primary)")
        if mine[1] != theirs[1]:
            raise StoreError(f"read standby {redact(url)} has schema version {mine[1]}, the primary {theirs[1]}: "
                             "it has not replayed the upgrade yet (is replication running?)")
        self.opened_at_version = int(mine[1])
        # A standby whose network vanished (no reset, no answer) is given up on within seconds,
        # not after the kernel's retransmission timeout: its reads then go to the primary.
        self._pool = open_pool(url, pool_size, wait=STANDBY_WAIT, connect_timeout=STANDBY_CONNECT_TIMEOUT,
                               name="crm-server-standby", keepalives=1, keepalives_idle=5, keepalives_interval=2,
                               keepalives_count=2, tcp_user_timeout=STANDBY_SILENCE_MS)

    def _read_only(self, *_: Any, **__: Any) -> NoReturn:
        raise ReadOnlyStandby("the read standby takes no writes; they go to the primary (--db)")

    def write(self) -> AbstractContextManager[Any]:
        self._read_only()

    def bulk_load(self) -> AbstractContextManager[Any]:
        self._read_only()

    def compact(self, *, before_seq: int | None = None, keep_days: float | None = None,
                now: float | None = None) -> CompactResult:
        self._read_only()

    def maintain(self, *, op_retention_days: float = OP_RESULT_RETENTION_DAYS,
                 now: float | None = None) -> MaintenanceReport:
        self._read_only()

    def maintain_partitions(self, today: Any = None) -> tuple[list[str], int]:
        self._read_only()

    def take_rate_token(self, key: str, rate: float, burst: float) -> float:
        self._read_only()

    def renew_identity(self) -> None:
        self._read_only()

    def poller_lock(self) -> Any:
        self._read_only()
