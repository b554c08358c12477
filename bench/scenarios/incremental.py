"""Scenario 5: incremental sync of 1k server changes into the full replica.

Each round an admin changes 1,000 records through ``POST /v1/batch`` (customers' city, contacts'
title, tickets' priority — records chosen at random, each op based on the version the replica
holds), then the agent's replica syncs: ``SyncEngine.run_once`` exactly as the daemon runs it
(me, push of an empty outbox, pull of the feed). Reported: the run's latency and the pull's.

Baseline, same round, before the product: the same feed pages fetched raw over HTTP from the same
cursor with httpx and decoded with orjson, applied nowhere — the server-and-network floor.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench import variant
from bench.stats import summary

N_CHANGES = 1000
# Op ids and values unique to this process: a rerun on the same server copy must make real changes.
_NONCE = format(time.time_ns() // 1000 % 16**6, "x")


def make_ops(replica: Any, rng: random.Random, tag: str, n: int = N_CHANGES) -> list[dict[str, Any]]:
    """n update ops on random customers, contacts and tickets, based on the replica's versions."""
    plan = (("customer", "customers", "cus", "city", n // 2), ("contact", "contacts", "con", "title", n // 4),
            ("ticket", "tickets", "tkt", "priority", n - n // 2 - n // 4))
    ops = []
    for ent, table, prefix, field, k in plan:
        count = replica.count(ent)
        ids = [f"{prefix}-{i:07d}" for i in rng.sample(range(1, count + 1), min(k * 2, count))]
        marks = ",".join("?" * len(ids))
        rows = replica.conn.execute(f"SELECT id, version, {field} FROM {table} WHERE id IN ({marks})", ids).fetchall()
        for i, (rid, version, current) in enumerate(rows[:k]):
            if field == "priority":
                value = "high" if current != "high" else "low"
            else:
                value = f"{field.title()} {_NONCE}{tag}-{i}"
            ops.append({"op_id": f"bench-{_NONCE}-{tag}-{ent}-{i}", "op": "update", "entity": ent, "id": rid,
                        "base_version": version, "fields": {field: value}})
    return ops


def post_batch(http: Any, ops: list[dict[str, Any]]) -> dict[str, int]:
    import orjson

    response = http.post("/v1/batch", content=orjson.dumps({"ops": ops}), headers={"Content-Type": "application/json"})
    response.raise_for_status()
    statuses: dict[str, int] = {}
    for r in response.json()["results"]:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return statuses


def raw_fetch(http: Any, cursor: str | None, page_size: int) -> tuple[int, int]:
    """Fetch the feed from ``cursor`` to its end without applying it; (records, requests)."""
    import orjson

    records = requests = 0
    while True:
        params: dict[str, Any] = {"limit": page_size}
        if cursor:
            params["cursor"] = cursor
        response = http.get("/v1/changes", params=params)
        response.raise_for_status()
        requests += 1
        page = orjson.loads(response.content)
        for seg in page["segments"]:
            records += len(seg.get("rows") or seg.get("ids") or [])
        cursor = page["cursor"]
        if not page["has_more"]:
            return records, requests


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    import httpx
    import psutil

    from crm_tui.config import SyncSettings
    from sync.client import CrmClient
    from sync.engine import SyncEngine

    settings = SyncSettings()
    replica = variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg, durable=False)
    url = cfg["url"]
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {cfg['admin_token']}"}, timeout=120)
    raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {cfg['token']}"}, timeout=120)
    client = CrmClient(url, cfg["token"], settings)
    engine = SyncEngine(replica, client, settings)
    server = psutil.Process(cfg["server_pid"]) if cfg.get("server_pid") else None
    catch_up = engine.run_once()  # start at the head of the feed (not measured)
    pull_time = {"s": 0.0}
    pull = engine.pull

    def timed_pull(report: Any = None) -> Any:
        t = time.perf_counter()
        try:
            return pull(report)
        finally:
            pull_time["s"] = time.perf_counter() - t

    engine.pull = timed_pull  # type: ignore[method-assign]
    rng = random.Random(cfg.get("seed", 55))
    rounds: list[dict[str, Any]] = []
    for r in range(cfg.get("rounds", 5)):
        ops = make_ops(replica, rng, f"inc{r}")
        t = time.perf_counter()
        statuses = post_batch(admin, ops)
        batch_s = time.perf_counter() - t
        t = time.perf_counter()
        fetched, fetch_requests = raw_fetch(raw, replica.cursor, settings.page_size)
        fetch_s = time.perf_counter() - t
        before = client.requests_made
        server_cpu0 = sum(server.cpu_times()[:2]) if server else None
        t = time.perf_counter()
        report = engine.run_once()
        run_s = time.perf_counter() - t
        server_cpu = (sum(server.cpu_times()[:2]) - server_cpu0) if server and server_cpu0 is not None else None
        rounds.append({"changes": len(ops), "statuses": statuses, "admin_batch_s": batch_s, "raw_fetch_s": fetch_s,
                       "raw_records": fetched, "raw_requests": fetch_requests, "run_once_s": run_s,
                       "pull_s": pull_time["s"], "pulled": report.pulled, "ok": report.ok, "error": report.error,
                       "requests": client.requests_made - before, "server_cpu_s": server_cpu})
    out: dict[str, Any] = {
        "catch_up_pulled": catch_up.pulled,
        "rounds": rounds,
        "run_once": summary([x["run_once_s"] for x in rounds]),
        "pull": summary([x["pull_s"] for x in rounds]),
        "raw_fetch": summary([x["raw_fetch_s"] for x in rounds]),
        "admin_batch": summary([x["admin_batch_s"] for x in rounds]),
        "budget": cfg.get("budget", 0.300),
    }
    if out["run_once"]["p50"] > out["budget"] and cfg.get("profile"):
        from bench.profiling import Profile, instrument_replica, uninstrument_replica

        ops = make_ops(replica, rng, "incprof")
        post_batch(admin, ops)
        timer = instrument_replica(replica)
        with Profile(cfg["profile"], interval=0.0002) as prof:
            engine.run_once()
        out["sql_breakdown"] = timer.top(10)
        uninstrument_replica(replica, timer)
        out["profile"] = prof.result
    client.close()
    admin.close()
    raw.close()
    replica.close()
    return out
