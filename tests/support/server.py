"""Run the REAL crm-server in a subprocess on a free loopback port, for tests.

Nothing is mocked: the server is ``python -m crm_server.cli serve`` over a SQLite file in a temp
dir — or, with ``database="postgresql://..."``, over a real PostgreSQL database (the ``backend``
fixture picks; see tests/conftest.py) — seeded (deterministically, with a fixed "now") and given
users before it starts.

Fixtures (tests/conftest.py)::

    def test_something(server):          # function-scoped: fresh db, 20 customers
        with server.client("sam") as c:  # httpx.Client, base_url set, sam's bearer token
            me = c.get("/v1/me").json()

    def test_reads(seeded_server): ...   # session-scoped (per xdist worker), 200 customers; READ ONLY

    def test_custom(server_factory):     # start your own; all are stopped at teardown
        srv = server_factory(seed_customers=0, rate_limit=5, users=[UserSpec("rita", "sales", ["dach"])])

Default users (``users=None``), keyed by name in ``server.tokens``::

    "ada"  admin
    "alex" agent (team support-l1)
    "sam"  sales rep, territory "dach"
    "rita" sales rep, territories "france" and "benelux"

The seed always creates the 20 territories (``ServerProcess.TERRITORIES``: "dach", "france",
"uk-ireland", "us-east", ...) and a staff directory; customer ids are "cus-0000001", ...

Options beyond the seed: ``serve_args`` (more ``crm-server serve`` flags, e.g. ``("--header-timeout",
"1")`` or ``--ssl-certfile``: see support/certs.py for HTTPS), ``verify`` (what this harness's own
httpx clients trust, for HTTPS), ``open_files`` (the server's RLIMIT_NOFILE).

Handy methods: ``server.batch(ops, user=...)`` (POST /v1/batch, returns the results),
``make_op(...)`` (an op with a fresh op id), ``server.get_record("customers", id)`` (as admin),
``server.add_user(...)``, ``server.grant(name, territory)`` / ``server.revoke(...)`` (territory
changes go through the store, so the feed backfills / exits), ``server.restart()``, ``server.stop()``.
Network faults come from a real misbehaving proxy in front of it: tests/support/faultproxy.py.
Use it directly as a context manager too: ``with ServerProcess(tmp_path / "crm.db") as srv: ...``
(on PostgreSQL: ``ServerProcess(tmp_path / "crm.db", database=url)``; ``srv.db_url`` is what
``--db`` gets either way). The server's stderr goes to ``<db_path>.server.log``
(``server.log_text()``) for when a test fails.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crm_server.announce import wait_for_url

FIXED_NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
START_TIMEOUT = 30.0
_op_counter = itertools.count(1)


@dataclass(frozen=True)
class UserSpec:
    name: str
    role: str = "agent"
    territories: tuple[str, ...] | list[str] = ()
    team: str | None = None


DEFAULT_USERS = (
    UserSpec("ada", "admin"),
    UserSpec("alex", "agent", team="support-l1"),
    UserSpec("sam", "sales", ("dach",)),
    UserSpec("rita", "sales", ("france", "benelux")),
)


def make_op(op: str, entity: str, record_id: str, fields: dict | None = None, base_version: int | None = None,
            op_id: str | None = None) -> dict[str, Any]:
    """One batch op with a fresh, unique op id (unless ``op_id`` is given)."""
    out: dict[str, Any] = {
        "op_id": op_id or f"op-{os.getpid()}-{time.monotonic_ns()}-{next(_op_counter)}",
        "op": op,
        "entity": entity,
        "id": record_id,
        "fields": fields or {},
    }
    if base_version is not None:
        out["base_version"] = base_version
    return out


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; waits for the process either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@dataclass
class ServerProcess:
    """A crm-server subprocess over ``db_path``; a context manager (start on enter, stop on exit)."""

    db_path: Path | str  # the SQLite file; with ``database`` set, only names the log file
    seed_customers: int = 20
    seed: int = 1
    users: list[UserSpec] | tuple[UserSpec, ...] | None = None
    rate_limit: float | None = None  # None: no limit
    serve_args: tuple[str, ...] = ()  # more `crm-server serve` options, e.g. ("--header-timeout", "1")
    open_files: int | None = None  # the server process's RLIMIT_NOFILE (None: inherited)
    verify: Any = True  # for https: the CA file (or ssl.SSLContext) that trusts the server's certificate
    now: dt.datetime = FIXED_NOW
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    url: str = ""
    proc: subprocess.Popen | None = None
    start_timeout: float = START_TIMEOUT
    database: str | None = None  # a postgresql:// URL to serve instead of the SQLite file

    TERRITORIES = (
        "uk-ireland", "dach", "benelux", "france", "iberia", "italy", "nordics", "cee", "middle-east", "africa",
        "us-east", "us-central", "us-west", "canada", "mexico", "south-america", "anz", "japan-korea", "india",
        "southeast-asia",
    )

    @property
    def db_url(self) -> str:
        """What ``--db`` gets: the PostgreSQL URL, or the SQLite file's path."""
        return self.database or str(self.db_path)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> ServerProcess:
        self.prepare()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def prepare(self) -> None:
        """Seed the database and create the users (in this process, before the server starts)."""
        from crm_server.seed import seed_database
        from crm_server.store import open_store

        self.db_path = Path(self.db_path)
        store = open_store(self.db_url)
        try:
            seed_database(store, customers=self.seed_customers, seed=self.seed, now=self.now)
            self.add_users(store, DEFAULT_USERS)
        finally:
            store.close()

    def add_users(self, store: Any, default: tuple[UserSpec, ...]) -> None:
        """Create ``self.users`` (or ``default``) in ``store``, remembering their tokens and ids."""
        from crm_server.accounts import add_user

        for spec in default if self.users is None else self.users:
            record, token = add_user(store, spec.name, role=spec.role, territories=spec.territories, team=spec.team)
            self.tokens[spec.name] = token
            self.user_ids[spec.name] = record["id"]

    def start(self) -> None:
        """Start the server and wait until /health answers. Raises RuntimeError with its log."""
        self.log_path = Path(self.db_path).with_suffix(".server.log")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it until stop()
        limit = self.open_files
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=log, env=self.environment(),
            cwd=Path(__file__).resolve().parents[2],
            preexec_fn=None if limit is None else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
        )
        log.close()
        url = wait_for_url(self.proc, self.start_timeout)
        if url is None:
            self.stop()
            raise RuntimeError(f"crm-server did not start; log:\n{self.log_path.read_text()[-3000:]}")
        self.url = url
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("crm-server never answered /health")
            time.sleep(0.05)

    def command(self) -> list[str]:
        """The ``crm-server serve`` command line."""
        cmd = [sys.executable, "-m", "crm_server.cli", "serve", "--db", self.db_url, "--port", "0",
               "--rate-limit", str(self.rate_limit or 0), *self.serve_args]
        return cmd

    def environment(self) -> dict[str, str] | None:
        """The server's environment (None: this process's)."""
        return None

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 5 s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()

    def restart(self) -> None:
        """Stop and start again on the same database (the port changes)."""
        self.stop()
        self.start()

    def log_text(self) -> str:
        """What the server wrote to stderr so far."""
        path = getattr(self, "log_path", None)
        return path.read_text(errors="replace") if path and path.exists() else ""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    # ------------------------------------------------------------------ clients

    def client(self, user: str | None = "ada", **kwargs: Any) -> httpx.Client:
        """An httpx.Client for ``user`` (a name from ``tokens``; None: no token); ``base_url=``
        points it elsewhere (e.g. at a FaultProxy in front of this server)."""
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("base_url", self.url)
        return httpx.Client(headers=headers, timeout=kwargs.pop("timeout", 30), **kwargs)

    def batch(self, ops: list[dict], user: str = "ada") -> list[dict]:
        """POST /v1/batch as ``user``; returns the list of results (asserts 200)."""
        with self.client(user) as c:
            response = c.post("/v1/batch", json={"ops": ops})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    def get_record(self, table: str, record_id: str, user: str = "ada") -> dict | None:
        """GET /v1/{table}/{id} as ``user``; None on 404."""
        with self.client(user) as c:
            response = c.get(f"/v1/{table}/{record_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    # ------------------------------------------------------------------ admin writes (through the store)

    def _store(self):
        from crm_server.store import open_store

        return open_store(self.db_url)

    def add_user(self, name: str, role: str = "agent", territories: tuple[str, ...] | list[str] = (),
                 team: str | None = None) -> str:
        """Create a user while the server runs; returns (and remembers) their token."""
        from crm_server.accounts import add_user

        store = self._store()
        try:
            record, token = add_user(store, name, role=role, territories=territories, team=team)
        finally:
            store.close()
        self.tokens[name] = token
        self.user_ids[name] = record["id"]
        return token

    def grant(self, name: str, *territories: str) -> dict:
        """Give a user territories (a write through the store: the feed backfills them)."""
        from crm_server.accounts import set_territories

        store = self._store()
        try:
            return set_territories(store, self.user_ids.get(name, name), grant=territories)
        finally:
            store.close()

    def revoke(self, name: str, *territories: str) -> dict:
        """Take territories from a user (the feed sends exit_territory)."""
        from crm_server.accounts import set_territories

        store = self._store()
        try:
            return set_territories(store, self.user_ids.get(name, name), revoke=territories)
        finally:
            store.close()
