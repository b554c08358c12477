"""A REAL PostgreSQL server for tests, made from the binaries in /usr/local/bin (PostgreSQL 15).

Nothing needs to run beforehand: ``initdb`` makes a cluster in a temp dir owned by the
``postgres`` user, ``pg_ctl`` starts it on a free loopback port (its socket in the same dir),
and it is stopped and deleted at teardown. One cluster per pytest session, i.e. per xdist worker.

Fixtures (tests/conftest.py)::

    def test_x(postgres_url):            # a fresh, empty database for this test
        store = open_store(postgres_url) # creates the schema

    def test_y(postgres):                # the PostgresServer itself (session-scoped)
        url = postgres.create_database()         # another fresh empty database
        with postgres.connect(url) as conn: ...  # a psycopg connection (autocommit) as superuser

Use it directly too::

    with PostgresServer.start(tmp_dir) as pg:
        url = pg.create_database("mydb")

``url`` looks like ``postgresql://postgres@127.0.0.1:PORT/NAME``; the server trusts local
connections (test clusters only). Its log is ``pg.log`` in the cluster's dir (``log_text()``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

BACKENDS = ["sqlite", "postgresql"]  # the stores a test can be parametrized over
def _bin_dir() -> Path:
    """Where initdb and pg_ctl are: $CRM_TEST_PG_BIN, /usr/local/bin, or Debian's own place."""
    candidates = [os.environ.get("CRM_TEST_PG_BIN"), "/usr/local/bin", *sorted(
        (str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)]
    for c in candidates:
        if c and (Path(c) / "initdb").exists():
            return Path(c)
    raise RuntimeError("PostgreSQL's initdb was not found: install postgresql (15) or set CRM_TEST_PG_BIN")

START_TIMEOUT = 60
_names = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root; the cluster's files belong to the postgres user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresServer:
    """A running PostgreSQL cluster; ``stop()`` (or leaving the ``with`` block) ends it."""

    dir: Path
    port: int

    @classmethod
    def start(cls, parent: str | Path | None = None, *, settings: str = "") -> PostgresServer:
        """initdb a new cluster in a new temp dir (under ``parent``) and start it (``settings``:
        more ``-c name=value`` server options). Raises RuntimeError with the log when it does not
        come up."""
        bin_dir = _bin_dir()
        base = Path(tempfile.mkdtemp(prefix="crm-pg-", dir=parent))
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        data = base / "data"
        subprocess.run(
            _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                          "--locale=C.UTF-8", "--no-sync"]),
            check=True, capture_output=True, timeout=START_TIMEOUT,
        )
        return cls.run(base, settings=settings)

    @classmethod
    def run(cls, base: Path, *, settings: str = "") -> PostgresServer:
        """Start the cluster whose data dir is ``base/data`` on a free port. Raises RuntimeError
        with the log when it does not come up (the dir is deleted then)."""
        port = _free_port()
        # Test clusters trade durability for speed: a crashed test cluster is thrown away anyway.
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off"
                   f" -c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB {settings}")
        done = subprocess.run(
            _as_postgres([str(_bin_dir() / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "pg.log"), "-w", "-t",
                          str(START_TIMEOUT), "-o", options, "start"]),
            capture_output=True, text=True, timeout=START_TIMEOUT + 10,
        )
        server = cls(dir=base, port=port)
        if done.returncode != 0:
            log = server.log_text()
            server.stop()
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log[-3000:]}")
        return server

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, dbname: str = "postgres") -> str:
        """The URL of database ``dbname`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, url: str | None = None) -> psycopg.Connection:
        """A superuser connection (autocommit) to ``url`` (default: the maintenance database)."""
        return psycopg.connect(url or self.url(), autocommit=True, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database and return its URL."""
        name = name or f"crm_{os.getpid()}_{next(_names)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (its connections are ended first)."""
        name = url.rsplit("/", 1)[1]
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_text(self) -> str:
        """What the server logged so far."""
        path = self.dir / "pg.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        if (self.dir / "data" / "postmaster.pid").exists():
            subprocess.run(_as_postgres([str(_bin_dir() / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"]),
                           capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
