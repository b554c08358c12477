"""Scenario 4: bootstrap of the whole data set over loopback into an empty replica, FTS included.

``run``: one bootstrap exactly as ``crm-tui sync --once`` does it on a new replica (a durable=False
Replica, a CrmClient, SyncEngine.run_once) timed from opening the empty replica to the end of the
run, with the moments customers and then contacts were complete (search usable).

``ceiling``: the baseline — the same rows read from the server's database and inserted with plain
``executemany`` into empty tables of the same columns (no key, no index, no FTS), in transactions
of one page each, with the replica's pragmas. Only the inserts and commits are timed.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from bench import variant


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    from cache.replica import Replica
    from crm_tui.config import SyncSettings
    from crm_tui.core.syncstate import SyncEvent
    from sync.client import CrmClient
    from sync.engine import SyncEngine

    data_dir = Path(cfg["data_dir"])
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    settings = SyncSettings()
    stop = threading.Event()
    profile = None
    if cfg.get("profile"):
        from bench.profiling import Profile

        profile = Profile(cfg["profile"], interval=0.002)
        if cfg.get("profile_seconds"):
            timer = threading.Timer(cfg["profile_seconds"], stop.set)
            timer.daemon = True
            timer.start()
        profile.__enter__()

    t0 = time.perf_counter()
    replica = Replica(data_dir / "replica.db", data_dir / "hot-cache", durable=False,
                      key=variant.replica_key(data_dir, cfg, create=True))
    timer = None
    if profile is not None:
        from bench.profiling import instrument_replica

        timer = instrument_replica(replica)  # which statements the time goes to (profiled run only)
    marks: dict[str, float] = {}
    timeline: list[tuple[float, str | None, int]] = []  # (t, entity being streamed, records pulled so far)
    pulled = 0

    def on_event(event: SyncEvent) -> None:
        nonlocal pulled
        now = time.perf_counter() - t0
        if event.phase not in ("snapshot", "backfill", "pull"):
            return
        complete = replica.get_meta("complete_entities") or []
        progress = replica.get_meta("progress") or {}
        if "customer" in complete and "customers" not in marks:
            marks["customers"] = now
        if "contact" in complete and "contacts" not in marks:
            marks["contacts"] = now
        if event.search_ready and "search_ready" not in marks:
            marks["search_ready"] = now
        pulled = event.done or pulled
        timeline.append((round(now, 3), progress.get("entity"), int(event.done or 0)))

    with CrmClient(cfg["url"], cfg["token"], settings) as client:
        engine = SyncEngine(replica, client, settings, on_event, stop)
        report = engine.run_once()
        seconds = time.perf_counter() - t0
        requests = client.requests_made
    if timer is not None:
        from bench.profiling import uninstrument_replica

        uninstrument_replica(replica, timer)
    counts = replica.counts()
    replica.close()
    prof = None
    if profile is not None:
        profile.__exit__(None, None, None)
        prof = profile.result
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ok": report.ok,
        "error": report.error,
        "stopped_early": stop.is_set() and not report.ok,
        "seconds": seconds,
        "pulled": report.pulled,
        "records": sum(counts.values()),
        "counts": counts,
        "records_per_s": report.pulled / seconds if seconds else None,
        "customers_ready_s": marks.get("customers"),
        "contacts_ready_s": marks.get("contacts"),
        "search_ready_s": marks.get("search_ready"),
        "requests": requests,
        "page_size": settings.page_size,
        "cpu": usage.ru_utime + usage.ru_stime,
        "max_rss": usage.ru_maxrss * 1024,
        "phases": _phase_rates(timeline),
        "profile": prof,
        "sql_breakdown": timer.top(12) if timer is not None else None,
    }


def _phase_rates(timeline: list[tuple[float, str | None, int]]) -> list[dict[str, Any]]:
    """Records/s while each entity streamed (from the per-page progress)."""
    out: list[dict[str, Any]] = []
    prev_t, prev_n, cur = 0.0, 0, None
    start_t, start_n = 0.0, 0
    for t, ent, n in timeline:
        if ent != cur:
            if cur is not None:
                out.append({"entity": cur, "seconds": prev_t - start_t, "records": prev_n - start_n})
            cur, start_t, start_n = ent, prev_t, prev_n
        prev_t, prev_n = t, n
    if cur is not None:
        out.append({"entity": cur, "seconds": prev_t - start_t, "records": prev_n - start_n})
    for row in out:
        row["records_per_s"] = row["records"] / row["seconds"] if row["seconds"] > 0 else None
    return out


def ceiling(cfg: dict[str, Any]) -> dict[str, Any]:
    from cache.schema import entity_columns
    from cache.sqlite import connect_keyed
    from crm_tui.core.domain import ENTITIES

    src = sqlite3.connect(f"file:{cfg['server_db']}?mode=ro", uri=True)
    dest_path = Path(cfg["dest"])
    for p in (dest_path, dest_path.with_name(dest_path.name + "-wal"), dest_path.with_name(dest_path.name + "-shm")):
        p.unlink(missing_ok=True)
    # The encrypted variant's ceiling pays SQLCipher's page encryption too, like the replica does.
    dest = connect_keyed(str(dest_path), os.urandom(32) if cfg.get("encrypted") else None, timeout=30)
    dest.execute("PRAGMA journal_mode = WAL")
    dest.execute("PRAGMA synchronous = NORMAL")
    dest.execute("PRAGMA cache_size = -65536")
    chunk = int(cfg.get("chunk", 2000))
    spent = 0.0
    rows_total = 0
    per_entity = {}
    for ent in ENTITIES.values():
        cols = [c for c in entity_columns(ent) if c != "_gen"]
        dest.execute(f"CREATE TABLE {ent.table} ({', '.join(cols)})")
        sql = f"INSERT INTO {ent.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        cur = src.execute(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)} FROM \"{ent.table}\"")
        ent_spent, n = 0.0, 0
        while rows := cur.fetchmany(chunk):
            t = time.perf_counter()
            dest.execute("BEGIN")
            dest.executemany(sql, rows)
            dest.execute("COMMIT")
            ent_spent += time.perf_counter() - t
            n += len(rows)
        per_entity[ent.name] = {"rows": n, "seconds": ent_spent}
        spent += ent_spent
        rows_total += n
    dest.close()
    src.close()
    size = sum(p.stat().st_size for p in dest_path.parent.glob(dest_path.name + "*"))
    for p in dest_path.parent.glob(dest_path.name + "*"):
        p.unlink()
    return {"rows": rows_total, "seconds": spent, "rows_per_s": rows_total / spent if spent else None,
            "per_entity": per_entity, "chunk": chunk, "bytes": size}
