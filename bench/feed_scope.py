"""A sales rep's incremental pull with a small and a large organisation around them.

The rep's own territory is the same in every run (``rep_customers`` customers, ``rep_writes``
changes since their last pull); only the rest of the organisation grows (``other_customers``
seeded customers, and a tenth as many new records written since the rep's last pull). The pull
should cost the same: the feed reads the rep's territory ranges, not the organisation's log.

    python -m bench.feed_scope --sizes 10000 100000                       # SQLite files in a temp dir
    python -m bench.feed_scope --url postgresql://postgres@127.0.0.1:5432/postgres --sizes 100000 1000000

``measure_rep_pull(target, other_customers)`` is what a server benchmark calls: it fills a new
database at ``target`` (a SQLite path, or a PostgreSQL URL of an empty database) and returns the
figures of one pull: statements, rows examined (PostgreSQL; SQLite: VM steps), seconds, records.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import orjson
import psycopg

from crm_server.accounts import add_user
from crm_server.batch import apply_batch
from crm_server.feed import pull_changes
from crm_server.scope import SYSTEM
from crm_server.seed import seed_database
from crm_server.store import open_store
from crm_server.store.probe import probe
from crm_tui.core.domain import ENTITIES

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
REP_TERRITORY = "bench-rep"
CUSTOMER = ENTITIES["customer"]


def _pull_all(store, user_id: str, cursor: str | None) -> tuple[str, int, int]:
    """Pull until has_more is false: (cursor, pages, records)."""
    pages = records = 0
    while True:
        page = orjson.loads(pull_changes(store, user_id, cursor, 5000))
        pages += 1
        records += sum(len(s.get("rows", ())) for s in page["segments"] if s["op"] == "upsert")
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor, pages, records


def _in_batches(store, ops: list[dict]) -> None:
    for start in range(0, len(ops), 1000):
        results = apply_batch(store, SYSTEM.id, ops[start:start + 1000])
        bad = [r for r in results if r["status"] not in ("applied", "merged")]
        if bad:
            raise RuntimeError(f"bench write failed: {bad[0]}")


def measure_rep_pull(target: str, other_customers: int, *, rep_customers: int = 200, rep_writes: int = 200,
                     other_writes: int | None = None, seeded: bool = False) -> dict:
    """Fill a new database at ``target`` and measure one incremental pull of a rep (see module doc).

    ``seeded``: the database already holds ``other_customers`` seeded customers (not seeded again)."""
    other_writes = other_customers // 10 if other_writes is None else other_writes
    store = open_store(target)
    try:
        started = time.perf_counter()
        if not seeded:
            seed_database(store, customers=other_customers, seed=1, now=NOW)
        _in_batches(store, [{"op_id": "bench-t", "op": "create", "entity": "territory", "id": REP_TERRITORY,
                             "fields": {"name": "Bench rep"}}])
        rep, _ = add_user(store, "Bench Rep", role="sales", territories=[REP_TERRITORY], user_id="bench-rep")
        _in_batches(store, [{"op_id": f"bench-c{i}", "op": "create", "entity": "customer", "id": f"bench-c{i:06d}",
                             "fields": {"name": f"Rep customer {i}", "territory": REP_TERRITORY}}
                            for i in range(rep_customers)])
        cursor, _, _ = _pull_all(store, rep["id"], None)
        with store.read() as tx:
            targets = [c for c in tx.list_records(CUSTOMER, after=None, limit=other_writes + rep_customers + 1,
                                                  filters={}, territories=None) if c["territory"] != REP_TERRITORY]
        _in_batches(store, [{"op_id": f"bench-far{i}", "op": "create", "entity": "activity", "id": f"bench-far{i:07d}",
                             "fields": {"customer_id": targets[i % len(targets)]["id"], "kind": "note",
                                        "occurred_at": "2026-11-24T10:00:00Z"}} for i in range(other_writes)])
        with store.read() as tx:
            mine = tx.list_records(CUSTOMER, after=None, limit=rep_writes, filters={}, territories=[REP_TERRITORY])
        _in_batches(store, [{"op_id": f"bench-u{c['id']}", "op": "update", "entity": "customer", "id": c["id"],
                             "base_version": c["version"], "fields": {"city": "Pulled"}} for c in mine])
        store.maintain()
        prepared = time.perf_counter() - started
        t0 = time.perf_counter()
        _, pages, records = _pull_all(store, rep["id"], cursor)
        seconds = time.perf_counter() - t0
        with probe(store) as cost:
            _pull_all(store, rep["id"], cursor)
        return {"backend": store.backend, "other_customers": other_customers, "other_writes": other_writes,
                "rep_writes": rep_writes, "records": records, "pages": pages, "statements": cost.statements,
                "rows_examined": cost.rows_examined, "seconds": seconds, "prepare_seconds": prepared}
    finally:
        store.close()


def _target(url: str | None, workdir: Path, size: int) -> str:
    if url is None:
        return str(workdir / f"scope-{size}.db")
    name = f"bench_scope_{size}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="other customers per run")
    parser.add_argument("--url", help="a PostgreSQL server's URL (databases are made on it); default: SQLite files")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="crm-scope-") as tmp:
        for size in args.sizes:
            rows.append(measure_rep_pull(_target(args.url, Path(tmp), size), size))
            print(orjson.dumps(rows[-1]).decode(), flush=True)
    base = rows[0]
    print("\n| other customers | other writes | rep records | statements | rows examined | seconds | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ratio = r["rows_examined"] / base["rows_examined"] if base["rows_examined"] else float("nan")
        print(f"| {r['other_customers']:,} | {r['other_writes']:,} | {r['records']} | {r['statements']} |"
              f" {r['rows_examined']:,} | {r['seconds']:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
