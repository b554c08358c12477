"""A REAL HAProxy in front of two REAL crm-server processes on one REAL PostgreSQL database.

HAProxy runs ``deploy/haproxy.cfg`` itself — the file operators deploy — with only the listening
address, the two ``server`` addresses, the stats socket and the log target replaced, so its
timeouts, health checks and retry rules are what the tests exercise. ``make test`` installs
HAProxy (Debian package ``haproxy``) when it is missing.

    def test_x(balanced_server):              # tests/conftest.py: backend "balanced"
        with balanced_server.client("sam") as http: ...   # through HAProxy
        balanced_server.backends               # the two ServerProcess objects behind it
        balanced_server.stats()                # HAProxy's per-server status and counters

A ``BalancedServer`` is a :class:`~support.server.ServerProcess` whose ``url`` is HAProxy's, so
every helper (``batch``, ``get_record``, ``grant`` ...) and every test written for one server
runs through the balancer unchanged. HAProxy's log is ``<db_path>.haproxy.log``.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.server import ServerProcess, stop_process

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy.cfg"
START_TIMEOUT = 30.0


def haproxy_binary() -> str:
    """The haproxy executable; RuntimeError saying how to get it when it is missing."""
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
                                             if Path(p).exists()), None)
    if found is None:
        raise RuntimeError("haproxy is not installed: run `make haproxy` (apt-get install -y haproxy)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def balancer_config(listen_port: int, servers: list[int], stats_socket: Path) -> str:
    """deploy/haproxy.cfg with this test's addresses; everything else as deployed."""
    text = CONFIG.read_text()
    replaced = {
        r"(?m)^(\s*)log /dev/log local0$": r"\1log stderr format raw local0",
        r"(?m)^(\s*)stats socket \S+": rf"\1stats socket {stats_socket}",
        r"(?m)^(\s*)bind 127\.0\.0\.1:8765$": rf"\1bind 127.0.0.1:{listen_port}",
    }
    for pattern, repl in replaced.items():
        text, n = re.subn(pattern, repl, text)
        if n != 1:
            raise RuntimeError(f"deploy/haproxy.cfg changed: {pattern!r} matched {n} times")
    lines = [line for line in text.splitlines() if not re.match(r"\s*server crm\d+ ", line)]
    lines += [f"    server crm{i + 1} 127.0.0.1:{port}" for i, port in enumerate(servers)]
    return "\n".join(lines) + "\n"


@dataclass
class BalancedServer(ServerProcess):
    """HAProxy and two crm-server processes sharing ``database`` (a postgresql:// URL)."""

    backends: list[ServerProcess] = field(default_factory=list)
    haproxy: subprocess.Popen | None = None

    def start(self) -> None:
        """Start both servers, then HAProxy; return once HAProxy sees both servers up."""
        self.db_path = Path(self.db_path)
        for i in range(2):
            backend = ServerProcess(self.db_path.with_name(f"{self.db_path.stem}-{i + 1}.db"), database=self.database,
                                    rate_limit=self.rate_limit, tokens=self.tokens, user_ids=self.user_ids,
                                    serve_args=("--max-connections-per-client", "0", *self.serve_args))
            self.backends.append(backend)
            backend.start()
        self.stats_socket = self.db_path.with_suffix(".haproxy.sock")
        config = self.db_path.with_suffix(".haproxy.cfg")
        port = _free_port()
        config.write_text(balancer_config(port, [b.port for b in self.backends], self.stats_socket))
        self.haproxy_log = self.db_path.with_suffix(".haproxy.log")
        with open(self.haproxy_log, "ab") as log:
            self.haproxy = subprocess.Popen([haproxy_binary(), "-db", "-f", str(config)], stdout=log, stderr=log)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.haproxy.poll() is not None:
                self.stop()
                raise RuntimeError(f"haproxy exited: {self.haproxy_log.read_text()[-2000:]}")
            try:
                if all(row["status"] == "UP" for row in self.stats()) and \
                        httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except (OSError, httpx.HTTPError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"haproxy never saw both servers up: {self.haproxy_log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop HAProxy and both servers."""
        proc, self.haproxy = self.haproxy, None
        if proc is not None:
            stop_process(proc)
        for backend in self.backends:
            backend.stop()
        self.backends = []

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return "\n".join(b.log_text() for b in self.backends)

    def stats(self) -> list[dict[str, str]]:
        """HAProxy's view of each server (``show stat``): name (``svname``), ``status`` (UP,
        DOWN ...), ``scur`` (requests in progress), ``stot`` (connections so far) ..."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return [r for r in rows if r["pxname"] == "crm_servers" and r["svname"].startswith("crm")]
