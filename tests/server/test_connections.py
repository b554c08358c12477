"""Slow, idle and too many connections, over real sockets against the real server: none of them
locks anyone else out, and each is cut off after its deadline."""

from __future__ import annotations

import json
import select
import socket
import time

import httpx
import pytest
import trustme

from crm_server.connections import client_key
from support.certs import tls_server_options, write_server_cert
from support.server import UserSpec

DEADLINE = 30.0  # seconds any wait in these tests may take before it counts as "never"


def _connect(srv, source: str = "127.0.0.1", send: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=DEADLINE, source_address=(source, 0))
    if send:
        sock.sendall(send)
    return sock


def _health(srv, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source, verify=srv.verify)
    with httpx.Client(transport=transport, timeout=DEADLINE) as c:
        return c.get(srv.url + "/health")


def _read_until_closed(sock: socket.socket, trickle: bytes = b"") -> bytes:
    """Everything the server sends until it closes the connection, sending ``trickle`` one byte
    at a time meanwhile (a slowloris). Fails if the server keeps the connection past DEADLINE."""
    received, end = b"", time.monotonic() + DEADLINE
    pending = list(trickle)
    while time.monotonic() < end:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
        elif pending:
            try:
                sock.send(bytes([pending.pop(0)]))
            except OSError:
                pass  # closed by the server; the next recv says so
    raise AssertionError(f"the server kept the connection open for {DEADLINE:.0f} s; got {received[:200]!r}")


def _status_and_error(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]["code"]


def _batch_head(token: str, length: int) -> bytes:
    return (f"POST /v1/batch HTTP/1.1\r\nHost: crm\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def test_hundreds_of_idle_and_half_sent_connections_never_stop_health(server_factory):
    # 256 open files, as in a small container: before the guard, 300 idle sockets used them all
    # up and nobody got an answer, /health included.
    srv = server_factory(seed_customers=0, users=[UserSpec("ada", "admin")], open_files=256,
                         serve_args=("--header-timeout", "1", "--body-timeout", "2",
                                     "--max-connections-per-client", "8"))
    half_head = b"GET /v1/me HTTP/1.1\r\nHost: crm\r\nAuthorization: Bearer "
    half_body = _batch_head(srv.tokens["ada"], 1000) + b'{"ops": ['
    socks = [_connect(srv, send=(b"", half_head, half_body)[i % 3]) for i in range(300)]
    try:
        assert _health(srv, "127.0.0.2").status_code == 200, "another address is served meanwhile"
        closed = [_read_until_closed(s) for s in socks]
        timed_out = [_status_and_error(c) for c in closed if c.startswith(b"HTTP/1.1 408")]
        assert timed_out and all(code == "request_timeout" for _, code in timed_out)
        assert _health(srv, "127.0.0.1").status_code == 200, "once they are gone, that address is served again"
    finally:
        for s in socks:
            s.close()


def test_a_slowloris_body_or_header_is_cut_off_with_408(server_factory):
    srv = server_factory(seed_customers=0, users=[UserSpec("ada", "admin")],
                         serve_args=("--header-timeout", "1", "--body-timeout", "1"))
    body = json.dumps({"ops": []}).encode().ljust(1000)
    with _connect(srv, send=_batch_head(srv.tokens["ada"], len(body))) as sock:
        reply = _read_until_closed(sock, trickle=body)
    assert _status_and_error(reply) == (408, "request_timeout")

    with _connect(srv, send=b"GET /health HTTP/1.1\r\n") as sock:
        reply = _read_until_closed(sock, trickle=b"X-Slow: " + b"a" * 1000 + b"\r\n\r\n")
    assert _status_and_error(reply) == (408, "request_timeout")

    with httpx.Client(base_url=srv.url) as c:  # a prompt client on a kept-alive connection is fine
        assert [c.get("/health").status_code for _ in range(3)] == [200, 200, 200]


def test_a_client_that_stops_reading_its_answers_is_dropped(server_factory):
    srv = server_factory(seed_customers=300, users=[UserSpec("ada", "admin")],
                         serve_args=("--send-timeout", "1", "--log-level", "info"))
    request = f"GET /v1/changes?limit=5000 HTTP/1.1\r\nHost: crm\r\nAuthorization: Bearer {srv.tokens['ada']}\r\n\r\n"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.settimeout(DEADLINE)
    with sock:
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(request.encode() * 8)  # eight big pages, pipelined, and none of them read
        end = time.monotonic() + DEADLINE
        while "dropped the connection" not in srv.log_text() and time.monotonic() < end:
            time.sleep(0.1)
        assert "dropped the connection" in srv.log_text()
        received = _read_until_closed(sock)
    assert received.count(b"HTTP/1.1 200 OK") < 8, "the answers nobody read were let go"
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/health").status_code == 200


def test_connections_are_capped_per_client_address_and_in_all(server_factory):
    srv = server_factory(seed_customers=0, users=[UserSpec("ada", "admin")],
                         serve_args=("--max-connections-per-client", "4", "--max-connections", "6"))
    mine = [_connect(srv) for _ in range(4)]
    try:
        refused = _read_until_closed(_connect(srv, send=b"GET /health HTTP/1.1\r\nHost: crm\r\n\r\n"))
        assert _status_and_error(refused) == (429, "too_many_connections")
        assert _health(srv, "127.0.0.2").status_code == 200, "another address is still served"

        theirs = [_connect(srv, "127.0.0.2") for _ in range(2)]  # six open: the cap in all
        refused = _read_until_closed(_connect(srv, "127.0.0.3", send=b"GET /health HTTP/1.1\r\nHost: crm\r\n\r\n"))
        assert _status_and_error(refused) == (503, "busy")
        for s in theirs:
            s.close()

        mine.pop().close()
        end = time.monotonic() + DEADLINE
        while (status := _health(srv, "127.0.0.1").status_code) != 200 and time.monotonic() < end:
            time.sleep(0.05)
        assert status == 200, "a closed connection frees its place"
    finally:
        for s in mine:
            s.close()


def test_the_token_is_checked_before_a_body_is_read(server_factory):
    srv = server_factory(seed_customers=0, users=[UserSpec("ada", "admin")], serve_args=("--body-timeout", "1"))
    # 5 MB announced, none of it sent: the answer cannot have waited for the body.
    with _connect(srv, send=_batch_head("crm_not-a-token", 5_000_000)) as sock:
        reply = _read_until_closed(sock)
    assert _status_and_error(reply) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        (("203.0.113.7", 5000), "203.0.113.7"),
        (("::ffff:203.0.113.7", 5000, 0, 0), "203.0.113.7"),
        (("2001:db8:1:2:3:4:5:6", 5000, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 5000, 0, 0), "2001:db8:1:2::/64"),
        (None, "local"),
    ],
)
def test_connections_are_counted_per_ipv4_address_and_per_ipv6_network(peer, key):
    assert client_key(peer) == key


def test_tls_handshakes_are_timed_and_counted_like_any_connection(server_factory, tmp_path):
    ca = trustme.CA()
    files = write_server_cert(ca, tmp_path, "127.0.0.1")
    srv = server_factory(seed_customers=0, users=[UserSpec("ada", "admin")],
                         **tls_server_options(ca, files, "--header-timeout", "1", "--max-connections-per-client", "3"))
    silent = [_connect(srv) for _ in range(3)]  # TCP only: they never start the handshake
    try:
        with _connect(srv) as extra:
            assert _read_until_closed(extra) == b"", "over the cap: closed before any handshake"
        assert _health(srv, "127.0.0.2").status_code == 200
        assert [_read_until_closed(s) for s in silent] == [b"", b"", b""], "cut off at the header deadline"
        assert _health(srv, "127.0.0.1").status_code == 200
    finally:
        for s in silent:
            s.close()
