"""A real TCP relay that counts round trips: put it between a client and a server (PostgreSQL),
and it counts how often the client spoke again after the server had answered.

A client that sends a statement and waits for its answer makes one round trip per statement;
psycopg's pipeline mode sends several statements and then waits once: one round trip. That is
what :attr:`RoundTripRelay.round_trips` counts (each turn from server-to-client traffic back to
client-to-server traffic, over every connection through the relay), so a test can count the
waits a request costs without timing anything::

    with RoundTripRelay(port) as relay:
        store = open_store(f"postgresql://postgres@127.0.0.1:{relay.port}/db")
        relay.reset()
        ...
        assert relay.round_trips <= 20
"""

from __future__ import annotations

import socket
import threading
from typing import Any


class RoundTripRelay:
    """Forwards 127.0.0.1:``port`` (a free one) to ``upstream_port``; one thread per direction
    and connection. Round trips are counted per connection and summed."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._turns = 0
        self._last: dict[int, str] = {}  # connection -> the direction of its last bytes
        self._socks: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def round_trips(self) -> int:
        with self._lock:
            return self._turns

    def reset(self) -> None:
        with self._lock:
            self._turns = 0

    def __enter__(self) -> RoundTripRelay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._stopped = True
        self._listener.close()
        for s in list(self._socks):
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        n = 0
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks += [client, server]
            n += 1
            self._last[n] = "s2c"  # the first bytes from the client are its first round trip
            threading.Thread(target=self._pipe, args=(n, client, server, "c2s"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(n, server, client, "s2c"), daemon=True).start()

    def _pipe(self, conn: int, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    if direction == "c2s" and self._last[conn] == "s2c":
                        self._turns += 1
                    self._last[conn] = direction
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
