"""The sync protocol's shapes, shared by the server and the client.

docs/sync-protocol.md is the prose; this module is the same thing as code, and the one place
the protocol's names and limits are declared (the id pattern is crm_tui.core.ids'). The server builds
its OpenAPI schema and request validation from these models and its cursors from ``PHASES`` and
``MAX_CURSOR``. The client checks every response against the same declarations before it touches
the replica, with hand-written checks fast enough for a page of thousands of records: change pages
in ``cache.pull.check_page`` (``PHASES``, ``SEGMENT_OPS``, the shape of ``ChangePage``), batch
results in ``cache.push_results`` (``OP_STATUSES``), and /v1/me, token renewal, list and batch answers in
``sync.client`` (the fields it uses). tests/replica/test_protocol_checks.py keeps the hand-written
page check and the ``ChangePage`` model in agreement.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from crm_tui.core.domain import ENTITIES
from crm_tui.core.ids import ID_PATTERN

PROTOCOL_VERSION = 1
API_PREFIX = "/v1"

MAX_BATCH_OPS = 1000  # ops per POST /v1/batch
MAX_BODY_BYTES = 8 * 1024 * 1024  # request bodies above this get 413
MAX_PAGE = 5000  # records per change-feed page
DEFAULT_PAGE = 2000
MAX_LIST = 500  # records per list page
DEFAULT_LIST = 100

OpKind = Literal["create", "update", "delete"]
OpStatus = Literal["applied", "merged", "conflict", "rejected"]
SegmentOp = Literal["upsert", "delete", "exit", "exit_territory"]
Phase = Literal["snapshot", "backfill", "feed"]

OP_KINDS: tuple[str, ...] = get_args(OpKind)
OP_STATUSES: tuple[str, ...] = get_args(OpStatus)
SEGMENT_OPS: tuple[str, ...] = get_args(SegmentOp)
PHASES: tuple[str, ...] = get_args(Phase)

MAX_CURSOR = 8192  # characters in a change-feed cursor
CURSOR_PATTERN = r"^([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)?$"  # as the client sends it back; empty: none

# Rejection codes carried in OpResult.error.code.
REJECT_CODES = (
    "invalid_op",  # the op itself is malformed (missing op_id, unknown entity, bad id ...)
    "validation",  # a field value is invalid; error.fields says which and why
    "not_found",  # no such record, or not one the caller may see (scope is never revealed)
    "exists",  # create with an id that is already taken
    "deleted",  # update/delete of a record deleted on the server
    "forbidden",  # the caller's role may not write this entity
    "scope",  # the write would put the record in a territory the caller does not have
    "op_id_reused",  # an op id seen before, from another user or for another record
)

ENTITY_NAMES = tuple(ENTITIES)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable reason, e.g. validation, not_found, resync_required")
    message: str = Field(description="what went wrong, for a person")
    fields: dict[str, str] = Field(default_factory=dict, description="field name -> message")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Op(Strict):
    """One local write, as the client queued it."""

    op_id: str = Field(pattern=ID_PATTERN, description="client-generated idempotency key")
    op: OpKind
    entity: str = Field(description="one of: " + ", ".join(ENTITY_NAMES))
    id: str = Field(pattern=ID_PATTERN, description="record id (the client generates it for creates)")
    base_version: int | None = Field(
        default=None, ge=0, le=2**53, description="the version the edit was based on; required for update/delete"
    )
    fields: dict[str, Any] = Field(default_factory=dict, description="changed fields (all fields for a create)")


class BatchRequest(Strict):
    ops: list[dict[str, Any]] = Field(
        max_length=MAX_BATCH_OPS,
        description=f"up to {MAX_BATCH_OPS} ops, applied in order; each is validated on its own as an Op",
    )


class FieldConflict(BaseModel):
    field: str
    server: Any = Field(description="the value on the server, which was kept")
    client: Any = Field(description="the value the op asked for, which was not applied")


class OpResult(BaseModel):
    op_id: str | None
    status: OpStatus
    version: int | None = Field(default=None, description="the record's version after this op")
    record: dict[str, Any] | None = Field(
        default=None, description="the record as the server now has it (absent when deleted or out of scope)"
    )
    in_scope: bool = Field(default=True, description="false: the record left the caller's scope; drop it")
    conflicts: list[FieldConflict] = Field(default_factory=list)
    error: ErrorBody | None = None
    replayed: bool = Field(default=False, description="true: the stored result of an op id already applied")


class BatchResponse(BaseModel):
    results: list[OpResult]


class Segment(BaseModel):
    """A run of changes of one kind. Segments are applied in order, all in one transaction."""

    op: SegmentOp
    entity: str | None = None
    columns: list[str] | None = Field(default=None, description="upsert: the column names of each row")
    rows: list[list[Any]] | None = Field(default=None, description="upsert: one list of values per record")
    ids: list[str] | None = Field(default=None, description="delete/exit: record ids")
    territory: str | None = Field(default=None, description="exit_territory: the territory revoked")


class Progress(BaseModel):
    entity: str | None = None
    done: int = 0
    total: int = 0
    complete: list[str] = Field(default_factory=list, description="entities fully delivered so far")


class ChangePage(BaseModel):
    cursor: str = Field(description="opaque; send it back to get the next page")
    has_more: bool
    phase: Phase
    progress: Progress | None = None
    segments: list[Segment]


class ListPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None = Field(default=None, description="pass as ?after= for the next page")


class TokenTimes(BaseModel):
    expires_at: str | None = Field(None, description="when the token stops working (UTC); null: never")
    renew_after: str | None = Field(None, description="from when the client should renew it (POST /v1/token/renew)")


class Me(BaseModel):
    id: str
    name: str
    role: str
    team: str | None = None
    territories: list[str]
    all_territories: bool = Field(description="true for agents and admins: every customer is in scope")
    token: TokenTimes | None = Field(None, description="the expiry of the token this request used")


class RenewedToken(TokenTimes):
    token: str = Field(description="the new token; the one sent keeps working for an hour")
