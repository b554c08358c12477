"""Token lifetimes and devices: tables and statements shared by both backends.

A token row has an expiry (``expires_at``, unix seconds; NULL: never) and the lifetime it was
issued with (renewal gives the new token the same one). A *device* is one client installation
(a random id the client sends in ``X-CRM-Device``); the server records each user's devices, which
tokens were used on each, and whether an admin revoked it (lost laptop). Revoking a device marks
every token used on it with ``revoked_device``: such a token answers 403 ``device_revoked`` on that
device (or with no device id) and 401 on any other, so a copy of it is dead everywhere.

Statements use ``?`` placeholders (the PostgreSQL backend rewrites them), through the helpers of
:class:`crm_server.store.sql_tx.SqlReadTx`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

DEFAULT_TOKEN_DAYS = 90  # a token's lifetime unless `--expires-days` says otherwise
DAY = 86400

# Migration 3 adds these to tokens (a new database has them from the start).
TOKEN_COLUMNS = {"expires_at": ("INTEGER", "bigint"), "lifetime": ("INTEGER", "bigint"),
                 "revoked_device": ("TEXT", "text")}

SQLITE_DDL = [
    """CREATE TABLE IF NOT EXISTS devices (
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        name TEXT,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        revoked_at INTEGER,
        PRIMARY KEY (user_id, device_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS device_tokens (
        token_hash TEXT NOT NULL,
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        PRIMARY KEY (token_hash, device_id)
    ) WITHOUT ROWID""",
    'CREATE INDEX IF NOT EXISTS "device_tokens_device" ON "device_tokens" ("user_id", "device_id")',
    'CREATE INDEX IF NOT EXISTS "devices_device" ON "devices" ("device_id")',
]

PG_DDL = [
    """CREATE TABLE IF NOT EXISTS devices (
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        device_id text NOT NULL,
        name text,
        first_seen bigint NOT NULL,
        last_seen bigint NOT NULL,
        revoked_at bigint,
        PRIMARY KEY (user_id, device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS device_tokens (
        token_hash text NOT NULL,
        user_id text NOT NULL,
        device_id text NOT NULL,
        PRIMARY KEY (token_hash, device_id)
    )""",
    'CREATE INDEX IF NOT EXISTS "device_tokens_device" ON "device_tokens" ("user_id", "device_id")',
    'CREATE INDEX IF NOT EXISTS "devices_device" ON "devices" ("device_id")',
]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token (known by its hash)."""

    user_id: str
    expires_at: int | None  # unix seconds; None: never expires
    lifetime: int | None  # seconds it was issued for; None: no expiry
    revoked_device: str | None  # set when a device it was used on was revoked


@dataclass(frozen=True, slots=True)
class Device:
    """A client installation of a user, as the server last saw it."""

    user_id: str
    device_id: str
    name: str | None
    first_seen: int
    last_seen: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What a request's token check reads: see :meth:`crm_server.store.base.ReadTx.token_check`."""

    device_revoked: bool  # a device of this id (of any user) was revoked
    token: TokenInfo | None
    device: Device | None  # the device of the token's user, as last seen
    used_on: bool  # the token was used on (or issued to) the device before
    user: Any = None  # the token's user (a StoredRecord, None: no such user), when user_read
    user_read: bool = False


_DEVICE = "SELECT user_id, device_id, name, first_seen, last_seen, revoked_at FROM devices"


class TokenReads:
    """Token and device reads (contracts on :class:`crm_server.store.base.ReadTx`)."""

    _exec: Any
    _one: Any

    def token_info(self, token_hash: str) -> TokenInfo | None:
        row = self._exec("SELECT user_id, expires_at, lifetime, revoked_device FROM tokens WHERE hash = ?",
                         (token_hash,)).fetchone()
        if row is None:
            return None
        return TokenInfo(row[0], None if row[1] is None else int(row[1]), None if row[2] is None else int(row[2]),
                         row[3])

    def device(self, user_id: str, device_id: str) -> Device | None:
        row = self._exec(f"{_DEVICE} WHERE user_id = ? AND device_id = ?", (user_id, device_id)).fetchone()
        return None if row is None else Device(*row)

    def devices(self, user_id: str) -> list[Device]:
        return [Device(*row) for row in self._exec(f"{_DEVICE} WHERE user_id = ? ORDER BY first_seen, device_id",
                                                   (user_id,)).fetchall()]

    def device_revoked(self, device_id: str) -> bool:
        return self._one("SELECT 1 FROM devices WHERE device_id = ? AND revoked_at IS NOT NULL",
                         (device_id,)) is not None

    def token_used_on(self, token_hash: str, device_id: str) -> bool:
        return self._one("SELECT 1 FROM device_tokens WHERE token_hash = ? AND device_id = ?",
                         (token_hash, device_id)) is not None


class TokenWrites:
    """Token and device writes (contracts on :class:`crm_server.store.base.WriteTx`)."""

    _exec: Any
    _one: Any

    def add_token(self, user_id: str, token_hash: str, *, expires_at: int | None = None,
                  lifetime: int | None = None) -> None:
        self._exec(
            "INSERT INTO tokens (hash, user_id, created_at, expires_at, lifetime) VALUES (?, ?, ?, ?, ?)",
            (token_hash, user_id, _iso_now(), expires_at, lifetime),
        )

    def revoke_tokens(self, user_id: str) -> int:
        self._exec("DELETE FROM device_tokens WHERE user_id = ?", (user_id,))
        return self._exec("DELETE FROM tokens WHERE user_id = ?", (user_id,)).rowcount

    def expire_token(self, token_hash: str, at: int) -> None:
        self._exec("UPDATE tokens SET expires_at = ? WHERE hash = ? AND (expires_at IS NULL OR expires_at > ?)",
                   (at, token_hash, at))

    def note_device(self, user_id: str, device_id: str, token_hash: str, name: str | None, now: int) -> None:
        self._exec(
            "INSERT INTO devices (user_id, device_id, name, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, device_id) DO UPDATE SET last_seen = excluded.last_seen,"
            " name = coalesce(excluded.name, devices.name)",
            (user_id, device_id, name, now, now),
        )
        self._exec("INSERT INTO device_tokens (token_hash, user_id, device_id) VALUES (?, ?, ?)"
                   " ON CONFLICT DO NOTHING", (token_hash, user_id, device_id))

    def purge_expired_tokens(self, before: int) -> int:
        self._exec("DELETE FROM device_tokens WHERE token_hash IN"
                   " (SELECT hash FROM tokens WHERE expires_at IS NOT NULL AND expires_at < ?)", (before,))
        return self._exec("DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at < ?", (before,)).rowcount

    def revoke_device(self, user_id: str, device_id: str, now: int) -> int:
        self._exec("UPDATE devices SET revoked_at = ? WHERE user_id = ? AND device_id = ? AND revoked_at IS NULL",
                   (now, user_id, device_id))
        return self._exec(
            "UPDATE tokens SET revoked_device = ? WHERE user_id = ? AND revoked_device IS NULL AND hash IN"
            " (SELECT token_hash FROM device_tokens WHERE user_id = ? AND device_id = ?)",
            (device_id, user_id, user_id, device_id),
        ).rowcount


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def upgrade_tokens(db: Any) -> None:
    """Migration 3 (a :class:`crm_server.store.migrations.SchemaEditor`): tokens get an expiry and
    a lifetime, and the device tables appear. Tokens issued before it expire
    :data:`DEFAULT_TOKEN_DAYS` days after the upgrade (clients renew them before that)."""
    sqlite = db.backend == "sqlite"
    for name, (lite, pg) in TOKEN_COLUMNS.items():
        if sqlite:
            db.execute(f'ALTER TABLE tokens ADD COLUMN "{name}" {lite}')
        else:
            db.execute(f'ALTER TABLE tokens ADD COLUMN IF NOT EXISTS "{name}" {pg}')
    for stmt in SQLITE_DDL if sqlite else PG_DDL:
        db.execute(stmt)
    lifetime = DEFAULT_TOKEN_DAYS * DAY
    mark = "?" if sqlite else "%s"
    db.execute(f"UPDATE tokens SET expires_at = {mark}, lifetime = {mark} WHERE expires_at IS NULL",
               (int(time.time()) + lifetime, lifetime))
