"""Scenario 6: push of 10k queued local edits — requests made and time.

Each round queues 10,000 local edits the way the app saves them (``Replica.writes.update`` on a
durable replica: one transaction and outbox row per save; the per-save latency is reported too),
then pushes them as the sync worker does (``SyncEngine.push`` on a durable=False replica) and
counts the HTTP requests (``CrmClient.requests_made``).

Baseline, same round: 10,000 equivalent update ops on other records POSTed raw with httpx in
batches of the same size — the server's apply time plus HTTP, with no outbox bookkeeping.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from bench import variant
from bench.stats import summary

N_EDITS = 10_000


def _pool(replica: Any, rng: random.Random) -> list[tuple[str, str]]:
    """Every customer and contact id, shuffled: rounds and the baseline draw disjoint slices."""
    pool = [("customer", f"cus-{i:07d}") for i in range(1, replica.count("customer") + 1)]
    pool += [("contact", f"con-{i:07d}") for i in range(1, replica.count("contact") + 1)]
    rng.shuffle(pool)
    return pool


def _edit(entity: str, tag: str, i: int) -> dict[str, Any]:
    return {"city": f"Push {tag}-{i}"} if entity == "customer" else {"title": f"Push {tag}-{i}"}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    import httpx
    import orjson

    from crm_tui.config import SyncSettings
    from crm_tui.core.domain import ENTITIES
    from sync.client import CrmClient
    from sync.engine import Stopped, SyncEngine

    settings = SyncSettings()
    n = cfg.get("edits", N_EDITS)
    rng = random.Random(cfg.get("seed", 66))
    with variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg, durable=False) as replica:
        pool = _pool(replica, rng)
        # Leftovers of an interrupted earlier run would be pushed too and skew the figures (bench-only).
        with replica.transaction() as conn:
            dropped = conn.execute("DELETE FROM outbox WHERE state = 'pending'").rowcount
    raw = httpx.Client(base_url=cfg["url"], headers={"Authorization": f"Bearer {cfg['token']}"}, timeout=300)
    # Values unique to this run: an edit equal to what the replica holds would be no edit at all.
    nonce = format(int(time.time()) % 1_000_000, "x")
    rounds = []
    all_save: list[float] = []
    profile_result = None
    n_rounds = cfg.get("rounds", 3)
    time_cap = cfg.get("time_cap", 240.0)  # no new round once the pushes took this long in total
    spent = 0.0
    r = -1
    while True:
        r += 1
        profiling = r >= n_rounds or (r > 0 and spent > time_cap)
        if profiling and not cfg.get("profile_push"):
            break
        mine, theirs = pool[:n], pool[n: 2 * n]
        pool = pool[2 * n:]
        if len(mine) < n or len(theirs) < n:
            break
        # Queue the edits as the app does.
        save = []
        with variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg, durable=True) as ui:
            t_queue = time.perf_counter()
            for i, (ent, rid) in enumerate(mine):
                t = time.perf_counter()
                ui.writes.update(ent, rid, _edit(ent, f"{nonce}r{r}", i))
                save.append(time.perf_counter() - t)
            queue_s = time.perf_counter() - t_queue
            pending = ui.outbox.counts()["pending"]
        # Baseline: the same number of ops, raw, in batches of the same size.
        with variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg, durable=False) as replica:
            ops = []
            for i, (ent, rid) in enumerate(theirs):
                row = replica.conn.execute(f"SELECT version FROM {ENTITIES[ent].table} WHERE id = ?", (rid,)).fetchone()
                ops.append({"op_id": f"bench-raw-{nonce}-r{r}-{i}", "op": "update", "entity": ent, "id": rid,
                            "base_version": row[0], "fields": _edit(ent, f"{nonce}raw{r}", i)})
        t = time.perf_counter()
        raw_requests = 0
        raw_status: dict[str, int] = {}
        for start in range(0, len(ops), settings.batch_size):
            response = raw.post("/v1/batch", content=orjson.dumps({"ops": ops[start: start + settings.batch_size]}),
                                headers={"Content-Type": "application/json"})
            response.raise_for_status()
            raw_requests += 1
            for res in orjson.loads(response.content)["results"]:
                raw_status[res["status"]] = raw_status.get(res["status"], 0) + 1
        raw_s = time.perf_counter() - t
        # The product: push the outbox.
        with variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg, durable=False) as replica, \
                CrmClient(cfg["url"], cfg["token"], settings) as client:
            stop = threading.Event()
            engine = SyncEngine(replica, client, settings, stop=stop)
            prof = None
            if profiling:
                from bench.profiling import Profile

                # The profile needs no whole push: it stops after profile_seconds (between two batches).
                timer = threading.Timer(cfg.get("profile_seconds", 30.0), stop.set)
                timer.daemon = True
                timer.start()
                prof = Profile(cfg["profile_push"], interval=0.001)
                prof.__enter__()
            t = time.perf_counter()
            try:
                report = engine.push()
            except Stopped:
                report = None
            push_s = time.perf_counter() - t
            if prof is not None:
                prof.__exit__(None, None, None)
                profile_result = prof.result
                profile_result["pushed_before_stop"] = client.requests_made
                # What the stopped push left is dropped (bench-only), so later scenarios start clean.
                with replica.transaction() as conn:
                    conn.execute("DELETE FROM outbox WHERE state = 'pending'")
            left = replica.outbox.counts()
            requests = client.requests_made
        if profiling or report is None:
            break
        spent += push_s
        all_save += save
        rounds.append({"edits": len(mine), "queued": pending, "queue_s": queue_s, "save": summary(save),
                       "push_s": push_s, "requests": requests, "pushed": report.pushed,
                       "conflicts": report.conflicts, "rejected": report.rejected, "left": left,
                       "raw_s": raw_s, "raw_requests": raw_requests, "raw_status": raw_status})
    raw.close()
    return {
        "rounds": rounds,
        "push": summary([x["push_s"] for x in rounds]),
        "raw": summary([x["raw_s"] for x in rounds]),
        "requests": max((x["requests"] for x in rounds), default=None),
        "save": summary(all_save),
        "batch_size": settings.batch_size,
        "budget_requests": cfg.get("budget_requests", 20),
        "profile": profile_result,
        "dropped_leftovers": dropped,
    }
