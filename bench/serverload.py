"""The load generator of ``bench.server``: simulated sync clients and order writers over HTTP.

    python -m bench.serverload CFG.json OUT.json

One process runs many clients as asyncio tasks over one ``httpx.AsyncClient`` (HTTP/1.1
keep-alive, a connection per client), so a few processes load the server for 200 clients
without the generator becoming the bottleneck. ``cfg["mode"]``:

* ``sync`` — each client (a sales rep of a small territory) bootstraps its replica with
  ``GET /v1/changes`` until ``has_more`` is false, then for ``steady`` seconds, every
  ``interval`` seconds (a steady rate; no catch-up burst when late), pulls the feed incrementally
  and every ``push_every``-th cycle pushes a small batch (a new activity and a customer edit).
  At the end it pulls once more (the drain) and reports which of the benchmark's activities it
  saw, so the orchestrator can check that no acknowledged write was lost by the feed.
* ``writers`` — ``cfg["writers"]`` order writers post batches of ``batch`` new orders to
  ``/v1/batch`` back to back for ``seconds`` seconds (from the wall-clock ``start_at``),
  noting when each batch was acknowledged.
* ``follower`` — a rep of the order-intake territories bootstraps, writes ``ready_file``, then
  follows the feed (an empty page: wait 20 ms) until ``stop_file`` exists and a last pull is
  empty, noting when it first saw each new order (the feed lag is the orchestrator's join).

Every request's latency is kept by kind (bootstrap, pull, push, batch); a failed request counts
under its status (or exception name), waits (``Retry-After`` or 0.5 s) and is sent again, with
the same op ids for a push (idempotent), until the run's deadline.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson

PAGE_LIMIT = 2000


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: Counter[str] = Counter()
        self.records = Counter[str]()  # records served, by phase
        self.op_status: Counter[str] = Counter()


class Failed(Exception):
    pass


async def request(http: httpx.AsyncClient, stats: Stats, kind: str, method: str, url: str, *, token: str,
                  deadline: float, **kw: Any) -> dict:
    """Send until a 200 arrives (or the deadline passes: Failed); latency and status noted."""
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        t0 = time.perf_counter()
        wait = 0.5
        try:
            resp = await http.request(method, url, headers=headers, **kw)
            stats.latency[kind].append(time.perf_counter() - t0)
            stats.status[str(resp.status_code)] += 1
            if resp.status_code == 200:
                return orjson.loads(resp.content)
            if resp.status_code == 410:
                raise Failed(f"{kind}: 410 resync required")
            wait = float(resp.headers.get("Retry-After", "0.5") or 0.5)
        except httpx.HTTPError as exc:
            stats.latency[kind].append(time.perf_counter() - t0)
            stats.status[type(exc).__name__] += 1
        if time.time() + wait > deadline:
            raise Failed(f"{kind}: no answer before the deadline")
        await asyncio.sleep(min(wait, 5.0))


def _rows(page: dict) -> list[tuple[str, list[str], list]]:
    return [(s["entity"], s["columns"], s["rows"]) for s in page["segments"] if s["op"] == "upsert"]


class SyncClient:
    def __init__(self, spec: dict, cfg: dict, http: httpx.AsyncClient, stats: Stats):
        self.spec, self.cfg, self.http, self.stats = spec, cfg, http, stats
        self.cursor: str | None = None
        self.versions: dict[str, int] = {}  # customers of the territory: id -> version
        self.seen: set[str] = set()  # the benchmark's activities this client received
        self.created: list[tuple[str, float]] = []  # (activity id, acknowledged at)
        self.n = 0
        self.bootstrap_s = 0.0
        self.drain_at = 0.0
        self.rng = random.Random(spec["token"])
        self.error: str | None = None

    async def pull(self, kind: str) -> int:
        records = 0
        while True:
            params = {"limit": PAGE_LIMIT, **({"cursor": self.cursor} if self.cursor else {})}
            page = await request(self.http, self.stats, kind, "GET", "/v1/changes", params=params,
                                 token=self.spec["token"], deadline=self.cfg["deadline"])
            for entity, _columns, rows in _rows(page):
                records += len(rows)
                if entity == "customer":
                    for row in rows:
                        self.versions[row[0]] = row[-1]
                elif entity == "activity":
                    prefix = self.cfg["prefix"]
                    self.seen.update(r[0] for r in rows if r[0].startswith(prefix))
            self.cursor = page["cursor"]
            if not page["has_more"]:
                self.stats.records[kind] += records
                return records

    async def push(self) -> None:
        self.n += 1
        ids = sorted(self.versions)
        cid = self.rng.choice(ids)
        aid = f"{self.cfg['prefix']}{self.spec['index']:04d}-{self.n:05d}"
        ops = [{"op_id": f"op-{aid}", "op": "create", "entity": "activity", "id": aid,
                "fields": {"customer_id": cid, "kind": "call", "subject": f"Call {self.n}",
                           "occurred_at": "2026-11-25T10:00:00Z"}}]
        target = self.rng.choice(ids)
        ops.append({"op_id": f"op-{aid}-u", "op": "update", "entity": "customer", "id": target,
                    "base_version": self.versions[target], "fields": {"phone": f"+49 30 {self.n:06d}"}})
        answer = await request(self.http, self.stats, "push", "POST", "/v1/batch", json={"ops": ops},
                               token=self.spec["token"], deadline=self.cfg["deadline"])
        now = time.time()
        for r in answer["results"]:
            self.stats.op_status[r["status"]] += 1
            if r["status"] in ("applied", "merged", "conflict") and r.get("record") and r["record"]["id"] == aid:
                self.created.append((aid, now))
            if r["status"] in ("applied", "merged", "conflict") and r.get("record") and r["record"]["id"] == target:
                self.versions[target] = r["version"]

    async def run(self) -> None:
        try:
            t0 = time.perf_counter()
            await self.pull("bootstrap")
            self.bootstrap_s = time.perf_counter() - t0
            interval, end = self.cfg["interval"], time.time() + self.cfg["steady"]
            next_at = time.monotonic() + self.rng.random() * interval
            cycle = 0
            while time.time() < end:
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.pull("pull")
                if cycle % self.cfg["push_every"] == 0 and self.versions:
                    await self.push()
                cycle += 1
                next_at = max(next_at + interval, time.monotonic())
            # Let the territory's other clients finish their last pushes, then drain the feed.
            await asyncio.sleep(self.cfg.get("drain_wait", 1.0))
            self.drain_at = time.time()
            await self.pull("pull")
        except Failed as exc:
            self.error = str(exc)

    def result(self) -> dict:
        return {"index": self.spec["index"], "territory": self.spec["territory"], "bootstrap_s": self.bootstrap_s,
                "created": self.created, "seen": sorted(self.seen), "drain_at": self.drain_at, "error": self.error}


async def run_sync(cfg: dict, http: httpx.AsyncClient, stats: Stats) -> dict:
    clients = [SyncClient(spec, cfg, http, stats) for spec in cfg["clients"]]
    t0 = time.time()
    await asyncio.gather(*(c.run() for c in clients))
    return {"clients": [c.result() for c in clients], "t0": t0, "t1": time.time()}


async def _writer(n: int, cfg: dict, http: httpx.AsyncClient, stats: Stats, acked: list) -> None:
    rng = random.Random(n)
    customers = cfg["customers"]
    end = max(cfg["start_at"], time.time()) + cfg["seconds"]  # a late start still writes for the whole time
    b = 0
    while time.time() < end:
        b += 1
        ops = []
        for k in range(cfg["batch"]):
            oid = f"{cfg['prefix']}{n:02d}-{b:05d}-{k:03d}"
            ops.append({"op_id": f"op-{oid}", "op": "create", "entity": "order", "id": oid,
                        "fields": {"customer_id": rng.choice(customers), "order_date": "2026-11-25",
                                   "amount": rng.randrange(1000, 500000), "currency": "EUR", "status": "paid"}})
        try:
            answer = await request(http, stats, "batch", "POST", "/v1/batch", json={"ops": ops},
                                   token=cfg["token"], deadline=cfg["deadline"])
        except Failed:
            return
        now = time.time()
        for r in answer["results"]:
            stats.op_status[r["status"]] += 1
            if r["status"] == "applied":
                acked.append((r["op_id"][3:], now))


async def run_writers(cfg: dict, http: httpx.AsyncClient, stats: Stats) -> dict:
    delay = cfg["start_at"] - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    acked: list[tuple[str, float]] = []
    t0 = time.time()
    await asyncio.gather(*(_writer(n, cfg, http, stats, acked) for n in cfg["writer_ids"]))
    return {"acked": acked, "t0": t0, "t1": time.time()}


async def run_follower(cfg: dict, http: httpx.AsyncClient, stats: Stats) -> dict:
    spec = {"token": cfg["token"], "index": 0, "territory": None}
    client = SyncClient(spec, {**cfg, "prefix": "\0"}, http, stats)
    await client.pull("bootstrap")
    Path(cfg["ready_file"]).write_text("ready")
    first_seen: dict[str, float] = {}
    dupes = 0
    stop_file = Path(cfg["stop_file"])
    prefix = cfg["prefix"]
    while True:
        stopping = stop_file.exists()
        params = {"limit": PAGE_LIMIT, "cursor": client.cursor}
        page = await request(http, stats, "follow", "GET", "/v1/changes", params=params, token=cfg["token"],
                             deadline=cfg["deadline"])
        now = time.time()
        for entity, _columns, rows in _rows(page):
            if entity != "order":
                continue
            for row in rows:
                if row[0].startswith(prefix):
                    if row[0] in first_seen:
                        dupes += 1
                    else:
                        first_seen[row[0]] = now
        client.cursor = page["cursor"]
        if not page["has_more"]:
            if stopping:
                break
            await asyncio.sleep(0.02)
    return {"first_seen": first_seen, "redelivered": dupes}


async def main_async(cfg: dict) -> dict:
    stats = Stats()
    limits = httpx.Limits(max_connections=cfg.get("connections", 256), max_keepalive_connections=cfg.get("connections", 256))
    async with httpx.AsyncClient(base_url=cfg["url"], limits=limits, timeout=httpx.Timeout(60.0)) as http:
        runner = {"sync": run_sync, "writers": run_writers, "follower": run_follower}[cfg["mode"]]
        out = await runner(cfg, http, stats)
    out["latency"] = {k: v for k, v in stats.latency.items()}
    out["status"] = dict(stats.status)
    out["records"] = dict(stats.records)
    out["op_status"] = dict(stats.op_status)
    return out


def main() -> None:
    cfg_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = json.loads(cfg_path.read_text())
    out = asyncio.run(main_async(cfg))
    tmp = out_path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(out))
    tmp.rename(out_path)


if __name__ == "__main__":
    main()
