"""User administration for the command line: add users, grant and revoke territories, tokens.

Every change to a user goes through :func:`crm_server.batch.apply_batch` as the system admin, so
it is validated like any other write and creates change rows: a rep's replica receives the
backfill or the exit for a territory grant or revoke on its next pull.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from crm_server.auth import new_token, token_hash
from crm_server.batch import apply_batch
from crm_server.scope import SYSTEM
from crm_server.store import Store, StoredRecord
from crm_tui.domain import ENTITIES
from crm_tui.ids import new_id

USER = ENTITIES["user"]
TERRITORY = ENTITIES["territory"]


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


def issue_token(store: Store, user_id: str, *, revoke_others: bool = False) -> str:
    """A new API token for ``user_id`` (returned once; only its hash is stored)."""
    token = new_token()
    with store.write() as tx:
        if revoke_others:
            tx.revoke_tokens(user_id)
        tx.add_token(user_id, token_hash(token))
    return token


def add_user(
    store: Store,
    name: str,
    *,
    role: str,
    territories: Sequence[str] = (),
    team: str | None = None,
    email: str | None = None,
    user_id: str | None = None,
) -> tuple[dict, str]:
    """Create a user and a first token: (user record, token). Raises AccountError."""
    check_territories(store, territories)
    fields = {"name": name, "role": role, "territories": list(territories), "active": True}
    if team:
        fields["team"] = team
    if email:
        fields["email"] = email
    record = _write_user(store, {"op": "create", "id": user_id or slug(name), "fields": fields})
    return record, issue_token(store, record["id"])


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
