"""A REAL PostgreSQL hot standby for tests: a primary, and a copy of it made with ``pg_basebackup
-R`` that follows it by streaming replication (``hot_standby=on``, its own port).

Lag on purpose: ``pause_replay()`` stops the standby applying the WAL it receives (the primary
keeps committing; the standby keeps answering reads as of the pause), ``resume_replay()`` lets
it go on, ``wait_replayed()`` waits until it has applied everything the primary wrote so far.
``halt_standby()`` stops the standby at once, as a crash would (its files stay, for
``restart_standby()``).

Both clusters log every statement with the connecting ``application_name`` in front (see
``statements``): a test names its connections (``?application_name=...`` in the URL) and counts
which cluster ran what. ::

    with ReplicatedPostgres.start(tmp_dir) as rp:
        url = rp.create_database()          # made on the primary, replicated to the standby
        rp.standby_url(url)                 # the same database on the standby
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from support.postgres import START_TIMEOUT, PostgresServer, _as_postgres, _bin_dir

# Every statement in the log, after the application_name of the connection that ran it.
LOGGED = "-c log_statement=all -c log_line_prefix='%a|'"
REPLAY_TIMEOUT = 30.0
# "statement: ..." (simple protocol) or "execute <unnamed>: ..." (psycopg's extended protocol)
_STATEMENT = re.compile(r"LOG:  (?:statement|execute [^:]*): (.*)")


def logged_statements(server: Any, since: int, app: str) -> list[str]:
    """The statements PostgreSQL logged (with LOGGED) for ``application_name`` ``app`` after
    offset ``since`` of ``server``'s log."""
    return [m.group(1) for line in server.log_text()[since:].splitlines()
            if line.startswith(f"{app}|") and (m := _STATEMENT.search(line))]


def _tool(name: str) -> Path:
    """A PostgreSQL program of the same installation as initdb (Debian keeps pg_basebackup only in
    its own bin dir; /usr/local/bin may hold links to a few programs)."""
    here = _bin_dir()
    for place in (here, Path(os.path.realpath(here / "pg_ctl")).parent):
        if (place / name).exists():
            return place / name
    raise RuntimeError(f"PostgreSQL's {name} was not found next to {here / 'pg_ctl'}")


@dataclass
class ReplicatedPostgres:
    """A primary and its hot standby; ``stop()`` (or leaving the ``with`` block) ends both."""

    primary: PostgresServer
    standby: PostgresServer

    @classmethod
    def start(cls, parent: str | Path | None = None) -> ReplicatedPostgres:
        """A new primary, and a standby made from it with pg_basebackup (as the postgres user).
        Raises RuntimeError with the logs when either does not come up."""
        primary = PostgresServer.start(parent, settings=LOGGED)
        try:
            base = Path(tempfile.mkdtemp(prefix="crm-pg-standby-", dir=parent))
            if os.geteuid() == 0:
                shutil.chown(base, "postgres", "postgres")
            done = subprocess.run(
                _as_postgres([str(_tool("pg_basebackup")), "-D", str(base / "data"), "-R", "-X", "stream",
                              "-c", "fast", "--no-sync", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]),
                capture_output=True, text=True, timeout=START_TIMEOUT,
            )
            if done.returncode != 0:
                shutil.rmtree(base, ignore_errors=True)
                raise RuntimeError(f"pg_basebackup failed: {done.stderr.strip()}")
            standby = PostgresServer.run(base, settings=f"-c hot_standby=on {LOGGED}")
        except BaseException:
            primary.stop()
            raise
        pair = cls(primary=primary, standby=standby)
        pair.wait_replayed()
        return pair

    def __enter__(self) -> ReplicatedPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases

    def create_database(self, name: str | None = None) -> str:
        """A fresh database on the primary (its URL); it reaches the standby by replication."""
        return self.primary.create_database(name)

    def standby_url(self, url: str) -> str:
        """The URL of the same database on the standby."""
        return url.replace(f"127.0.0.1:{self.primary.port}/", f"127.0.0.1:{self.standby.port}/", 1)

    # ------------------------------------------------------------------ lag on purpose

    def _standby(self, sql: str) -> object:
        with self.standby.connect() as conn:
            return conn.execute(sql).fetchone()[0]

    def pause_replay(self) -> None:
        """Stop the standby applying WAL: from now on it answers as of this moment."""
        self._standby("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + REPLAY_TIMEOUT
        while self._standby("SELECT pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not pause its replay")
            time.sleep(0.01)

    def resume_replay(self) -> None:
        """Let the standby apply WAL again (it catches up by itself)."""
        self._standby("SELECT pg_wal_replay_resume()")

    def wait_replayed(self) -> None:
        """Wait until the standby has applied every WAL record the primary wrote so far."""
        with self.primary.connect() as conn:
            # A record of its own, not pg_current_wal_insert_lsn(): on an idle primary that may
            # point past a page header no replayed record ever ends at.
            target = conn.execute("SELECT pg_logical_emit_message(false, 'crm-test', 'mark')").fetchone()[0]
        deadline = time.monotonic() + REPLAY_TIMEOUT
        while True:
            with self.standby.connect() as conn:
                caught_up = conn.execute(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", (target,)).fetchone()[0]
            if caught_up:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby did not replay up to {target}:\n{self.standby.log_text()[-2000:]}")
            time.sleep(0.02)

    # ------------------------------------------------------------------ evidence

    def statements(self, which: str, application: str, since: int = 0) -> list[str]:
        """The statements ``which`` ("primary" or "standby") logged for connections named
        ``application``, from byte ``since`` of its log on (see ``log_size``)."""
        server = self.primary if which == "primary" else self.standby
        text = server.log_text()[since:]
        return [m.group(1) for line in text.splitlines()
                if line.startswith(f"{application}|") and (m := _STATEMENT.search(line))]

    def log_size(self, which: str) -> int:
        """How much ``which`` has logged so far (a mark for ``statements``)."""
        return len((self.primary if which == "primary" else self.standby).log_text())

    # ------------------------------------------------------------------ failures

    def halt_standby(self) -> None:
        """Stop the standby at once (an immediate shutdown, like a crash); its files stay."""
        subprocess.run(_as_postgres([str(_bin_dir() / "pg_ctl"), "-D", str(self.standby.dir / "data"), "-m",
                                     "immediate", "-w", "stop"]), capture_output=True, timeout=60)

    def stop(self) -> None:
        """Stop both clusters and delete their files."""
        self.standby.stop()
        self.primary.stop()


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection to ``url``."""
    return psycopg.connect(url, autocommit=True, connect_timeout=10)
