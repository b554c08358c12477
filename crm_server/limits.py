"""Input limits: every request is measured against them before the database is touched.

Each limit is listed, with the answer it gets, in docs/sync-protocol.md ("Limits"). The request
line and headers are bounded by the HTTP parser (h11, 16 KiB); the query string and the body
size by :class:`RequestLimits` while the request arrives; the shape of a JSON body by
:func:`read_json` right after parsing. None of them is near anything an honest client sends:
the largest valid text field is 20,000 characters and a batch op nests 5 levels deep.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_server.errors import InvalidBody
from crm_server.http_errors import json_error
from crm_tui.core.protocol import MAX_BATCH_OPS, MAX_BODY_BYTES

MAX_QUERY_BYTES = 10 * 1024  # the longest cursor is 8,192 characters
MAX_QUERY_PARAMS = 32
MAX_JSON_DEPTH = 8  # {"ops": [{"fields": {"tags": ["x"]}}]} is 5
MAX_OBJECT_KEYS = 64  # fields per op, keys of any object; no entity has half as many fields
MAX_ARRAY_ITEMS = MAX_BATCH_OPS  # ops per batch, items of any array
MAX_STRING_CHARS = 65_536  # any string value
MAX_KEY_CHARS = 128  # any object key
DRAIN_LIMIT = 64 * 1024 * 1024


class RequestLimits:
    """ASGI middleware: ``400`` for a query string over the limits, ``413`` for a body over
    ``max_body`` bytes, declared (Content-Length) or counted as it streams in (chunked)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = query_problem(scope.get("query_string", b""))
        if problem is not None:
            await json_error(400, "invalid_query", problem, {"query": problem})(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await json_error(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
                return
            if int(declared) > self.max_body:
                await _drain(receive, DRAIN_LIMIT)
                await json_error(413, "payload_too_large", self._message())(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    if message.get("more_body"):
                        await _drain(receive, DRAIN_LIMIT)
                    # FastAPI re-raises an HTTPException raised while reading the body, so this
                    # reaches the error handlers and becomes a 413 in the usual shape.
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_body // (1024 * 1024)} MiB; send fewer ops per batch"


def query_problem(query: bytes) -> str | None:
    """Why ``query`` (the raw query string) is over the limits, or None."""
    if len(query) > MAX_QUERY_BYTES:
        return f"the query string is longer than {MAX_QUERY_BYTES} bytes"
    if query.count(b"&") + 1 > MAX_QUERY_PARAMS and len(parse_qsl(query.decode("latin-1"))) > MAX_QUERY_PARAMS:
        return f"more than {MAX_QUERY_PARAMS} query parameters"
    return None


async def read_json(request: Request) -> Any:
    """The request's JSON body, parsed and checked against the limits; raises InvalidBody (422).

    Reading goes through :class:`RequestLimits`, so an oversized body is a 413 before it is
    parsed. Call it only after the caller is authenticated: until then the body is not read.
    """
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if not (kind == "application/json" or kind.endswith("+json")):
        raise InvalidBody("the request body must be JSON", fields={"body": "send Content-Type: application/json"})
    doc = parse_json(await request.body())
    problem = shape_problem(doc)
    if problem is not None:
        where, what = problem
        where = where[:200] or "body"
        raise InvalidBody(f"the request body is over a limit: {where} {what}", fields={where: what})
    return doc


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed as JSON; raises InvalidBody. orjson refuses nesting past 1024 levels
    without recursing on the Python stack, so a deep document costs nothing here."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise InvalidBody("the request body is not valid JSON", fields={"body": f"is not valid JSON: {exc}"}) from None
    # JSON may escape half a UTF-16 pair. orjson refuses the whole document for it; the
    # standard parser keeps it, so the batch can reject only the op that carries it.
    try:
        return json.loads(raw)
    except RecursionError:
        raise InvalidBody("the request body is nested too deeply", fields={"body": f"nests deeper than {MAX_JSON_DEPTH} levels"}) from None
    except ValueError as exc:
        raise InvalidBody("the request body is not valid JSON", fields={"body": f"is not valid JSON: {exc}"}) from None


def shape_problem(doc: Any) -> tuple[str, str] | None:
    """The first place where ``doc`` breaks a limit, as (dotted path, what is wrong), or None.

    Walks the document with an explicit stack: no recursion, whatever the input."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                return path, f"is longer than {MAX_STRING_CHARS} characters"
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            return path, f"nests deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            if len(value) > MAX_OBJECT_KEYS:
                return path, f"has more than {MAX_OBJECT_KEYS} keys"
            for key, item in value.items():
                if len(key) > MAX_KEY_CHARS:
                    return path, f"has a key longer than {MAX_KEY_CHARS} characters"
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        else:
            if len(value) > MAX_ARRAY_ITEMS:
                return path, f"has more than {MAX_ARRAY_ITEMS} items"
            stack.extend((item, f"{path}.{i}" if path else str(i), depth + 1) for i, item in enumerate(value))
    return None


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop the rest of a refused body, so the client gets to read our 413 instead of
    a reset connection while it is still writing. Past ``limit`` bytes we stop and let the
    connection close; the server's body timeout bounds how long this can take."""
    dropped = 0
    while dropped <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body"):
            return


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1").strip()
    return None
