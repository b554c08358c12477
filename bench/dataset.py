"""The benchmark data set: ``crm-server seed`` output cached under bench/data/ (keyed by size and
seed, so reruns skip seeding), a fresh work copy per run (scenarios 5 and 6 write to it), and the
benchmark's users with their tokens."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procs import PY, ROOT, clean_env

DATA = ROOT / "bench" / "data"
WORK = ROOT / "bench" / ".work"
# A fixed "now" makes the seeded data (dates, SLA due times) the same on every machine and day.
SEED_NOW = "2026-11-25T09:00:00Z"
ENTITY_TABLES = ("territories", "users", "customers", "contacts", "tickets", "deals", "orders", "activities", "tasks")


def _server(*args: str, db: Path, timeout: float | None = None) -> str:
    done = subprocess.run([PY, "-m", "crm_server.cli", *args, "--db", str(db)], capture_output=True, text=True,
                          env=clean_env(), cwd=ROOT, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"crm-server {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def _sidecars(db: Path) -> list[Path]:
    return [db.with_name(db.name + s) for s in ("-wal", "-shm")]


def seed_code_version() -> str:
    """A short hash of the code that decides what a seeded database holds (its schema and data)."""
    digest = hashlib.sha256()
    for part in ("seed.py", "seed_data.py", "store/migrations.py", "store/sqlite_schema.py"):
        digest.update((ROOT / "crm_server" / part).read_bytes())
    return digest.hexdigest()[:10]


def seeded_db(customers: int, seed: int, say=print) -> tuple[Path, float | None]:
    """The cached seeded server database for (customers, seed); seeds it if missing.

    Returns the path and the seconds seeding took (None: it was cached)."""
    DATA.mkdir(parents=True, exist_ok=True)
    db = DATA / f"crm-{customers}-seed{seed}-{seed_code_version()}.db"
    if db.exists():
        return db, None
    # A data set seeded by older seeding code (or for an older schema) is never reused: it may
    # lack whole tables (a cached set from before tasks made the bootstrap fail).
    for stale in DATA.glob(f"crm-{customers}-seed{seed}*.db"):
        stale.unlink(missing_ok=True)
    partial = db.with_suffix(".partial.db")
    for p in (partial, *_sidecars(partial)):
        p.unlink(missing_ok=True)
    say(f"seeding {customers:,} customers (seed {seed}) into {db.relative_to(ROOT)} — cached for later runs")
    t0 = time.perf_counter()
    _server("seed", "--customers", str(customers), "--seed", str(seed), "--now", SEED_NOW, db=partial)
    seconds = time.perf_counter() - t0
    # Fold the WAL into the file so the cache is one self-contained file.
    conn = sqlite3.connect(partial)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    partial.rename(db)
    return db, seconds


def work_copy(src: Path, dest: Path) -> Path:
    """A private copy of the seeded database for this run (the scenarios write to it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for p in (dest, *_sidecars(dest)):
        p.unlink(missing_ok=True)
    shutil.copyfile(src, dest)
    return dest


@dataclass
class Users:
    agent: str  # token of a support agent: every customer is in scope, like the "whole data set"
    admin: str  # token of an admin: makes the server-side changes of scenario 5
    agent_id: str = "bench-agent"
    admin_id: str = "bench-admin"


def add_users(db: Path) -> Users:
    agent = _server("user", "add", "Bench Agent", "--role", "agent", "--team", "support-l1", "--id", "bench-agent",
                    db=db)
    admin = _server("user", "add", "Bench Admin", "--role", "admin", "--id", "bench-admin", db=db)
    return Users(agent=agent.splitlines()[-1].strip(), admin=admin.splitlines()[-1].strip())


def server_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # A data set cached before tasks existed has no tasks table until a server opens it.
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] if t in tables else 0
                for t in ENTITY_TABLES}
    finally:
        conn.close()


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, *_sidecars(path)) if p.exists())


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
