"""Who is calling and what they may see: the scope rules of docs/sync-protocol.md.

* agents and admins see every record;
* sales reps see the customers of their territories and everything attached to them;
* territories and users (the directory) are visible to everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_server.store import ReadTx, StoredRecord
from crm_tui.core.domain import ENTITIES

USER = ENTITIES["user"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request acts for, as stored when the request's transaction began."""

    id: str
    name: str
    role: str
    team: str | None = None
    territories: tuple[str, ...] = ()

    @property
    def all_territories(self) -> bool:
        """True when every customer is in scope (agents and admins)."""
        return self.role in ("agent", "admin")

    @property
    def is_admin(self) -> bool:
        """True for admins, the only role that may write territories and users."""
        return self.role == "admin"

    def sees(self, territory: str | None) -> bool:
        """Whether a record of ``territory`` (None: a global record) is in this caller's scope."""
        return territory is None or self.all_territories or territory in self.territories

    def scope(self) -> list[str] | None:
        """The territories to filter by, or None for every territory."""
        return None if self.all_territories else sorted(self.territories)


# The identity of the command-line tools (user add, grant, ...): an admin that is not a user.
# "@" is not allowed in ids, so no stored user (and no token) can ever be this caller.
SYSTEM = Caller(id="@system", name="crm-server", role="admin")


def load_caller(tx: ReadTx, user_id: str) -> Caller | None:
    """The caller for ``user_id`` as of this transaction; None if the user is gone or inactive."""
    if user_id == SYSTEM.id:
        return SYSTEM
    return caller_of(tx.get(USER, user_id))


def caller_of(stored: StoredRecord | None) -> Caller | None:
    """The caller a stored user record makes; None if there is none or the user is inactive."""
    if stored is None:
        return None
    user = stored.record
    if user.get("active") is False:
        return None
    return Caller(
        id=user["id"],
        name=user["name"],
        role=user["role"],
        team=user.get("team"),
        territories=tuple(user.get("territories") or ()),
    )
