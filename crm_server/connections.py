"""Connection limits the HTTP server enforces below the app: read deadlines and connection caps.

uvicorn has a keep-alive timeout (idle time between two requests) and a global
``limit_concurrency``, but nothing that ends a connection that never finishes sending its
request: its keep-alive timer stops at the first byte, so a client dribbling one byte a
second, or one that connects and sends nothing, holds a connection (and a file descriptor)
for ever. Hypercorn's ``read_timeout`` restarts on every read too, and neither counts
connections per client. So :class:`GuardedH11Protocol` extends uvicorn's h11 protocol with:

* a **header deadline**: the request line and headers (and, with TLS, the handshake before
  them) must arrive within ``header_timeout`` seconds of the connection opening or of the
  first byte of a later request on a kept-alive connection;
* a **body deadline**: the whole body must arrive within ``body_timeout`` seconds of the
  headers, also when the app answered early (a 401 or 413) and the rest is only discarded;
* a **send deadline**: a client that takes in less than MIN_SEND_PROGRESS bytes of its answer
  in ``send_timeout`` seconds while the server's write buffer is full is dropped, so an answer
  nobody reads is not kept for ever;
* **connection caps**: at most ``max_per_client`` open connections per client address (per
  /64 network for IPv6) and ``max_connections`` in all (with ``--workers N``: of all N worker
  processes together, :class:`SharedConnectionGuard`). A connection over a cap is closed
  as soon as it is accepted, with a 429 (per client) or 503 (in all) when it is plain HTTP.

A deadline that passes answers ``408`` (if any of the request had arrived) and closes the
connection. TLS is done here too, with ``loop.start_tls`` after the caps are checked, so a
client that never completes a handshake is counted and timed like any other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from crm_server.connection_table import ConnectionTable, Refusal
from crm_server.errors import error_body

log = logging.getLogger("crm_server.connections")

TLS_SHUTDOWN_TIMEOUT = 5.0
MIN_SEND_PROGRESS = 64 * 1024  # bytes per send_timeout: 1 KiB/s at the default 60 s


@dataclass(frozen=True)
class ConnectionLimits:
    """What one server process allows its clients; see the module docstring."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    send_timeout: float = 60.0
    max_connections: int = 1000
    max_per_client: int = 64  # 0: no per-client cap (behind a proxy that has its own)


class ConnectionGuard:
    """Counts the open connections of one server, in all and per client. Used only from the
    event loop's thread, so it needs no lock."""

    def __init__(self, limits: ConnectionLimits):
        self.limits = limits
        self.total = 0
        self.by_client: dict[str, int] = {}

    def admit(self, client: str) -> bytes | None:
        """Count a new connection from ``client``; or, over a cap, the response that refuses it."""
        if self.total >= self.limits.max_connections:
            return self.refusal("total")
        cap = self.limits.max_per_client
        if cap and self.by_client.get(client, 0) >= cap:
            return self.refusal("client")
        self.total += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        """Forget a connection :meth:`admit` counted."""
        self.total -= 1
        left = self.by_client.get(client, 1) - 1
        if left:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)

    def refusal(self, cap: Refusal) -> bytes:
        """The response for a connection over the ``cap`` in all ("total") or per client."""
        if cap == "total":
            return error_response(503, "busy", "the server has too many open connections; retry shortly", retry_after=1)
        return error_response(
            429, "too_many_connections",
            f"more than {self.limits.max_per_client} open connections from your address; close some and retry",
            retry_after=1,
        )


class SharedConnectionGuard(ConnectionGuard):
    """The guard of one worker of several: the caps count the connections of all of them
    (:class:`crm_server.connection_table.ConnectionTable`, shared memory made before the fork)."""

    def __init__(self, limits: ConnectionLimits, table: ConnectionTable, worker: int):
        super().__init__(limits)
        self.table, self.worker = table, worker

    def admit(self, client: str) -> bytes | None:
        cap = self.table.admit(self.worker, client, self.limits.max_connections, self.limits.max_per_client)
        if cap is not None:
            return self.refusal(cap)
        self.total += 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        self.table.release(self.worker, client, per_client=bool(self.limits.max_per_client))


def client_key(peer: Any) -> str:
    """Whom a connection is counted against: its IPv4 address, or its IPv6 /64 network
    (one host usually holds a whole /64, so counting single IPv6 addresses caps nothing)."""
    if not isinstance(peer, tuple) or not peer:
        return "local"
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return str(peer[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def error_response(status: int, code: str, message: str, retry_after: int | None = None) -> bytes:
    """A complete HTTP/1.1 error response in the API's error shape that closes the connection."""
    body = orjson.dumps(error_body(code, message))
    reason = {408: "Request Timeout", 429: "Too Many Requests", 503: "Service Unavailable"}[status]
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}",
            "connection: close"]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


def guarded_protocol(guard: ConnectionGuard, tls: ssl.SSLContext | None) -> type[GuardedH11Protocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for one server."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard, "tls": tls})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and caps of the module docstring."""

    guard: ClassVar[ConnectionGuard]
    tls: ClassVar[ssl.SSLContext | None] = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._client: str | None = None  # set while this connection is counted by the guard
        self._raw: asyncio.Transport | None = None
        self._early = bytearray()  # TLS: request bytes that came with the end of the handshake
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "head" or "body"
        self._send_deadline: asyncio.TimerHandle | None = None
        self._got_bytes = False

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        client = client_key(transport.get_extra_info("peername"))
        refusal = self.guard.admit(client)
        if refusal is not None:
            log.info("refused a connection from %s: over a connection cap", client)
            if self.tls is None:
                transport.write(refusal)
            transport.close()
            return
        self._client, self._raw = client, transport
        self._expect("head")
        if self.tls is None:
            super().connection_made(transport)
        else:
            self.loop.create_task(self._handshake(transport))

    async def _handshake(self, raw: asyncio.Transport) -> None:
        try:
            secure = await self.loop.start_tls(
                raw, self, self.tls, server_side=True,  # type: ignore[arg-type]
                ssl_handshake_timeout=self.guard.limits.header_timeout, ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT,
            )
        except BaseException as exc:  # a failed handshake only ends this connection
            log.debug("TLS handshake with %s failed: %r", self._client, exc)
            self._forget()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if secure is None or secure.is_closing() or self._client is None:
            self._forget()
            return
        super().connection_made(secure)
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.data_received(early)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        if self.transport is not None:  # uvicorn's side was set up
            super().connection_lost(exc)

    def _forget(self) -> None:
        self._cancel_deadline()
        self._cancel_send_deadline()
        if self._client is not None:
            self.guard.release(self._client)
            self._client = None

    # ------------------------------------------------------------------ deadlines

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_deadline is None and self.transport is not None:
            self._arm_send_deadline(self.transport.get_write_buffer_size())

    def _arm_send_deadline(self, buffered: int) -> None:
        self._send_deadline = self.loop.call_later(self.guard.limits.send_timeout, self._send_deadline_passed, buffered)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_send_deadline()

    def _cancel_send_deadline(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _send_deadline_passed(self, buffered_before: int) -> None:
        self._send_deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        buffered = self.transport.get_write_buffer_size()
        if buffered_before - buffered >= MIN_SEND_PROGRESS:
            self._arm_send_deadline(buffered)  # slow, but reading
            return
        log.info("dropped the connection of %s: it took in %d bytes of its answer in %g s", self._client,
                 max(0, buffered_before - buffered), self.guard.limits.send_timeout)
        self.transport.abort()  # the unsent rest of the answer is let go with it

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            if self._client is not None:  # TLS: decrypted before start_tls() returned to us
                self._early += data
            return
        if self._waiting_for is None and self.conn.their_state is h11.IDLE:
            self._expect("head")  # the first bytes of the next request on a kept-alive connection
        self._got_bytes = True
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        # Idle between requests, uvicorn's keep-alive timeout applies until the next bytes arrive.
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._waiting_for != "body":
                self._expect("body")
        elif state is not h11.IDLE:
            self._cancel_deadline()  # the whole request is in (or the connection is ending)

    def _expect(self, what: str) -> None:
        self._cancel_deadline()
        limits = self.guard.limits
        seconds = limits.header_timeout if what == "head" else limits.body_timeout
        if what == "head":
            self._got_bytes = False
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._waiting_for = None, None

    def _deadline_passed(self) -> None:
        what, self._deadline, self._waiting_for = self._waiting_for, None, None
        if self.transport is None:  # still in the TLS handshake
            if self._raw is not None:
                self._raw.abort()
            return
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if what == "body" and self.flow.read_paused and cycle is not None and not cycle.response_started:
            # The app has not asked for more of the body yet: the slow party is the server.
            self._expect("body")
            return
        answered = cycle is not None and cycle.response_started and what == "body"
        part = "headers" if what == "head" else "body"
        limit = self.guard.limits.header_timeout if what == "head" else self.guard.limits.body_timeout
        log.info("closed the connection of %s: the request %s did not arrive within %g s", self._client, part, limit)
        if not answered and (self._got_bytes or what == "body"):
            self.transport.write(error_response(408, "request_timeout", f"the request {part} did not arrive within {limit:g} s"))
        if cycle is not None and not cycle.response_complete:
            # The app sees a client that left: nothing it sends afterwards reaches the wire.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
