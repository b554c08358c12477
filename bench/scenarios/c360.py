"""Scenario 3: opening a customer 360 view, cold and warm (p50/p99).

* cold: a customer never opened before (so its hot-cache entry is missing): the view is assembled
  from SQLite and stored in the diskcache directory — ``Reads.customer_360`` as the screen calls it;
* warm: the same customers again, answered from diskcache;
* baseline: a single-row SQLite point lookup of the same customer (``SELECT * ... WHERE id = ?``).

Also reported: assembling the view without the hot cache (``_build_360``), which splits the cold
figure into SQLite work and cache overhead.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any

from bench import variant
from bench.stats import summary


def run(cfg: dict[str, Any]) -> dict[str, Any]:

    hot = Path(cfg["hot_dir"])
    shutil.rmtree(hot, ignore_errors=True)
    replica = variant.open_replica(cfg["replica"], hot, cfg)
    n = replica.count("customer")
    rng = random.Random(360)
    want = min(cfg.get("customers", 300), n // 3)
    picked = rng.sample(range(1, n + 1), 3 * want)
    ids = [f"cus-{i:07d}" for i in picked[:want]]
    build_ids = [f"cus-{i:07d}" for i in picked[want: 2 * want]]
    prof_ids = [f"cus-{i:07d}" for i in picked[2 * want:]]
    reads, conn = replica.reads, replica.conn

    def point_pass(sample: list[str]) -> list[float]:
        out = []
        for cid in sample:
            t = time.perf_counter()
            conn.execute("SELECT * FROM customers WHERE id = ?", (cid,)).fetchone()
            out.append(time.perf_counter() - t)
        return out

    # Touch the customer rows first, so cold means "not in the hot cache", not "not in the OS cache".
    point_pass(ids + build_ids)
    baseline = point_pass(ids)
    cold, warm, build = [], [], []
    sizes = []
    for cid in ids:
        t = time.perf_counter()
        view = reads.customer_360(cid)
        cold.append(time.perf_counter() - t)
        sizes.append(sum(len(view.get(k) or []) for k in ("contacts", "recent_orders", "recent_tickets", "deals",
                                                          "recent_activities")) if view else 0)
    misses_cold = replica.hot.misses
    for _ in range(cfg.get("warm_passes", 3)):
        order = ids[:]
        rng.shuffle(order)
        for cid in order:
            t = time.perf_counter()
            reads.customer_360(cid)
            warm.append(time.perf_counter() - t)
    hits_warm = replica.hot.hits
    for cid in build_ids:
        t = time.perf_counter()
        reads._build_360(cid)
        build.append(time.perf_counter() - t)
    baseline += point_pass(ids)
    out: dict[str, Any] = {
        "customers": len(ids),
        "cold": summary(cold),
        "warm": summary(warm),
        "build_only": summary(build),
        "point_lookup": summary(baseline),
        "cache_misses_cold": misses_cold,
        "cache_hits_warm": hits_warm,
        "rows_per_view": summary(sizes),
        "budget_cold": cfg.get("budget_cold", 0.005),
        "budget_warm": cfg.get("budget_warm", 0.001),
    }
    missed = out["cold"]["p99"] > out["budget_cold"] or out["warm"]["p99"] > out["budget_warm"]
    if missed and cfg.get("profile"):
        from bench.profiling import Profile, instrument_replica, uninstrument_replica

        timer = instrument_replica(replica)
        sample = prof_ids[:50]
        for cid in sample:
            reads.customer_360(cid)
        out["sql_breakdown"] = timer.top(12, per=len(sample))
        uninstrument_replica(replica, timer)
        with Profile(cfg["profile"], interval=0.0002) as prof:
            for cid in prof_ids[50:]:
                reads.customer_360(cid)  # cold
            for _ in range(3):
                for cid in prof_ids[50:]:
                    reads.customer_360(cid)  # warm
        out["profile"] = prof.result
    replica.close()
    return out
