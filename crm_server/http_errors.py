"""The edge where every failure becomes ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from crm_server.errors import ApiError, error_body
from crm_server.store import StoreBusy, StoreError

log = logging.getLogger("crm_server")

_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def json_error(status: int, code: str, message: str, fields: dict[str, str] | None = None, headers=None) -> Response:
    """An error response in the one shape clients parse."""
    return Response(
        orjson.dumps(error_body(code, message, fields)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _validation_fields(exc: RequestValidationError) -> tuple[bool, dict[str, str]]:
    in_body, fields = False, dict[str, str]()
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        where = loc[0] if loc else "body"
        in_body = in_body or where == "body"
        rest = [str(p) for p in loc[1:]]
        if err.get("type") == "json_invalid":
            key, msg = "body", "is not valid JSON: " + str((err.get("ctx") or {}).get("error", "decode error"))
        else:
            key, msg = (".".join(rest) or str(where)), str(err.get("msg", "is invalid"))
        fields.setdefault(key[:200], msg[:500])
    return in_body, fields


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception the app can raise to the error shape; nothing escapes as HTML."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return json_error(exc.status, exc.code, exc.message, exc.fields, exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        in_body, fields = _validation_fields(exc)
        if in_body:
            return json_error(422, "invalid_body", "the request body is not of the right shape", fields)
        if set(fields) == {"cursor"}:
            # Whatever is wrong with it, a cursor the server cannot use is an invalid cursor.
            return json_error(400, "invalid_cursor", "this cursor cannot be read; start again without a cursor", fields)
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
        return json_error(400, "invalid_query", f"bad query parameters ({detail})", fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _CODES.get(exc.status_code, "http_error")
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return json_error(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(StoreBusy)
    async def busy(_: Request, exc: StoreBusy) -> Response:
        return json_error(503, "busy", "the database is busy; retry shortly", headers={"Retry-After": "1"})

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client left (or the server's body timeout cut it off) before its body arrived:
        # nothing was done, and nobody is listening for this answer.
        log.debug("client left during %s %s", request.method, request.url.path)
        return json_error(400, "client_disconnected", "the connection closed before the request body arrived")

    async def bug(request: Request, exc: Exception) -> Response:
        # Only real bugs reach this: everything a client can send is answered with a 4xx above.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return json_error(500, "internal", "the server failed on this request; this is a bug")

    app.add_exception_handler(StoreError, bug)
    app.add_exception_handler(Exception, bug)
