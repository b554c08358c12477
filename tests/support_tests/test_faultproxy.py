"""The fault proxy, driven by a real httpx client against a real upstream HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

try:
    from support.faultproxy import (
        FaultProxy,
        Match,
        Response,
        answer,
        delay,
        drip,
        drop_after_upstream,
        drop_before,
        endless,
        gate,
        hang,
        passthrough,
        replace_body,
        status,
        transform_json,
        truncate,
    )
except ModuleNotFoundError:  # tests/ became a package: reachable only as tests.support
    from tests.support.faultproxy import (  # type: ignore[no-redef]
        FaultProxy,
        Match,
        Response,
        answer,
        delay,
        drip,
        drop_after_upstream,
        drop_before,
        endless,
        gate,
        hang,
        passthrough,
        replace_body,
        status,
        transform_json,
        truncate,
    )


# --------------------------------------------------------------------------- upstream


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.lock = threading.Lock()
        self.received: list[tuple[str, str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for m, _, _ in self.received if method in (None, m))

    def wait_for(self, n: int, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.01)
        return False


class _EchoHandler(BaseHTTPRequestHandler):
    """Echoes each request as JSON; /chunked answers with a chunked body."""

    protocol_version = "HTTP/1.1"
    server: _Upstream

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received.append((self.command, self.path, body))
            n = len(self.server.received)
        payload = {
            "method": self.command,
            "path": self.path,
            "body": body.decode(),
            "n": n,
            "idempotency_key": self.headers.get("Idempotency-Key"),
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        if self.path.startswith("/chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 7):
                piece = data[i : i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


@pytest.fixture
def proxy(upstream: _Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=upstream.url) as running:
        yield running


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=2.0) as c:
        yield c


# --------------------------------------------------------------------------- passthrough


def test_passthrough_keeps_the_connection_alive_and_forwards_bodies(proxy, client, upstream):
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"

    first = client.get("/v1/changes", params={"since": 3})
    posted = client.post("/v1/batch", json={"ops": [1, 2]}, headers={"Idempotency-Key": "k-1"})
    put = client.put("/v1/contacts/7", content=b"raw bytes")
    deleted = client.delete("/v1/contacts/7")

    assert first.status_code == 200
    assert first.json()["path"] == "/v1/changes?since=3"
    assert first.headers["x-upstream"] == "yes"
    assert posted.json() == {
        "method": "POST",
        "path": "/v1/batch",
        "body": '{"ops":[1,2]}',
        "n": 2,
        "idempotency_key": "k-1",
    }
    assert put.json()["body"] == "raw bytes"
    assert deleted.json()["method"] == "DELETE"
    assert [m for m, _, _ in upstream.received] == ["GET", "POST", "PUT", "DELETE"]
    assert proxy.requests == [
        ("GET", "/v1/changes"),
        ("POST", "/v1/batch"),
        ("PUT", "/v1/contacts/7"),
        ("DELETE", "/v1/contacts/7"),
    ]
    assert proxy.seen[0].target == "/v1/changes?since=3"
    assert proxy.seen[1].header("idempotency-key") == "k-1"
    assert proxy.seen[1].json() == {"ops": [1, 2]}
    assert proxy.connections == 1  # four requests, one kept-alive connection
    assert proxy.errors == []


def test_chunked_upstream_responses_are_reframed_and_head_works(proxy, client):
    chunked = client.get("/chunked")
    head = client.head("/v1/changes")

    assert chunked.json()["path"] == "/chunked"
    assert "transfer-encoding" not in chunked.headers
    assert int(chunked.headers["content-length"]) == len(chunked.content)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert client.get("/v1/changes").status_code == 200  # the connection survived the HEAD
    assert proxy.connections == 1


# --------------------------------------------------------------------------- status


def test_status_is_injected_times_then_passes_through(proxy, client, upstream):
    rule = proxy.add_rule(
        status(503, b"busy", headers={"Retry-After": "1"}), method="POST", path="/v1/batch", times=2
    )

    answers = [client.post("/v1/batch", json={"i": i}) for i in range(3)]

    assert [r.status_code for r in answers] == [503, 503, 200]
    assert answers[0].headers["retry-after"] == "1"
    assert answers[0].content == b"busy"
    assert rule.hits == 2
    assert not rule.active and rule.remaining == 0
    assert proxy.rules == []  # expired rules are gone
    assert upstream.count() == 1  # injected statuses never reached upstream
    assert [r.fault for r in proxy.seen] == ["status(503)", "status(503)", None]
    assert proxy.connections == 1  # an injected status keeps the connection alive


def test_status_with_a_json_body(proxy, client):
    proxy.add_rule(status(429, {"error": "slow down"}, {"Retry-After": "1"}), times=1)

    answer = client.get("/v1/changes")

    assert answer.status_code == 429
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": "slow down"}
    assert client.get("/v1/changes").status_code == 200


# --------------------------------------------------------------------------- delay and hang


def test_delay_triggers_a_read_timeout_and_still_reaches_upstream(proxy, upstream):
    proxy.add_rule(delay(0.4), times=1)

    with httpx.Client(base_url=proxy.url, timeout=0.15) as short:
        with pytest.raises(httpx.ReadTimeout):
            short.post("/v1/batch", json={"late": True})
        assert upstream.count() == 0  # still being held back

    assert upstream.wait_for(1)  # forwarded once the delay elapsed
    assert upstream.received[0][2] == b'{"late":true}'


def test_delay_shorter_than_the_timeout_only_slows_down(proxy, client):
    proxy.add_rule(delay(0.2), times=1)

    started = time.monotonic()
    answer = client.get("/v1/changes")

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_delay_after_upstream_applies_first_then_times_out(proxy, upstream):
    proxy.add_rule(delay(0.4, after_upstream=True), times=1)

    with httpx.Client(base_url=proxy.url, timeout=0.15) as short, pytest.raises(httpx.ReadTimeout):
        short.post("/v1/batch", json={"x": 1})

    assert upstream.count() == 1  # the write happened before the client gave up


def test_hang_times_out_and_never_reaches_upstream(proxy, upstream):
    proxy.add_rule(hang(), path="/v1/batch")

    with httpx.Client(base_url=proxy.url, timeout=0.15) as short:
        with pytest.raises(httpx.ReadTimeout):
            short.post("/v1/batch", json={})
        assert short.get("/v1/changes").status_code == 200  # other paths are fine

    assert upstream.count("POST") == 0


def test_stop_releases_a_hung_client_quickly(upstream):
    proxy = FaultProxy(upstream.url).start()
    proxy.add_rule(hang())
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(proxy.url + "/v1/changes", timeout=10)
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 2
    while not proxy.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.stop()
    caller.join(2)

    assert time.monotonic() - started < 1.0
    assert not caller.is_alive()
    assert isinstance(outcome[0], httpx.RemoteProtocolError)


# --------------------------------------------------------------------------- drops


def test_drop_before_closes_without_reaching_upstream(proxy, client, upstream):
    assert client.get("/v1/changes").status_code == 200  # an established keep-alive connection
    proxy.add_rule(drop_before(), method="POST", times=1)

    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/batch", json={"op": "create"})

    assert upstream.count("POST") == 0
    assert client.post("/v1/batch", json={"op": "create"}).status_code == 200  # reconnects
    assert upstream.count("POST") == 1
    assert proxy.connections == 2


def test_drop_with_reset_is_a_read_error(proxy, client, upstream):
    proxy.add_rule(drop_before(reset=True), times=1)

    with pytest.raises(httpx.ReadError):
        client.get("/v1/changes")

    assert upstream.count() == 0


def test_drop_after_upstream_applies_the_write_but_the_client_never_hears(proxy, client, upstream):
    rule = proxy.add_rule(drop_after_upstream(), method="POST", path="/v1/batch", times=1)

    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/batch", json={"op": "create"}, headers={"Idempotency-Key": "k-9"})

    assert rule.hits == 1
    assert upstream.received == [("POST", "/v1/batch", b'{"op":"create"}')]
    retry = client.post("/v1/batch", json={"op": "create"}, headers={"Idempotency-Key": "k-9"})
    assert retry.json()["n"] == 2  # the upstream saw the write twice
    assert proxy.count("POST", "/v1/batch") == 2


# --------------------------------------------------------------------------- broken bodies


def test_truncate_makes_httpx_raise_remote_protocol_error(proxy, client, upstream):
    proxy.add_rule(truncate(10), times=1)

    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        client.get("/v1/changes")

    assert upstream.count() == 1
    assert client.get("/v1/changes").status_code == 200


def test_truncate_sends_the_full_content_length_but_n_bytes(proxy):
    proxy.add_rule(truncate(5), times=1)

    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as raw:
        raw.sendall(b"GET /v1/changes HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := raw.recv(65536):
            received += chunk

    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b'{"met'
    assert length > 5


def test_replace_body_with_html_keeps_the_upstream_status(proxy, client, upstream):
    page = b"<html><body>Captive portal</body></html>"
    proxy.add_rule(replace_body(page), path="/v1/changes", times=1)

    answer = client.get("/v1/changes")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.content == page
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert upstream.count() == 1
    assert client.get("/v1/changes").json()["path"] == "/v1/changes"


def test_replace_body_with_another_status(proxy, client):
    proxy.add_rule(replace_body({"detail": "nope"}, status=500), times=1)

    answer = client.get("/v1/changes")

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"detail": "nope"}


def test_transform_json_rewrites_the_upstream_document(proxy, client):
    def wrong_types(doc):
        doc["n"] = str(doc["n"])
        doc["extra"] = None
        return doc

    proxy.add_rule(transform_json(wrong_types), times=1)

    answer = client.post("/v1/batch", json={"a": 1})

    assert answer.json()["n"] == "1"
    assert answer.json()["extra"] is None
    assert answer.json()["body"] == '{"a":1}'


def test_a_failing_transform_or_a_dead_upstream_is_a_502(upstream):
    with FaultProxy(upstream.url) as proxy, httpx.Client(base_url=proxy.url) as client:
        proxy.add_rule(transform_json(lambda doc: doc["missing"]), times=1)
        broken = client.get("/v1/changes")
        assert broken.status_code == 502
        assert isinstance(proxy.errors[0], KeyError)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with FaultProxy(f"http://127.0.0.1:{dead_port}") as proxy, httpx.Client(base_url=proxy.url) as client:
        answer = client.get("/v1/changes")
        assert answer.status_code == 502
        assert b"upstream failed" in answer.content


# --------------------------------------------------------------------------- matching


def test_rules_match_by_method_and_path_prefix(proxy, client):
    proxy.add_rule(status(500), method="POST", path="/v1/changes")

    assert client.get("/v1/changes").status_code == 200  # wrong method
    assert client.post("/v1/changes").status_code == 500
    assert client.post("/v1/changes/7", params={"x": 1}).status_code == 500  # deeper path, query
    assert client.post("/v1/changesets").status_code == 200  # not the same path segment
    assert client.post("/v1/batch").status_code == 200


def test_match_forms_order_and_clear(proxy, client):
    proxy.add_rule(status(418), match=lambda req: b"poison" in req.body)
    proxy.add_rule(status(502), match="/v1/batch", times=1)
    proxy.add_rule(status(503), match=Match(method=["PUT", "PATCH"]))
    counting = proxy.add_rule(passthrough(), match=Match(path="/v1/changes?since=0"))

    assert client.post("/v1/batch", content=b"poison").status_code == 418  # first match wins
    assert client.post("/v1/batch", content=b"ok").status_code == 502
    assert client.post("/v1/batch", content=b"ok").status_code == 200  # the 502 rule expired
    assert client.patch("/v1/contacts/1").status_code == 503
    assert client.get("/v1/changes?since=0").status_code == 200
    assert client.get("/v1/changes?since=5").status_code == 200
    assert counting.hits == 1
    assert len(proxy.rules) == 3

    proxy.clear()

    assert proxy.rules == []
    assert client.post("/v1/batch", content=b"poison").status_code == 200
    assert client.put("/v1/contacts/1").status_code == 200


def test_rules_are_thread_safe_under_concurrent_clients(proxy, upstream):
    rule = proxy.add_rule(status(503), path="/v1/batch", times=7)
    codes: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=proxy.url, timeout=2) as c:
            for _ in range(5):
                code = c.post("/v1/batch", json={}).status_code
                with lock:
                    codes.append(code)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(5)

    assert sorted(codes) == [200] * 13 + [503] * 7
    assert rule.hits == 7
    assert upstream.count() == 13
    assert len(proxy.requests) == 20


# --------------------------------------------------------------------------- lifecycle


def test_stop_is_fast_and_leaves_no_thread_or_listening_socket(upstream):
    threads_before = set(threading.enumerate())
    proxy = FaultProxy(upstream.url)
    with proxy, httpx.Client(base_url=proxy.url) as client:
        port = proxy.port
        assert client.get("/v1/changes").status_code == 200
        proxy.add_rule(hang(), times=1)
        with pytest.raises(httpx.ReadTimeout):
            client.get("/v1/changes", timeout=0.1)
        started = time.monotonic()
    assert time.monotonic() - started < 1.0

    assert not proxy.running
    assert set(threading.enumerate()) - threads_before == set()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(RuntimeError):
        _ = proxy.url
    proxy.stop()  # idempotent


def test_bad_arguments_are_rejected(upstream):
    with pytest.raises(ValueError):
        FaultProxy("https://127.0.0.1:1")
    with FaultProxy(upstream.url) as proxy:
        with pytest.raises(ValueError):
            proxy.add_rule(status(500), times=0)
        with pytest.raises(TypeError):
            proxy.add_rule(500)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- slow, endless, made up


def test_drip_sends_the_whole_answer_a_byte_at_a_time(proxy, client, upstream):
    fault = drip(0.001)
    proxy.add_rule(fault, path="/v1/me", times=1)
    response = client.get("/v1/me")
    assert response.json()["path"] == "/v1/me"
    assert fault.bytes_sent == len(response.content)  # the body, byte by byte (the head at once)
    head_too = drip(0.001, head=True)
    proxy.add_rule(head_too, path="/v1/me", times=1)
    assert client.get("/v1/me").json()["path"] == "/v1/me"
    assert head_too.bytes_sent > fault.bytes_sent  # the head was dripped as well


def test_an_endless_body_stops_when_the_client_hangs_up(proxy, client, upstream):
    fault = endless(chunk=b"x" * 1024)
    proxy.add_rule(fault, path="/v1/changes")
    received = 0
    with client.stream("GET", "/v1/changes") as response:
        assert response.status_code == 200 and "content-length" not in response.headers
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > 100_000:
                break
    assert fault.finished.wait(10)
    assert fault.bytes_sent < fault.max_bytes  # it stopped with the client, far from its cap
    assert upstream.count() == 0


def test_answer_makes_up_a_response_per_request(proxy, client, upstream):
    seen = []

    def feed(request):
        seen.append(request.query)
        return Response(200, [("Content-Type", "application/json")], json.dumps({"n": len(seen)}).encode())

    proxy.add_rule(answer(feed), path="/v1/changes")
    assert [client.get("/v1/changes", params={"cursor": c}).json()["n"] for c in "ab"] == [1, 2]
    assert seen == ["cursor=a", "cursor=b"] and upstream.count() == 0


def test_a_gate_holds_requests_until_opened(proxy, client, upstream):
    held = gate()
    proxy.add_rule(held, path="/v1/changes", times=1)
    answers = []
    worker = threading.Thread(target=lambda: answers.append(client.get("/v1/changes").json()))
    worker.start()
    assert held.entered.wait(5)
    assert upstream.count() == 0 and answers == []  # held: upstream has not seen it yet
    held.open()
    worker.join(5)
    assert answers[0]["path"] == "/v1/changes" and upstream.count() == 1


def test_a_gate_after_upstream_holds_the_answer_the_upstream_already_gave(proxy, client, upstream):
    held = gate(after_upstream=True)
    proxy.add_rule(held, path="/v1/changes", times=1)
    answers = []
    worker = threading.Thread(target=lambda: answers.append(client.get("/v1/changes").json()))
    worker.start()
    assert held.entered.wait(5)
    assert upstream.count() == 1 and answers == []  # answered upstream, held from the client
    held.open()
    worker.join(5)
    assert answers[0]["path"] == "/v1/changes" and upstream.count() == 1
