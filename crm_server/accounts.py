"""User administration for the command line: add users, grant and revoke territories, tokens
and devices; and token renewal, for the API.

Every change to a user goes through :func:`crm_server.batch.apply_batch` as the system admin, so
it is validated like any other write and creates change rows: a rep's replica receives the
backfill or the exit for a territory grant or revoke on its next pull.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence

from crm_server.auth import new_token, token_hash
from crm_server.batch import apply_batch
from crm_server.scope import SYSTEM
from crm_server.store import Store, StoredRecord
from crm_server.store.tokens import DAY, DEFAULT_TOKEN_DAYS, Device
from crm_tui.core.domain import ENTITIES
from crm_tui.core.ids import new_id

USER = ENTITIES["user"]
TERRITORY = ENTITIES["territory"]
EXPIRED_KEPT_DAYS = 30.0  # an expired token is still recognised as such this long
RENEW_GRACE = 3600  # seconds a renewed token keeps working (other processes of the client hold it)


class AccountError(Exception):
    """A user command that cannot be done; the message says why."""


def slug(text: str) -> str:
    """A readable id from a name: 'Ada Lovelace' -> 'ada-lovelace'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:64] or "user"


def find_user(store: Store, name_or_id: str) -> StoredRecord:
    """The user with this id, or else the one user with this name. Raises AccountError."""
    with store.read() as tx:
        stored = tx.get(USER, name_or_id)
        if stored is not None:
            return stored
        matches = tx.list_records(USER, after=None, limit=2, filters={"name": name_or_id}, territories=None)
    if not matches:
        raise AccountError(f"no user called {name_or_id!r}")
    if len(matches) > 1:
        raise AccountError(f"more than one user is called {name_or_id!r}; use the id")
    with store.read() as tx:
        found = tx.get(USER, matches[0]["id"])
    assert found is not None
    return found


def check_territories(store: Store, territories: Sequence[str]) -> None:
    """Raise AccountError naming the unknown ones among ``territories`` and the ones that exist."""
    with store.read() as tx:
        unknown = [t for t in territories if tx.get(TERRITORY, t) is None]
        if not unknown:
            return
        known = [t["id"] for t in tx.list_records(TERRITORY, after=None, limit=200, filters={}, territories=None)]
    raise AccountError(f"no territory {', '.join(unknown)}; known territories: {', '.join(known) or 'none yet'}")


def _write_user(store: Store, op: dict) -> dict:
    op = {"op_id": new_id("cli-"), "entity": "user", **op}
    (result,) = apply_batch(store, SYSTEM.id, [op])
    if result["status"] == "rejected":
        error = result["error"]
        detail = "; ".join(f"{k}: {v}" for k, v in error["fields"].items())
        raise AccountError(error["message"] + (f" ({detail})" if detail else ""))
    return result["record"]


def expiry(expires_days: float | None, now: float | None = None) -> tuple[int | None, int | None]:
    """(expires_at, lifetime) of a token issued now for ``expires_days`` (0 or None: never)."""
    if not expires_days:
        return None, None
    lifetime = max(1, int(expires_days * DAY))
    return int(now if now is not None else time.time()) + lifetime, lifetime


def issue_token(store: Store, user_id: str, *, revoke_others: bool = False,
                expires_days: float | None = DEFAULT_TOKEN_DAYS) -> str:
    """A new API token for ``user_id`` (returned once; only its hash is stored), expiring after
    ``expires_days`` (0 or None: never)."""
    token = new_token()
    expires_at, lifetime = expiry(expires_days)
    with store.write() as tx:
        if revoke_others:
            tx.revoke_tokens(user_id)
        tx.add_token(user_id, token_hash(token), expires_at=expires_at, lifetime=lifetime)
    return token


def renew_token(store: Store, old_hash: str, device_id: str | None, *, grace: int = RENEW_GRACE) -> tuple[str, int | None]:
    """A new token with the lifetime of the one whose hash is ``old_hash`` (already checked by
    authentication); the old one expires ``grace`` seconds from now (if not sooner), so a
    process still holding it keeps working for a while. Returns (token, expires_at)."""
    token = new_token()
    now = int(time.time())

    def work(tx) -> int | None:
        info = tx.token_info(old_hash)
        if info is None:
            raise AccountError("this token is no longer known")
        lifetime = info.lifetime
        expires_at = None if lifetime is None else now + lifetime
        tx.add_token(info.user_id, token_hash(token), expires_at=expires_at, lifetime=lifetime)
        tx.expire_token(old_hash, now + grace)
        if device_id is not None:
            tx.note_device(info.user_id, device_id, token_hash(token), None, now)
        return expires_at

    return token, store.transact(work)


def purge_expired_tokens(store: Store, *, keep_days: float = EXPIRED_KEPT_DAYS, now: float | None = None) -> int:
    """Forget tokens that expired more than ``keep_days`` ago (until then they are answered
    "expired on ...", after that "not known"); returns how many. Run by every server's
    housekeeping (crm_server/maintenance.py); safe to run concurrently."""
    before = int((now if now is not None else time.time()) - keep_days * DAY)
    with store.write() as tx:
        return tx.purge_expired_tokens(before)


def find_device(store: Store, user_id: str, device: str) -> Device:
    """The device of ``user_id`` whose id is ``device`` or starts with it (at least 6
    characters). Raises AccountError."""
    with store.read() as tx:
        devices = tx.devices(user_id)
    exact = [d for d in devices if d.device_id == device]
    matches = exact or ([d for d in devices if d.device_id.startswith(device)] if len(device) >= 6 else [])
    if not matches:
        known = ", ".join(d.device_id[:12] for d in devices) or "none yet"
        raise AccountError(f"{user_id} has no device {device!r}; their devices: {known}")
    if len(matches) > 1:
        raise AccountError(f"more than one device of {user_id} starts with {device!r}; give more of its id")
    return matches[0]


def revoke_device(store: Store, user_id: str, device: str) -> tuple[Device, int]:
    """Mark a device of ``user_id`` lost: (the device, how many tokens were revoked with it).
    Raises AccountError."""
    found = find_device(store, user_id, device)
    if found.revoked_at is not None:
        raise AccountError(f"device {found.device_id} of {user_id} was revoked already")
    with store.write() as tx:
        tokens = tx.revoke_device(user_id, found.device_id, int(time.time()))
    return found, tokens


def add_user(
    store: Store,
    name: str,
    *,
    role: str,
    territories: Sequence[str] = (),
    team: str | None = None,
    email: str | None = None,
    user_id: str | None = None,
    expires_days: float | None = DEFAULT_TOKEN_DAYS,
) -> tuple[dict, str]:
    """Create a user and a first token: (user record, token). Raises AccountError."""
    check_territories(store, territories)
    fields = {"name": name, "role": role, "territories": list(territories), "active": True}
    if team:
        fields["team"] = team
    if email:
        fields["email"] = email
    record = _write_user(store, {"op": "create", "id": user_id or slug(name), "fields": fields})
    return record, issue_token(store, record["id"], expires_days=expires_days)


def set_territories(store: Store, name_or_id: str, *, grant: Sequence[str] = (), revoke: Sequence[str] = ()) -> dict:
    """Grant and/or revoke territories of a user; returns the updated user. Raises AccountError."""
    stored = find_user(store, name_or_id)
    check_territories(store, grant)
    current = list(stored.record.get("territories") or [])
    wanted = [t for t in current if t not in revoke] + [t for t in grant if t not in current]
    missing = [t for t in revoke if t not in current]
    if missing:
        raise AccountError(f"{stored.record['name']} does not have territory {missing[0]}")
    return _write_user(
        store,
        {"op": "update", "id": stored.record["id"], "base_version": stored.version, "fields": {"territories": wanted}},
    )
