"""Writes through ``POST /v1/batch`` on one PostgreSQL server, two code trees side by side.

A quick, same-run comparison for work on the batch path (not part of ``make bench-server``, and
it writes no report file): one PostgreSQL cluster of its own (``bench/pgcluster.py``: fsync on,
pg_stat_statements), one database and one ``crm-server serve`` per code tree, and the same
writes pushed through each in turn (ABBA order over the rounds, so a shift in the machine's load
hits both alike)::

    python -m bench.batch_write                    # main (git archive) against this checkout
    python -m bench.batch_write --before OTHER_DIR --ops 5000 --writers 8

Workloads (``--mix``):

* ``orders``: batches of ``--batch`` new orders (the order-intake scenario);
* ``edits``: batches of ``--batch`` customer edits (each writer edits its own customers, with
  the version its last answer gave, so most are ``applied``);
* ``sync``: a sync client's push, two ops a batch: a new activity and a customer edit.

For each: ops/s through each tree (median over rounds), the ratio, and the statements PostgreSQL
ran per op (pg_stat_statements: every statement of the server's database, BEGIN and COMMIT too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.pgcluster import Cluster

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0


def export_rev(rev: str) -> Path:
    """A copy of the source tree at ``rev`` (git archive) in a temp dir."""
    out = Path(tempfile.mkdtemp(prefix="crm-bw-"))
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(out, filter="data")
    return out


class Tree:
    """One code tree: its database and its server process."""

    def __init__(self, label: str, src: Path, cluster: Cluster, customers: int):
        self.label, self.src, self.cluster = label, src, cluster
        self.db = f"bw_{label}"
        self.url = cluster.create_database(self.db)
        self.env = {**os.environ, "PYTHONPATH": str(src)}
        self._cli("seed", "--db", self.url, "--customers", str(customers), "--seed", "1")
        self.token = self._cli("user", "add", "bench-writer", "--role", "agent", "--db", self.url).strip()
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""

    def _cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "crm_server.cli", *args], cwd=self.src, env=self.env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{self.label}: crm-server {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def start(self) -> None:
        from crm_server.announce import wait_for_url

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crm_server.cli", "serve", "--db", self.url, "--port", "0", "--rate-limit", "0",
             "--max-connections-per-client", "0"],
            cwd=self.src, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = wait_for_url(self.proc, START_TIMEOUT)
        if url is None:
            self.stop()
            raise RuntimeError(f"{self.label}: crm-server did not start")
        self.base = url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def customers(self) -> list[tuple[str, int]]:
        with self.cluster.connect(self.db) as conn:
            return [(i, int(v)) for i, v in conn.execute("SELECT id, version FROM customers ORDER BY id").fetchall()]

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the server process and by PostgreSQL's backends of this
        tree's database (user + system)."""
        import psutil

        def used(proc: psutil.Process) -> float:
            try:
                t = proc.cpu_times()
                return t.user + t.system
            except psutil.Error:
                return 0.0

        server = used(psutil.Process(self.proc.pid)) if self.proc is not None else 0.0
        with self.cluster.connect() as conn:
            pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                                (self.db,)).fetchall()]
        backends = 0.0
        for pid in pids:
            try:
                backends += used(psutil.Process(pid))
            except psutil.Error:
                pass
        return server, backends

    def statements(self) -> int:
        with self.cluster.connect() as conn:
            row = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                               " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)", (self.db,)).fetchone()
        return int(row[0]) if row else 0


async def _post(http: httpx.AsyncClient, tree: Tree, ops: list[dict]) -> list[dict]:
    for _ in range(20):
        resp = await http.post(f"{tree.base}/v1/batch", json={"ops": ops},
                               headers={"Authorization": f"Bearer {tree.token}"})
        if resp.status_code == 200:
            return orjson.loads(resp.content)["results"]
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{tree.label}: /v1/batch kept failing: {resp.status_code} {resp.text[:300]}")


async def _writer(http: httpx.AsyncClient, tree: Tree, mix: str, n: int, batches: int, size: int,
                  mine: dict[str, int], tag: str, statuses: dict[str, int]) -> None:
    ids = sorted(mine)
    round_no = sum(map(ord, tag))  # a new phone number each round: every edit changes something
    k = 0
    for b in range(batches):
        ops: list[dict] = []
        for j in range(size):
            k += 1
            rid = f"{tag}-{n:02d}-{b:05d}-{j:03d}"
            cid = ids[k % len(ids)]
            if mix == "orders" or (mix == "sync" and j % 2 == 0):
                if mix == "orders":
                    ops.append({"op_id": f"op-{rid}", "op": "create", "entity": "order", "id": rid,
                                "fields": {"customer_id": cid, "order_date": "2026-11-25", "amount": 1000 + k,
                                           "currency": "EUR", "status": "paid"}})
                else:
                    ops.append({"op_id": f"op-{rid}", "op": "create", "entity": "activity", "id": rid,
                                "fields": {"customer_id": cid, "kind": "call", "subject": f"Call {k}",
                                           "occurred_at": "2026-11-25T10:00:00Z"}})
            else:
                ops.append({"op_id": f"op-{rid}", "op": "update", "entity": "customer", "id": cid,
                            "base_version": mine[cid], "fields": {"phone": f"+49 30 {k:06d} {round_no}"}})
        for r in await _post(http, tree, ops):
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            rec = r.get("record")
            if rec and rec.get("id") in mine:
                mine[rec["id"]] = r["version"]


async def push(tree: Tree, mix: str, ops: int, writers: int, size: int, tag: str) -> dict[str, Any]:
    if mix == "sync":
        size = 2
    batches = max(1, ops // (size * writers))
    customers = tree.customers()
    shares = [dict(customers[n::writers]) for n in range(writers)]  # each writer edits its own customers
    statuses: dict[str, int] = {}
    before = tree.statements()
    cpu_before = tree.cpu()
    limits = httpx.Limits(max_connections=writers + 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(_writer(http, tree, mix, n, batches, size, shares[n], tag, statuses)
                               for n in range(writers)))
        wall = time.perf_counter() - t0
    done = batches * size * writers
    cpu_after = tree.cpu()
    return {"ops": done, "seconds": wall, "ops_per_s": done / wall,
            "statements_per_op": (tree.statements() - before) / done, "statuses": statuses,
            "server_ms_per_op": (cpu_after[0] - cpu_before[0]) * 1000 / done,
            "pg_ms_per_op": (cpu_after[1] - cpu_before[1]) * 1000 / done}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.batch_write", description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="the other code tree (a directory); default: `--rev` exported with git archive")
    ap.add_argument("--rev", default="main", help="the revision to compare with when --before is not given")
    ap.add_argument("--ops", type=int, default=5000, help="ops per workload, round and tree")
    ap.add_argument("--writers", type=int, default=8, help="concurrent writers")
    ap.add_argument("--batch", type=int, default=100, help="ops per batch (orders, edits)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--customers", type=int, default=2000, help="customers seeded into each database")
    ap.add_argument("--mix", default="orders,edits,sync")
    args = ap.parse_args(argv)
    before = Path(args.before) if args.before else export_rev(args.rev)
    cluster = Cluster(shared_buffers="128MB").start()
    trees: list[Tree] = []
    try:
        trees = [Tree("before", before, cluster, args.customers), Tree("after", ROOT, cluster, args.customers)]
        for t in trees:
            t.start()
        figures: dict[tuple[str, str], list[dict]] = {}
        for mix in args.mix.split(","):
            for rnd in range(args.rounds):
                order = trees if rnd % 2 == 0 else trees[::-1]
                for t in order:
                    out = asyncio.run(push(t, mix, args.ops, args.writers, args.batch, f"{mix[0]}{rnd}"))
                    figures.setdefault((mix, t.label), []).append(out)
                    print(f"{mix:7} round {rnd} {t.label:6}: {out['ops']:,} ops in {out['seconds']:.2f} s,"
                          f" {out['ops_per_s']:,.0f} ops/s, {out['statements_per_op']:.2f} statements/op,"
                          f" CPU/op: server {out['server_ms_per_op']:.2f} ms, PostgreSQL {out['pg_ms_per_op']:.2f} ms,"
                          f" {out['statuses']}", flush=True)
        print()
        print("| workload | ops/s before | after | after ÷ before | statements/op before | after"
              " | CPU ms/op before (server + PostgreSQL) | after |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for mix in args.mix.split(","):
            b, a = figures[(mix, "before")], figures[(mix, "after")]

            def med(xs: list[dict], key: str) -> float:
                return statistics.median(x[key] for x in xs)

            rb, ra = med(b, "ops_per_s"), med(a, "ops_per_s")
            cpu = [f"{med(x, 'server_ms_per_op'):.2f} + {med(x, 'pg_ms_per_op'):.2f}" for x in (b, a)]
            print(f"| {mix} | {rb:,.0f} | {ra:,.0f} | {ra / rb:.2f}× | {med(b, 'statements_per_op'):.2f}"
                  f" | {med(a, 'statements_per_op'):.2f} | {cpu[0]} | {cpu[1]} |")
    finally:
        for t in trees:
            t.stop()
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
