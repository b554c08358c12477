"""A real, misbehaving HTTP/1.1 proxy for network-fault tests.

`FaultProxy` listens on ``127.0.0.1`` on a free port, in a background thread
running its own asyncio event loop, and forwards every request to a real
upstream HTTP server. Rules, added and removed while it runs (from any
thread), make chosen requests misbehave: an injected status, a delay, a hang,
a closed connection before or *after* the upstream applied the request, a
truncated body, a replaced body or a rewritten JSON document. Nothing is
mocked: the client under test talks to a real socket of a real server.

Import it as ``support.faultproxy``: pyproject.toml's ``pythonpath = ["tests"]``
puts tests/ on sys.path for every test module.

Usage::

    from support.faultproxy import FaultProxy, drop_after_upstream, status

    with FaultProxy(upstream="http://127.0.0.1:8000") as proxy:
        client = httpx.Client(base_url=proxy.url)

        # The next two POSTs to /v1/batch get a 503 without reaching upstream.
        rule = proxy.add_rule(status(503, headers={"Retry-After": "1"}),
                              method="POST", path="/v1/batch", times=2)

        # The upstream applies the next write, but the client never hears back
        # (httpx raises httpx.RemoteProtocolError).
        proxy.add_rule(drop_after_upstream(), path="/v1/batch", times=1)

        ...
        assert rule.hits == 2
        assert proxy.requests.count(("POST", "/v1/batch")) == 3
        proxy.clear()            # remove every rule; the proxy passes through again

Rules are tried in the order they were added; the first active rule whose
match accepts a request handles it. ``times=N`` makes a rule expire after N
matching requests, ``times=None`` (the default) keeps it forever. A request
no rule matches is passed through unchanged.

Matching (keyword arguments of `FaultProxy.add_rule`, all optional, combined
with AND): ``method`` ("POST" or a collection of methods), ``path`` (a prefix
that respects path segments: "/v1/changes" matches "/v1/changes" and
"/v1/changes/7", and any query string, but not "/v1/changesets"; a prefix
containing "?" is compared with the whole request target), and ``match`` (a
`Match`, a path-prefix string, or a callable taking the `SeenRequest`, so it
can look at headers and the body).

Faults, and what httpx 0.28 raises for them (verified in
tests/support_tests/test_faultproxy.py):

- ``status(code, body=b"", headers=None)``: no exception, a response ``code``
  that never reached upstream.
- ``delay(seconds)``: ``httpx.ReadTimeout`` if ``seconds`` exceeds the read
  timeout; upstream still gets the request once the delay is over.
  ``delay(seconds, after_upstream=True)``: the same, but upstream got the
  request at once and only the answer is held back.
- ``hang()``: ``httpx.ReadTimeout`` (``httpx.RemoteProtocolError`` if the
  proxy stops first); upstream never sees the request.
- ``drop_before()``: ``httpx.RemoteProtocolError`` ("Server disconnected
  without sending a response."); upstream never sees the request.
- ``drop_after_upstream()``: ``httpx.RemoteProtocolError`` as well, but the
  upstream DID apply the request.
- ``drop_before(reset=True)`` / ``drop_after_upstream(reset=True)``:
  ``httpx.ReadError`` ("Connection reset by peer").
- ``truncate(n)``: ``httpx.RemoteProtocolError`` ("peer closed connection
  without sending complete message body"), unless n >= the body length.
- ``replace_body(body, content_type="text/html; charset=utf-8")``: no
  exception; the upstream status (or ``status=``) with another body.
- ``transform_json(fn)``: no exception; the upstream status with
  ``json.dumps(fn(upstream_json))`` as the body.
- ``drip(interval, head=False)``: forward, then send the answer one byte every
  ``interval`` seconds (the head too if ``head=True``): a per-read timeout never
  trips; ``httpx`` waits for ever unless the client has an overall deadline.
- ``endless(content_type=...)``: answer 200 with a chunked body that never ends
  (up to ``max_bytes``), without contacting upstream; the fault counts
  ``bytes_sent`` until the client hangs up.
- ``answer(fn)``: answer ``fn(request)`` — a `Response` — without contacting
  upstream: a made-up server, e.g. a change feed that never ends.
- ``gate()``: hold matching requests until the test calls ``.open()``, then forward
  them; ``.entered`` is set when the first one arrives. Keeps a client busy for
  exactly as long as a test needs, with no guessing at durations.
  ``gate(after_upstream=True)`` forwards first and holds the answer.

For assertions: `FaultProxy.requests` lists ``(method, path)`` of every
request received (the query string left off), `FaultProxy.seen` the full
`SeenRequest` records (target, headers, body and the fault applied), each
`Rule` counts its ``hits``, `FaultProxy.connections` the client connections
accepted (keep-alive checks), and `FaultProxy.errors` keeps the proxy's own
failures (an unreachable upstream, a transform that raised...), which it
answers with a 502 (504 for an upstream timeout).

The proxy opens a fresh upstream connection for every request (sending
``Connection: close``) and re-frames every response with Content-Length, so
chunked upstream responses reach the client de-chunked. Client connections
are kept alive between requests unless a fault closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

__all__ = [
    "Exchange",
    "Fault",
    "FaultProxy",
    "Match",
    "Response",
    "Rule",
    "SeenRequest",
    "UpstreamError",
    "answer",
    "delay",
    "drip",
    "drop_after_upstream",
    "drop_before",
    "endless",
    "gate",
    "hang",
    "passthrough",
    "replace_body",
    "status",
    "transform_json",
    "truncate",
]

_READ_SIZE = 65536
# Headers that describe one connection, not the message: never forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

HeadersLike = Mapping[str, str] | Collection[tuple[str, str]] | None


def _header_list(headers: HeadersLike) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def _get_header(headers: list[tuple[str, str]], name: str, default: str | None = None) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return default


def _without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def _to_body(body: bytes | str | Any) -> tuple[bytes, str | None]:
    """bytes stay bytes, str is UTF-8 encoded, anything else is serialised as JSON."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), None
    if isinstance(body, str):
        return body.encode("utf-8"), None
    return json.dumps(body).encode("utf-8"), "application/json"


# --------------------------------------------------------------------------- records


@dataclass
class SeenRequest:
    """One request as the proxy received it from the client."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    fault: str | None = None
    """Name of the fault that handled it (e.g. "status(503)"), None if no rule matched."""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str, default: str | None = None) -> str | None:
        return _get_header(self.headers, name, default)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    """A complete, de-chunked HTTP response (from upstream, or made up by a fault)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reason: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return _get_header(self.headers, name, default)

    def decoded_body(self) -> bytes:
        """The body with any gzip/deflate Content-Encoding undone."""
        encoding = (self.header("content-encoding") or "identity").strip().lower()
        if encoding in ("", "identity"):
            return self.body
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(self.body)
        if encoding == "deflate":
            try:
                return zlib.decompress(self.body)
            except zlib.error:
                return zlib.decompress(self.body, -zlib.MAX_WBITS)
        raise ValueError(f"cannot decode Content-Encoding {encoding!r}")

    def json(self) -> Any:
        return json.loads(self.decoded_body())

    def with_body(self, body: bytes, content_type: str | None = None, status: int | None = None) -> Response:
        """A copy with another (unencoded) body and, optionally, Content-Type and status."""
        headers = _without(self.headers, "content-length", "content-encoding", "etag")
        if content_type is not None:
            headers = [*_without(headers, "content-type"), ("Content-Type", content_type)]
        return Response(
            status=self.status if status is None else status,
            headers=headers,
            body=body,
            reason="" if status is not None else self.reason,
        )


class UpstreamError(Exception):
    """The upstream could not be reached, or answered with something unreadable."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


# --------------------------------------------------------------------------- matching


def _path_prefix_matches(prefix: str, target: str) -> bool:
    if "?" in prefix:
        return target.startswith(prefix)
    path = target.split("?", 1)[0]
    stem = prefix.rstrip("/")
    if not stem:
        return True
    return path == stem or path.startswith(stem + "/")


@dataclass(frozen=True)
class Match:
    """Which requests a rule applies to; every given criterion must hold."""

    method: str | Collection[str] | None = None
    path: str | None = None
    predicate: Callable[[SeenRequest], bool] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.method, str):
            object.__setattr__(self, "method", frozenset({self.method.upper()}))
        elif self.method is not None:
            object.__setattr__(self, "method", frozenset(m.upper() for m in self.method))

    def __call__(self, request: SeenRequest) -> bool:
        if self.method is not None and request.method.upper() not in self.method:
            return False
        if self.path is not None and not _path_prefix_matches(self.path, request.target):
            return False
        return self.predicate is None or bool(self.predicate(request))


@dataclass(eq=False)
class Rule:
    """A fault and the requests it applies to. `hits` counts the requests it handled."""

    fault: Fault
    match: Callable[[SeenRequest], bool]
    times: int | None = None
    hits: int = 0

    @property
    def active(self) -> bool:
        return self.times is None or self.hits < self.times

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(self.times - self.hits, 0)

    def __repr__(self) -> str:
        return f"Rule({self.fault!r}, match={self.match!r}, times={self.times}, hits={self.hits})"


# --------------------------------------------------------------------------- faults


class Fault:
    """How the proxy handles a request. Subclass and override `handle` for new faults.

    The base class passes the request through unchanged.
    """

    name = "passthrough"

    async def handle(self, exchange: Exchange) -> None:
        await exchange.respond(await exchange.forward())

    def __repr__(self) -> str:
        return self.name


class _Status(Fault):
    def __init__(self, code: int, body: bytes, headers: list[tuple[str, str]], close: bool) -> None:
        self.code, self.body, self.headers, self.close = code, body, headers, close
        self.name = f"status({code})"

    async def handle(self, exchange: Exchange) -> None:
        await exchange.respond(Response(self.code, list(self.headers), self.body), close=self.close)


class _Delay(Fault):
    def __init__(self, seconds: float, after_upstream: bool) -> None:
        self.seconds, self.after_upstream = seconds, after_upstream
        self.name = f"delay({seconds}{', after_upstream=True' if after_upstream else ''})"

    async def handle(self, exchange: Exchange) -> None:
        if self.after_upstream:
            response = await exchange.forward()
            await asyncio.sleep(self.seconds)
        else:
            await asyncio.sleep(self.seconds)
            response = await exchange.forward()
        await exchange.respond(response)


class _Hang(Fault):
    name = "hang()"

    async def handle(self, exchange: Exchange) -> None:
        await exchange.hang()


class _Drop(Fault):
    def __init__(self, after_upstream: bool, reset: bool) -> None:
        self.after_upstream, self.reset = after_upstream, reset
        base = "drop_after_upstream" if after_upstream else "drop_before"
        self.name = f"{base}({'reset=True' if reset else ''})"

    async def handle(self, exchange: Exchange) -> None:
        if self.after_upstream:
            await exchange.forward()
        exchange.drop(reset=self.reset)


class _Truncate(Fault):
    def __init__(self, n_bytes: int) -> None:
        self.n_bytes = n_bytes
        self.name = f"truncate({n_bytes})"

    async def handle(self, exchange: Exchange) -> None:
        await exchange.respond_truncated(await exchange.forward(), self.n_bytes)


class _ReplaceBody(Fault):
    def __init__(self, body: bytes, content_type: str | None, status: int | None) -> None:
        self.body, self.content_type, self.status = body, content_type, status
        self.name = f"replace_body({len(body)} bytes)"

    async def handle(self, exchange: Exchange) -> None:
        response = await exchange.forward()
        await exchange.respond(response.with_body(self.body, self.content_type, self.status))


class _TransformJSON(Fault):
    def __init__(self, fn: Callable[[Any], Any], status: int | None) -> None:
        self.fn, self.status = fn, status
        self.name = f"transform_json({getattr(fn, '__name__', 'fn')})"

    async def handle(self, exchange: Exchange) -> None:
        response = await exchange.forward()
        body = json.dumps(self.fn(response.json())).encode("utf-8")
        await exchange.respond(response.with_body(body, "application/json", self.status))


class _Drip(Fault):
    def __init__(self, interval: float, head: bool) -> None:
        self.interval, self.head = interval, head
        self.bytes_sent = 0
        self.name = f"drip({interval}{', head=True' if head else ''})"

    async def handle(self, exchange: Exchange) -> None:
        response = await exchange.forward()
        head, body = exchange.serialize(response)
        if not self.head:
            exchange.write(head)
            await exchange.drain()
            head = b""
        for i in range(len(head) + len(body)):
            await asyncio.sleep(self.interval)
            if exchange.client_gone:
                break
            byte = (head[i : i + 1]) if i < len(head) else body[i - len(head) : i - len(head) + 1]
            self.bytes_sent += 1  # counted before it leaves: a client that has it all sees the full count
            exchange.write(byte)
            await exchange.drain()


class _Endless(Fault):
    def __init__(self, content_type: str, chunk: bytes, max_bytes: int) -> None:
        self.content_type, self.chunk, self.max_bytes = content_type, chunk, max_bytes
        self.bytes_sent = 0
        self.finished = threading.Event()  # set when it stopped sending (client gone, or max_bytes)
        self.name = "endless()"

    async def handle(self, exchange: Exchange) -> None:
        try:
            # No Content-Length: h11 sends the body chunked, so nothing announces where it ends.
            exchange.write(exchange.head_only(200, [("Content-Type", self.content_type)]))
            await exchange.drain()
            while self.bytes_sent < self.max_bytes and not exchange.client_gone:
                exchange.write(exchange.data(self.chunk))
                await exchange.drain()
                self.bytes_sent += len(self.chunk)
            exchange.drop()
        finally:
            self.finished.set()


class _Answer(Fault):
    def __init__(self, fn: Callable[[SeenRequest], Response]) -> None:
        self.fn = fn
        self.name = f"answer({getattr(fn, '__name__', 'fn')})"

    async def handle(self, exchange: Exchange) -> None:
        await exchange.respond(self.fn(exchange.request))


class Gate(Fault):
    """Holds requests until ``open()`` (see ``gate``)."""

    def __init__(self, after_upstream: bool = False) -> None:
        self.after_upstream = after_upstream
        self.name = f"gate({'after_upstream=True' if after_upstream else ''})"
        self.entered = threading.Event()
        self._open = threading.Event()

    def open(self) -> None:
        self._open.set()

    async def handle(self, exchange: Exchange) -> None:
        response = await exchange.forward() if self.after_upstream else None
        self.entered.set()
        while not self._open.is_set():
            await asyncio.sleep(0.02)
        await exchange.respond(response if response is not None else await exchange.forward())


def gate(*, after_upstream: bool = False) -> Gate:
    """Hold matching requests until ``.open()`` is called, then forward them; ``.entered`` (an
    Event) is set when the first arrives. With ``after_upstream`` the request is forwarded first
    and its answer held: ``.entered`` then means the upstream has answered."""
    return Gate(after_upstream)


def drip(interval: float, *, head: bool = False) -> Fault:
    """Forward, then send the answer one byte every ``interval`` seconds (its head at once,
    unless ``head=True``). The returned fault counts ``bytes_sent`` (dripped bytes)."""
    return _Drip(interval, head)


def endless(content_type: str = "application/json", *, chunk: bytes = b"[" * 65536,
            max_bytes: int = 1 << 30) -> Fault:
    """Answer 200 with a body that never ends (stops after ``max_bytes``, or when the client
    hangs up); upstream never sees the request. The fault counts ``bytes_sent``; its
    ``finished`` event is set once it stopped."""
    return _Endless(content_type, chunk, max_bytes)


def answer(fn: Callable[[SeenRequest], Response]) -> Fault:
    """Answer with ``fn(request)`` (a `Response`); upstream never sees the request."""
    return _Answer(fn)


def passthrough() -> Fault:
    """Forward unchanged (a rule with it counts matching requests, or shadows later rules)."""
    return Fault()


def status(
    code: int,
    body: bytes | str | Any = b"",
    headers: HeadersLike = None,
    *,
    content_type: str | None = None,
    close: bool = False,
) -> Fault:
    """Answer ``code`` without contacting upstream.

    ``body`` may be bytes, str (UTF-8) or any JSON-serialisable object (sent as
    application/json). ``close=True`` closes the connection after the response.
    """
    data, guessed_type = _to_body(body)
    header_list = _header_list(headers)
    content_type = content_type or guessed_type
    if content_type is not None:
        header_list = [*_without(header_list, "content-type"), ("Content-Type", content_type)]
    elif data and _get_header(header_list, "content-type") is None:
        header_list.append(("Content-Type", "text/plain; charset=utf-8"))
    return _Status(code, data, header_list, close)


def delay(seconds: float, *, after_upstream: bool = False) -> Fault:
    """Wait ``seconds``, then forward and answer normally.

    The request is forwarded after the wait even if the client gave up meanwhile.
    With ``after_upstream=True`` the request is forwarded first (so upstream applies
    it at once) and only the answer is held back.
    """
    return _Delay(seconds, after_upstream)


def hang() -> Fault:
    """Never answer; the connection stays open until the client closes it or the proxy stops."""
    return _Hang()


def drop_before(*, reset: bool = False) -> Fault:
    """Close the client connection without a response; upstream never sees the request.

    ``reset=True`` aborts the connection with a TCP RST instead of a FIN.
    """
    return _Drop(after_upstream=False, reset=reset)


def drop_after_upstream(*, reset: bool = False) -> Fault:
    """Forward the request (upstream applies it), then close the client connection unanswered."""
    return _Drop(after_upstream=True, reset=reset)


def truncate(n_bytes: int) -> Fault:
    """Forward, then send the upstream headers (with the full Content-Length) and only the
    first ``n_bytes`` of the body, and close."""
    if n_bytes < 0:
        raise ValueError("n_bytes must be >= 0")
    return _Truncate(n_bytes)


def replace_body(
    body: bytes | str | Any,
    content_type: str | None = "text/html; charset=utf-8",
    *,
    status: int | None = None,
) -> Fault:
    """Forward, then answer with the upstream status (or ``status``) and another body.

    ``body`` may be bytes, str or a JSON-serialisable object; for the latter the
    Content-Type is application/json unless given. ``content_type=None`` keeps
    the upstream Content-Type.
    """
    data, guessed_type = _to_body(body)
    if guessed_type is not None and content_type == "text/html; charset=utf-8":
        content_type = guessed_type
    return _ReplaceBody(data, content_type, status)


def transform_json(fn: Callable[[Any], Any], *, status: int | None = None) -> Fault:
    """Forward, parse the upstream JSON body, answer with ``json.dumps(fn(document))``.

    ``fn``'s return value is what is sent (return the document if you mutate it in
    place). If ``fn`` raises, or the body is no JSON, the client gets a 502 and the
    error lands in `FaultProxy.errors`.
    """
    return _TransformJSON(fn, status)


# --------------------------------------------------------------------------- exchange


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(_READ_SIZE))


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _decode_headers(headers: h11.Headers) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw_items()]


def _abort_with_reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Exchange:
    """One request/response cycle on a client connection, as seen by a `Fault`."""

    def __init__(
        self,
        proxy: FaultProxy,
        request: SeenRequest,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proxy = proxy
        self.request = request
        self._conn = conn
        self._reader = reader
        self._writer = writer
        self.started = False  # a response (or part of one) went out
        self.close_connection = False
        self.reset = False

    async def forward(self) -> Response:
        """Send the request upstream on a fresh connection; return its complete response."""
        try:
            return await asyncio.wait_for(self._forward(), self.proxy.upstream_timeout)
        except TimeoutError as exc:
            raise UpstreamError(
                f"upstream timed out after {self.proxy.upstream_timeout}s", timeout=True
            ) from exc
        except (OSError, h11.ProtocolError) as exc:
            raise UpstreamError(f"upstream failed: {exc!r}") from exc

    async def _forward(self) -> Response:
        proxy, request = self.proxy, self.request
        connection_tokens = {
            token.strip().lower()
            for value in (v for k, v in request.headers if k.lower() == "connection")
            for token in value.split(",")
        }
        headers = [("Host", proxy.upstream_netloc)]
        headers += [
            (k, v)
            for k, v in request.headers
            if k.lower() not in _HOP_BY_HOP
            and k.lower() not in connection_tokens
            and k.lower() not in ("host", "content-length", "expect")
        ]
        if request.body or request.method.upper() in _METHODS_WITH_BODY:
            headers.append(("Content-Length", str(len(request.body))))
        headers.append(("Connection", "close"))

        reader, writer = await asyncio.open_connection(proxy.upstream_host, proxy.upstream_port)
        try:
            conn = h11.Connection(h11.CLIENT)
            target = proxy.upstream_base_path + request.target
            out = conn.send(
                h11.Request(method=request.method, target=target, headers=_encode_headers(headers))
            )
            if request.body:
                out += conn.send(h11.Data(data=request.body))
            out += conn.send(h11.EndOfMessage())
            writer.write(out)
            await writer.drain()

            response: Response | None = None
            body = bytearray()
            while True:
                event = await _next_event(conn, reader)
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    response = Response(
                        status=event.status_code,
                        headers=_decode_headers(event.headers),
                        reason=event.reason.decode("latin-1"),
                    )
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:  # ConnectionClosed before the end of the message
                    raise UpstreamError(f"upstream closed the connection early ({event!r})")
            assert response is not None
            response.body = bytes(body)
            return response
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _head(self, response: Response, content_length: int | None) -> bytes:
        headers = [
            (k, v)
            for k, v in response.headers
            if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
        ]
        if self.request.method.upper() == "HEAD":
            upstream_length = response.header("content-length")
            if upstream_length is not None:
                headers.append(("Content-Length", upstream_length))
        elif response.status >= 200 and response.status not in (204, 304) and content_length is not None:
            headers.append(("Content-Length", str(content_length)))
        self.started = True
        return self._conn.send(
            h11.Response(
                status_code=response.status,
                headers=_encode_headers(headers),
                reason=response.reason.encode("latin-1"),
            )
        )

    def _sends_body(self, response: Response) -> bool:
        return (
            self.request.method.upper() != "HEAD"
            and response.status >= 200
            and response.status not in (204, 304)
        )

    async def respond(self, response: Response, *, close: bool = False) -> None:
        """Send a complete response, framed with Content-Length."""
        out = self._head(response, len(response.body))
        if response.body and self._sends_body(response):
            out += self._conn.send(h11.Data(data=response.body))
        out += self._conn.send(h11.EndOfMessage())
        self._writer.write(out)
        await self._writer.drain()
        if close:
            self.close_connection = True

    async def respond_truncated(self, response: Response, n_bytes: int) -> None:
        """Send the head with the full Content-Length, then ``n_bytes`` of the body, then close."""
        out = self._head(response, len(response.body))
        partial = response.body[:n_bytes]
        if partial and self._sends_body(response):
            out += self._conn.send(h11.Data(data=partial))
        self._writer.write(out)
        await self._writer.drain()
        self.close_connection = True

    def serialize(self, response: Response) -> tuple[bytes, bytes]:
        """A complete response as bytes, head and body apart, for faults that send it themselves."""
        head = self._head(response, len(response.body))
        body = self._conn.send(h11.Data(data=response.body)) if response.body and self._sends_body(response) else b""
        return head, body + self._conn.send(h11.EndOfMessage())

    def head_only(self, code: int, headers: list[tuple[str, str]]) -> bytes:
        """A response head without Content-Length: its body goes out chunked (see ``data``)."""
        self.started = True
        return self._conn.send(h11.Response(status_code=code, headers=_encode_headers(headers)))

    def data(self, chunk: bytes) -> bytes:
        return self._conn.send(h11.Data(data=chunk))

    def write(self, data: bytes) -> None:
        self.started = True
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    @property
    def client_gone(self) -> bool:
        """The client closed (or reset) the connection."""
        return self._writer.transport.is_closing() or self._reader.at_eof()

    def drop(self, *, reset: bool = False) -> None:
        """Close the client connection (after whatever was sent so far)."""
        self.close_connection = True
        self.reset = reset

    async def hang(self) -> None:
        """Send nothing until the client closes the connection (or the proxy stops)."""
        with contextlib.suppress(OSError):
            while await self._reader.read(_READ_SIZE):
                pass
        self.close_connection = True


# --------------------------------------------------------------------------- proxy


class FaultProxy:
    """An HTTP/1.1 forward-to-one-upstream proxy with injectable faults. See the module docstring."""

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_netloc = parts.netloc
        self.upstream_base_path = parts.path.rstrip("/")
        self.upstream_timeout = upstream_timeout
        self.host = host
        self._requested_port = port
        self.port: int | None = None

        self._lock = threading.RLock()
        self._rules: list[Rule] = []
        self._seen: list[SeenRequest] = []
        self._errors: list[BaseException] = []
        self._connections = 0

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FaultProxy is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("FaultProxy already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"FaultProxy({self.upstream})", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=5):
            raise RuntimeError("FaultProxy did not start within 5 s")
        if self._startup_error is not None:
            self._thread.join(timeout=1)
            self._thread = None
            raise self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close every connection (hung ones included) and join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("FaultProxy thread did not stop")
        self._thread = None
        self._loop = None
        self._stop_event = None
        self.port = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - surfaced through start()
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            server = await asyncio.start_server(self._serve_connection, self.host, self._requested_port)
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
            for _ in range(3):  # let the transports' close callbacks run
                await asyncio.sleep(0)

    # ---- rules

    def add_rule(
        self,
        fault: Fault,
        *,
        match: Match | str | Callable[[SeenRequest], bool] | None = None,
        method: str | Collection[str] | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> Rule:
        """Apply ``fault`` to the next ``times`` matching requests (forever if None).

        ``match`` is a `Match`, a path prefix, or a callable on `SeenRequest`;
        ``method`` and ``path`` add further conditions. Returns the `Rule`, whose
        ``hits`` counts the requests it handled.
        """
        if not isinstance(fault, Fault):
            raise TypeError(f"fault must be a Fault, got {fault!r}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        conditions: list[Callable[[SeenRequest], bool]] = []
        if isinstance(match, str):
            conditions.append(Match(path=match))
        elif match is not None:
            conditions.append(match)
        if method is not None or path is not None:
            conditions.append(Match(method=method, path=path))
        if not conditions:
            matcher: Callable[[SeenRequest], bool] = Match()
        elif len(conditions) == 1:
            matcher = conditions[0]
        else:
            matcher = Match(predicate=lambda req: all(cond(req) for cond in conditions))
        rule = Rule(fault=fault, match=matcher, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove_rule(self, rule: Rule) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule (requests in flight keep the fault they already got)."""
        with self._lock:
            self._rules.clear()

    def reset_log(self) -> None:
        """Forget the recorded requests, errors and connection count."""
        with self._lock:
            self._seen.clear()
            self._errors.clear()
            self._connections = 0

    @property
    def rules(self) -> list[Rule]:
        """The rules still active, in the order they are tried."""
        with self._lock:
            return list(self._rules)

    # ---- records

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request received, in order (query strings left off)."""
        with self._lock:
            return [(r.method, r.path) for r in self._seen]

    @property
    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    @property
    def errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._errors)

    @property
    def connections(self) -> int:
        """How many client connections the proxy accepted (to check keep-alive)."""
        with self._lock:
            return self._connections

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched ``method`` and the path prefix ``path`` (as in rules)."""
        matcher = Match(method=method, path=path)
        with self._lock:
            return sum(1 for r in self._seen if matcher(r))

    def _select(self, request: SeenRequest) -> Fault:
        with self._lock:
            self._seen.append(request)
            for rule in self._rules:
                if rule.active and rule.match(request):
                    rule.hits += 1
                    if not rule.active:
                        self._rules.remove(rule)
                    request.fault = rule.fault.name
                    return rule.fault
        return _PASSTHROUGH

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    # ---- serving

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        with self._lock:
            self._connections += 1
        conn = h11.Connection(h11.SERVER)
        reset = False
        try:
            while True:
                event = await _next_event(conn, reader)
                if not isinstance(event, h11.Request):
                    break  # ConnectionClosed between requests
                if conn.they_are_waiting_for_100_continue:
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                body = bytearray()
                while True:
                    part = await _next_event(conn, reader)
                    if isinstance(part, h11.Data):
                        body += part.data
                    elif isinstance(part, h11.EndOfMessage):
                        break
                    else:
                        return  # the client went away mid-request
                request = SeenRequest(
                    method=event.method.decode("ascii"),
                    target=event.target.decode("latin-1"),
                    headers=_decode_headers(event.headers),
                    body=bytes(body),
                )
                exchange = Exchange(self, request, conn, reader, writer)
                await self._handle(exchange)
                reset = exchange.reset
                if exchange.close_connection:
                    break
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    break
        except h11.RemoteProtocolError as exc:
            self._record_error(exc)
            with contextlib.suppress(Exception):
                writer.write(conn.send(h11.Response(status_code=400, headers=[(b"Content-Length", b"0")])))
                writer.write(conn.send(h11.EndOfMessage()))
        except OSError:
            pass  # the client reset the connection
        except asyncio.CancelledError:
            # Only stop() cancels handlers. Swallowed, because on 3.11 the streams
            # callback would log a cancelled handler task as an error.
            reset = False
        finally:
            if task is not None:
                self._tasks.discard(task)
            if reset:
                _abort_with_reset(writer)
            else:
                writer.close()

    async def _handle(self, exchange: Exchange) -> None:
        try:
            fault = self._select(exchange.request)
            await fault.handle(exchange)
        except (ConnectionError, BrokenPipeError):
            exchange.drop()  # the client is gone
            return
        except Exception as exc:
            self._record_error(exc)
            if exchange.started:
                exchange.drop()
                return
            code = 504 if isinstance(exc, UpstreamError) and exc.timeout else 502
            message = f"faultproxy: {type(exc).__name__}: {exc}".encode()
            reply = Response(code, [("Content-Type", "text/plain; charset=utf-8")], message)
            with contextlib.suppress(Exception):
                await exchange.respond(reply, close=True)
            exchange.drop()
            return
        if not exchange.started and not exchange.close_connection:
            self._record_error(RuntimeError(f"{fault!r} neither answered nor dropped the request"))
            exchange.drop()


_PASSTHROUGH = Fault()
