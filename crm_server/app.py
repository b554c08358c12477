"""The HTTP API (FastAPI): routes, auth, limits. The work happens in feed, batch and the store.

Endpoints are plain ``def`` functions: FastAPI runs them in its thread pool, so SQLite work never
blocks the event loop. The batch endpoint is the exception: it authenticates first, then reads
and checks its body against crm_server.limits, and only then hands the ops to the thread pool. Bodies are encoded with orjson and sent as ready bytes; the pydantic
models of :mod:`crm_tui.core.protocol` document them in ``/openapi.json`` without re-validating them.
"""

from __future__ import annotations

import dataclasses

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from crm_server.accounts import AccountError, renew_token
from crm_server.auth import RateLimiter, Session, TokenGate, authenticate, renew_after, token_gate, utc_text
from crm_server.batch import WriteThrough, apply_batch, batch_ops
from crm_server.errors import Unauthorized
from crm_server.feed import pull_changes
from crm_server.http_errors import install_error_handlers
from crm_server.limits import RequestLimits, read_json
from crm_server.openapi_docs import ERRORS, FEED_ERRORS
from crm_server.reads import ReadRouter
from crm_server.records_api import add_record_routes
from crm_server.scope import load_caller
from crm_server.store import Store
from crm_server.store.tokens import TokenInfo
from crm_tui.core.protocol import (
    CURSOR_PATTERN,
    DEFAULT_PAGE,
    MAX_CURSOR,
    MAX_PAGE,
    PROTOCOL_VERSION,
    BatchRequest,
    BatchResponse,
    ChangePage,
    Me,
    RenewedToken,
)

# The body is read by hand (see batch below), so its schema is documented by hand.
BATCH_SCHEMA = BatchRequest.model_json_schema()
DEFAULT_RATE = 100.0  # requests per second per token, on average


class Health(BaseModel):
    status: str
    protocol: int


def _token_times(expires_at: int | None, info: TokenInfo) -> dict[str, str | None]:
    after = renew_after(info)
    return {"expires_at": utc_text(expires_at) if expires_at is not None else None,
            "renew_after": utc_text(after) if after is not None else None}


def _json(data: object) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def create_app(
    store: Store,
    *,
    rate_limit: float | None = DEFAULT_RATE,
    burst: float | None = None,
    write_through: WriteThrough | None = None,
    reads: ReadRouter | None = None,
) -> FastAPI:
    """The crm-server ASGI app over ``store``.

    ``reads`` serves the change feed and record reads, from a hot standby where it may
    (crm_server/reads.py); by default they come from ``store``. Everything else (tokens, rate
    limits, writes, /v1/me) uses ``store``, the primary.

    ``rate_limit`` is requests per second per token (bursts of ``burst``, default twice the
    rate); None or 0 switches the limit off. ``write_through`` makes the server a gateway:
    batch writes go to the upstream CRM first (crm_server/gateway/).
    """
    app = FastAPI(
        title="crm-server",
        version=f"{PROTOCOL_VERSION}",
        description="The crm-tui sync protocol v1: see docs/sync-protocol.md.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.write_through = write_through
    app.state.reads = reads or ReadRouter(store)
    app.state.limiter = RateLimiter(store, rate_limit, burst) if rate_limit else None
    install_error_handlers(app)
    app.add_middleware(RequestLimits)

    router = APIRouter()

    @router.get("/health", response_model=Health, tags=["meta"], summary="Liveness; needs no token")
    async def health() -> Response:
        """Always 200 while the process serves requests; the protocol version it speaks."""
        return _json({"status": "ok", "protocol": PROTOCOL_VERSION})

    @router.get("/v1/me", response_model=Me, responses=ERRORS, tags=["meta"], summary="Who the token belongs to")
    def me(request: Request, user_id: str = Depends(authenticate)) -> Response:
        """The caller's id, role and scope (the territories they see, or all of them)."""
        with request.app.state.store.read() as tx:
            caller = load_caller(tx, user_id)
        if caller is None:
            raise Unauthorized("this token's user no longer exists or is inactive")
        return _json(
            {
                "id": caller.id,
                "name": caller.name,
                "role": caller.role,
                "team": caller.team,
                "territories": list(caller.territories),
                "all_territories": caller.all_territories,
                "token": _token_times(request.state.session.token.expires_at, request.state.session.token),
            }
        )

    @router.post("/v1/token/renew", response_model=RenewedToken, responses=ERRORS, tags=["meta"],
                 summary="A new token for this one, which expires an hour later")
    def renew(request: Request, user_id: str = Depends(authenticate)) -> Response:
        """A new token with the lifetime of the one sent; the one sent keeps working for
        an hour (or until its own expiry, if sooner). An expired token cannot be renewed."""
        session: Session = request.state.session
        try:
            token, expires_at = renew_token(request.app.state.store, session.token_hash, session.device_id)
        except AccountError as exc:
            raise Unauthorized(str(exc)) from None
        info = dataclasses.replace(session.token, expires_at=expires_at)
        return _json({"token": token, **_token_times(expires_at, info)})

    @router.get(
        "/v1/changes",
        response_model=ChangePage,
        responses=FEED_ERRORS,
        tags=["sync"],
        summary="One page of the change feed (snapshot, backfill or feed)",
    )
    def changes(
        request: Request,
        cursor: str | None = Query(
            None,
            max_length=MAX_CURSOR,
            pattern=CURSOR_PATTERN,
            description="the opaque cursor of the previous page; omit (or empty) to start a snapshot",
        ),
        limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description=f"records per page, 1-{MAX_PAGE}"),
        gate: TokenGate = Depends(token_gate),
    ) -> Response:
        """The next page of records and changes in the caller's scope, and the cursor after it."""
        reads: ReadRouter = request.app.state.reads
        try:
            if reads.standby is None:
                # One read transaction: the token check, then the page.
                body = pull_changes(reads.primary, None, cursor or None, limit, check=gate.check)
            else:
                # A standby may lack a token issued or revoked a moment ago (such writes move no
                # commit it could be waited for): the token is checked on the primary first.
                caller = gate.check_on(reads.primary)
                body = reads.run(lambda store, fresh: pull_changes(store, caller.id, cursor or None, limit,
                                                                   fresh=fresh))
        finally:
            if gate.caller is not None:
                gate.admit(request)
        return Response(body, media_type="application/json")

    @router.post(
        "/v1/batch",
        response_model=BatchResponse,
        responses=ERRORS,
        tags=["sync"],
        summary="Apply up to 1000 ops, one result each",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BATCH_SCHEMA}}}},
    )
    async def batch(request: Request, user_id: str = Depends(authenticate)) -> Response:
        """Apply the ops in order, each on its own; one result per op, in the same order."""
        # The body is read only now, after the token was checked: a stranger's upload is
        # answered 401 without being read. It is checked whole before the database is touched.
        ops = batch_ops(await read_json(request))
        results = await run_in_threadpool(
            apply_batch, request.app.state.store, user_id, ops, write_through=request.app.state.write_through)
        return _json({"results": results})

    add_record_routes(router)
    app.include_router(router)
    return app
