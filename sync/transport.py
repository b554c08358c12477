"""How crm-tui's requests reach the network: the one place the httpx client is built.

httpx's timeouts are per read: a server that sends one byte a second never trips them. Here every
request also runs under a deadline for the whole exchange (connect, TLS, headers, body): the
socket reads and writes of the request's thread are given at most the time left before it. The
deadline sits under httpx, in the network backend of its connection pool, so it holds however
slowly the headers or the body drip in.

``build_http_client`` is where TLS settings go (``verify``: True, False, an ``ssl.SSLContext``
or a CA bundle path) and where the environment's proxy settings are honoured.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from httpcore import NetworkBackend, NetworkStream

_local = threading.local()


@contextlib.contextmanager
def request_deadline(at: float | None) -> Iterator[None]:
    """Run the block's network I/O (in this thread) under a deadline on ``time.monotonic()``;
    I/O still waiting when it passes fails with an httpx timeout error."""
    previous = getattr(_local, "at", None)
    _local.at = at
    try:
        yield
    finally:
        _local.at = previous


def deadline_passed() -> bool:
    """Whether this thread's request deadline (if any) has passed."""
    at = getattr(_local, "at", None)
    return at is not None and time.monotonic() >= at


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    at = getattr(_local, "at", None)
    if at is None:
        return timeout
    left: float = at - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(NetworkStream):
    def __init__(self, inner: NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                     _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(NetworkBackend):
    def __init__(self, inner: NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout),
                                                       local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout),
                                                               socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport, its connection pool given the deadline-keeping network backend."""

    def __init__(self, **options: Any):
        super().__init__(**options)
        # httpcore reads the backend each time it opens a connection; httpx (pinned <0.29) offers
        # no argument for it, so it is set on the pool httpx built.
        pool = self._pool
        if not isinstance(getattr(pool, "_network_backend", None), NetworkBackend):
            raise RuntimeError("this httpx/httpcore version has no network backend to put a deadline on")
        pool._network_backend = _DeadlineBackend(pool._network_backend)


def _proxy_for(base_url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, NO_PROXY ...) names for ``base_url``, if any."""
    parts = urlsplit(base_url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def build_http_client(base_url: str, *, headers: dict[str, str], connect_timeout: float, read_timeout: float,
                      verify: ssl.SSLContext | str | bool = True) -> httpx.Client:
    """The httpx client for one server: per-read timeouts as given, a whole-request deadline
    wherever ``request_deadline`` is in effect, redirects never followed, TLS verified with
    ``verify``, the environment's proxy honoured."""
    transport = _DeadlineTransport(verify=verify, proxy=_proxy_for(base_url),
                                   limits=httpx.Limits(max_connections=4, max_keepalive_connections=2))
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout),
        transport=transport,
        follow_redirects=False,
        trust_env=False,  # the transport above already has the environment's proxy
    )
