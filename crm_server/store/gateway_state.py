"""The gateway's own state: a small, separate part of the storage interface.

Only ``crm-server serve --upstream ...`` uses it (crm_server/gateway/): the links between mirror
records and upstream records (with the content hash last seen), the op ledger that makes
upstream creates idempotent, and a few named values (the newest audit-log entry seen, the time
of the last full scan). They live in their own tables, apart from the CRM data. A backend that
does not implement them raises NotImplementedError here and still serves everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class UpstreamLink:
    """A mirror record and the upstream record it mirrors."""

    entity: str
    local_id: str  # the mirror's id (the upstream id for records first seen upstream)
    upstream_id: str
    content_hash: str | None  # of the mapped upstream fields, when last compared


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """An upstream create the gateway started for a client op."""

    op_id: str
    entity: str
    local_id: str
    natural_key: dict[str, Any]  # what identifies the record upstream if its id was never heard
    state: str  # "sending" (the upstream may or may not have it) or "done"
    upstream_id: str | None
    started_at: float  # unix time the first attempt started


class GatewayReads:
    """Gateway reads, available on every ReadTx."""

    def gateway_link(self, entity: str, *, local_id: str | None = None, upstream_id: str | None = None) -> UpstreamLink | None:
        """The link of a mirror record (by ``local_id``) or of an upstream record (by ``upstream_id``)."""
        raise NotImplementedError("this store has no gateway tables")

    def gateway_links(self, entity: str) -> list[UpstreamLink]:
        """Every link of an entity."""
        raise NotImplementedError("this store has no gateway tables")

    def gateway_ledger(self, op_id: str) -> LedgerEntry | None:
        """The ledger entry of an op, or None."""
        raise NotImplementedError("this store has no gateway tables")

    def gateway_value(self, key: str) -> str | None:
        """A named gateway value, or None."""
        raise NotImplementedError("this store has no gateway tables")


class GatewayWrites:
    """Gateway writes, available on every WriteTx (committed with the transaction)."""

    def set_gateway_link(self, link: UpstreamLink) -> None:
        """Insert or replace the link of ``link.local_id`` (an upstream id links one record only)."""
        raise NotImplementedError("this store has no gateway tables")

    def drop_gateway_link(self, entity: str, local_id: str) -> None:
        """Forget the link of a mirror record (it was deleted)."""
        raise NotImplementedError("this store has no gateway tables")

    def put_gateway_ledger(self, entry: LedgerEntry) -> None:
        """Insert or replace an op's ledger entry."""
        raise NotImplementedError("this store has no gateway tables")

    def set_gateway_value(self, key: str, value: str | None) -> None:
        """Set (or clear, with None) a named gateway value."""
        raise NotImplementedError("this store has no gateway tables")

