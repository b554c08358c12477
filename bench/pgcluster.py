"""The PostgreSQL and HAProxy that ``python -m bench.server`` starts for itself (and stops).

PostgreSQL 15: ``initdb`` into a temp dir under bench/.work (as the ``postgres`` user when run
as root), ``pg_ctl start`` on a free loopback port. Unlike the test clusters it keeps its
durability settings (fsync on; the server itself commits with ``synchronous_commit = off``, like
SQLite's WAL with ``synchronous = NORMAL``) and loads ``pg_stat_statements`` for the profiles.

HAProxy (Debian's ``haproxy``): one frontend on a free loopback port, round robin by least
connections over N ``crm-server serve`` processes, each health-checked on ``GET /health``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from bench import procs

START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir() -> Path:
    candidates = [os.environ.get("CRM_TEST_PG_BIN"), "/usr/local/bin",
                  *sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)]
    for c in candidates:
        if c and (Path(c) / "initdb").exists():
            return Path(c)
    raise RuntimeError("PostgreSQL's initdb was not found: apt-get install postgresql (15), or set CRM_TEST_PG_BIN")


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    """A PostgreSQL cluster of the benchmark's own; ``stop()`` ends it and deletes its files."""

    def __init__(self, *, shared_buffers: str = "512MB"):
        # In the system's temp dir: the postgres user must reach it (a root-only parent would not do).
        self.dir = Path(tempfile.mkdtemp(prefix="crm-bench-pg-"))
        self.shared_buffers = shared_buffers
        self.port = 0
        self.postmaster_pid: int | None = None

    def start(self) -> Cluster:
        bin_dir = _bin_dir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        made = subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                            "-E", "UTF8", "--locale=C.UTF-8"]),
                              capture_output=True, text=True, timeout=START_TIMEOUT)
        if made.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed: {made.stderr.strip()[-2000:]}")
        self.port = free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=300"
                   f" -c shared_buffers={self.shared_buffers} -c work_mem=16MB -c maintenance_work_mem=256MB"
                   " -c max_wal_size=4GB -c checkpoint_timeout=15min"
                   " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all")
        done = subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "pg.log"),
                                            "-w", "-t", str(START_TIMEOUT), "-o", options, "start"]),
                              capture_output=True, text=True, timeout=START_TIMEOUT + 10)
        if done.returncode != 0:
            log = (self.dir / "pg.log").read_text(errors="replace")[-3000:] if (self.dir / "pg.log").exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log}")
        self.postmaster_pid = int((data / "postmaster.pid").read_text().split()[0])
        with self.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10)

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.connect() as conn:
            if template:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (template,))
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template or "template0"}"')
        return self.url(name)

    def database_bytes(self, name: str) -> int:
        with self.connect() as conn:
            return conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()[0]

    def reset_statements(self) -> None:
        with self.connect() as conn:
            conn.execute("SELECT pg_stat_statements_reset()")

    def top_statements(self, n: int = 8) -> list[dict]:
        """The statements that took the most time since the last reset (pg_stat_statements)."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT calls, total_exec_time, mean_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g')"
                " FROM pg_stat_statements WHERE query NOT ILIKE '%%pg_stat_statements%%'"
                " ORDER BY total_exec_time DESC LIMIT %s", (n,)).fetchall()
        return [{"calls": c, "total_ms": t, "mean_ms": m, "rows": r, "query": q[:240]} for c, t, m, r, q in rows]

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, WAL writer, ...)."""
        import psutil

        if self.postmaster_pid is None:
            return []
        try:
            pm = psutil.Process(self.postmaster_pid)
            return [pm.pid, *(c.pid for c in pm.children(recursive=True))]
        except psutil.Error:
            return []

    def stop(self) -> None:
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_postgres([str(_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


HAPROXY_CFG = """\
# Made by bench/pgcluster.py: the shape of a deployment's haproxy.cfg, on loopback ports.
global
    maxconn 4000
    log stderr format short local0 warning

defaults
    mode http
    log global
    option http-keep-alive
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-request 10s
    retries 2
    option redispatch

frontend crm
    bind 127.0.0.1:{port}
    default_backend crm_servers

backend crm_servers
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    default-server inter 2s fall 3 rise 2 maxconn 200
{servers}
"""


def haproxy_config(port: int, backends: list[str]) -> str:
    """An HAProxy configuration: frontend on ``port``, one health-checked server per backend
    ``host:port``."""
    lines = [f"    server crm{i + 1} {hp} check" for i, hp in enumerate(backends)]
    return HAPROXY_CFG.format(port=port, servers="\n".join(lines))


class HAProxy:
    def __init__(self, work: Path, backends: list[str]):
        self.work, self.backends = work, backends
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> HAProxy:
        import httpx

        exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(exe).exists():
            raise RuntimeError("haproxy is not installed: apt-get install -y haproxy (make bench-server does it)")
        self.port = free_port()
        cfg = self.work / "haproxy.cfg"
        cfg.write_text(haproxy_config(self.port, self.backends))
        check = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejected {cfg}: {check.stderr.strip()}")
        self.proc = procs.spawn([exe, "-db", "-f", str(cfg)], log=self.work / "haproxy.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"haproxy never answered /health; see {self.work / 'haproxy.log'}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        procs.stop(self.proc)
        self.proc = None
