"""Running the app under uvicorn: the listening socket, TLS, the connection guard, and errors
an operator can act on (a port in use, an unreadable certificate) as one line each."""

from __future__ import annotations

import asyncio
import resource
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from crm_server.connection_table import ConnectionTable
from crm_server.connections import ConnectionGuard, ConnectionLimits, SharedConnectionGuard, guarded_protocol
from crm_server.memory import keep_memory_returnable

FILES_KEPT_FREE = 64  # descriptors left for the database pool, logs and the listening socket
BACKLOG = 128  # the kernel's queue of connections not yet accepted; also how many are accepted at once
MAX_HEADER_BYTES = 16 * 1024  # the request line and headers; h11's default, stated here
GRACEFUL_SHUTDOWN = 10  # seconds requests in flight get on SIGTERM


class ServeError(Exception):
    """The server cannot start; the message says why, in one line."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    certfile: str | None = None
    keyfile: str | None = None
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    log_level: str = "warning"
    access_log: bool = False


def default_max_connections(wanted: int = 1000) -> int:
    """``wanted``, or fewer if this process may not open that many files: each connection is
    one, and a burst of BACKLOG more is accepted before the caps can close them."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FILES_KEPT_FREE - BACKLOG))


def tls_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or newer), or None for plain HTTP. Raises ServeError."""
    if certfile is None:
        if keyfile is not None:
            raise ServeError("--ssl-keyfile needs --ssl-certfile too")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except FileNotFoundError as exc:
        raise ServeError(f"cannot read TLS file {exc.filename or certfile}: no such file") from None
    except ssl.SSLError as exc:
        files = certfile if keyfile is None else f"{certfile} and {keyfile}"
        raise ServeError(f"cannot use the TLS certificate and key in {files}: {exc.reason or exc}") from None
    except OSError as exc:
        raise ServeError(f"cannot read TLS file {exc.filename or certfile}: {exc.strerror or exc}") from None
    return context


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: a free port). Raises ServeError."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}") from None
    sock.set_inheritable(True)
    return sock


def serve(make_app: Callable[[], AbstractContextManager[Any]], options: ServeOptions,
          announce: Callable[[str], None], workers: int = 1) -> None:
    """Serve the app ``make_app()`` yields until SIGTERM/SIGINT; ``announce`` gets the URL once
    it accepts connections. With ``workers`` > 1, that many processes (crm_server/workers.py)
    share the listening socket, each with its own app; the connection caps count them all.

    ``make_app`` opens what the app needs (the database, housekeeping) and closes it when its
    block ends: it runs in each worker, never in a process that forks afterwards.
    Raises ServeError before serving if the TLS files or the address cannot be used, or when
    the workers cannot start or keep dying.
    """
    tls = tls_context(options.certfile, options.keyfile)
    sock = listen(options.host, options.port)
    scheme = "https" if tls else "http"
    host = options.host if ":" not in options.host else f"[{options.host}]"
    url = f"{scheme}://{host}:{sock.getsockname()[1]}"
    try:
        if workers == 1:
            with make_app() as app:
                run_uvicorn(app, sock, ConnectionGuard(options.limits), tls, options, lambda: announce(url))
            return
        from crm_server.workers import Supervisor

        table = ConnectionTable(workers, options.limits.max_connections)

        def work(index: int, ready: Callable[[], None]) -> None:
            with make_app() as app:
                run_uvicorn(app, sock, SharedConnectionGuard(options.limits, table, index), tls, options, ready)

        Supervisor(workers, work, forget=table.forget_worker).run(lambda: announce(url))
    finally:
        sock.close()


def run_uvicorn(app: Any, sock: socket.socket, guard: ConnectionGuard, tls: ssl.SSLContext | None,
                options: ServeOptions, ready: Callable[[], None]) -> None:
    """Serve ``app`` on the listening ``sock`` in this process until SIGTERM/SIGINT, then let
    requests in flight finish (GRACEFUL_SHUTDOWN s) and return; ``ready`` is called once it
    accepts connections."""
    config = uvicorn.Config(
        app,
        http=guarded_protocol(guard, tls),
        log_level=options.log_level,
        access_log=options.access_log,
        lifespan="off",
        backlog=BACKLOG,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    stop_trimming = threading.Event()
    keep_memory_returnable(stop_trimming)
    # uvicorn re-raises the signal that stopped it once it has shut down; with the default
    # handlers that would kill the process (SIGTERM) or raise KeyboardInterrupt (SIGINT) before
    # the database is closed. Noted instead, the caller's cleanup runs and the exit is clean.
    previous = {sig: signal.signal(sig, _note_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(Server(config).serve(sockets=[sock]))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_trimming.set()


def _note_stop(signum: int, frame: Any) -> None:
    """A stop signal that arrives after uvicorn has shut down: nothing left to stop."""
