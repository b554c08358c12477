"""``python -m bench.server [--quick]`` (``make bench-server``): the server at organisation scale.

Starts its own servers over copies of one seeded data set — SQLite×1 process, PostgreSQL×1
process, and PostgreSQL×N processes behind HAProxy — and measures them side by side in one run:

* sync: C = 10, 50, 200 simulated sync clients (``bench/serverload.py``), each a sales rep that
  bootstraps a small territory, then pulls incrementally and pushes small batches at a steady rate;
* order intake: 20 writers posting orders through ``/v1/batch``, and the feed lag meanwhile;
* revenue by month by territory over the whole data set, with and without partition pruning;
* a rep's incremental pull with a small and a large organisation around them (bench/feed_scope.py).

Scenarios are interleaved (for each round and each C, every variant in turn) so the variants
share the machine's conditions; each figure is the median of the rounds. Writes bench/SERVER.md
(``--output``) and the raw figures to bench/.work/server/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench import dataset, procs
from bench.machine import machine_info
from bench.pgcluster import Cluster, HAProxy
from bench.procs import PY, ServerProc

FULL_CUSTOMERS = 1_000_000
QUICK_CUSTOMERS = 20_000
WORK = dataset.WORK / "server"
# The parts of a run, in the order they run; ``--only`` picks some of them.
SCENARIOS = ("sync", "intake", "revenue", "profiles", "scope")
OK_STATUSES = ("applied", "merged", "conflict")


def say(text: str) -> None:
    print(f"[bench-server {time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class Plan:
    """What one run measures (sizes and durations); ``--quick`` and ``--tiny`` shrink it."""

    mode: str
    customers: int
    clients: list[int]
    rounds: int
    steady: float  # seconds each sync client runs after its bootstrap
    interval: float  # seconds between a client's pulls
    push_every: int  # a push every this many pulls
    per_territory: int  # customers in each client territory (8 records each)
    clients_per_territory: int
    writers: int
    batch: int
    intake_seconds: float
    scope_sizes: list[int]
    workers: int
    profile: bool = True
    only: tuple[str, ...] = SCENARIOS


def make_plan(args: argparse.Namespace) -> Plan:
    if args.tiny:
        plan = Plan("tiny", 300, [2, 4], 1, 1.5, 0.5, 2, 10, 2, 4, 20, 1.5, [100, 300], 2, profile=False)
    elif args.quick:
        plan = Plan("quick", QUICK_CUSTOMERS, [10, 50, 200], 2, 8.0, 1.0, 2, 60, 5, 20, 100, 8.0,
                    [2_000, QUICK_CUSTOMERS], 2)
    else:
        plan = Plan("full", FULL_CUSTOMERS, [10, 50, 200], 2, 15.0, 1.0, 2, 250, 5, 20, 100, 15.0,
                    [100_000, FULL_CUSTOMERS], 2)
    if args.customers:
        if plan.mode == "full" and args.customers != FULL_CUSTOMERS:
            plan.mode = f"{args.customers:,}-customer"
        plan.customers = args.customers
        plan.scope_sizes = [max(1, args.customers // 10), args.customers]
    if args.clients:
        plan.clients = [int(c) for c in args.clients.split(",")]
    for name in ("rounds", "steady", "workers"):
        if getattr(args, name) is not None:
            setattr(plan, name, getattr(args, name))
    if args.no_profile:
        plan.profile = False
    if args.only:
        only = tuple(part.strip() for part in args.only.split(",") if part.strip())
        unknown = [part for part in only if part not in SCENARIOS]
        if unknown:
            raise SystemExit(f"--only: unknown scenario {', '.join(unknown)} (one of {', '.join(SCENARIOS)})")
        plan.only = only
    return plan


# ---------------------------------------------------------------------------- sampling


class GroupSampler:
    """CPU seconds and peak memory of groups of processes (a group's pids may change: PostgreSQL
    backends), and of the whole machine, every ``interval`` seconds in a thread."""

    def __init__(self, groups: dict[str, Any], interval: float = 0.25):
        import threading

        self.groups = groups  # name -> callable returning pids
        self.interval = interval
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.peak_mem: dict[str, int] = dict.fromkeys(groups, 0)
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = self.t1 = 0.0
        self.sys0 = self.sys1 = None

    def _proc(self, pid: int) -> psutil.Process | None:
        p = self._procs.get(pid)
        if p is None:
            with contextlib.suppress(psutil.Error):
                p = self._procs[pid] = psutil.Process(pid)
        return p

    def sample(self) -> None:
        for name, pids in self.groups.items():
            mem = 0
            for pid in pids():
                p = self._proc(pid)
                if p is None:
                    continue
                try:
                    t = p.cpu_times()
                    cpu = t.user + t.system
                    # PostgreSQL's processes share their buffers: count proportional set size.
                    mem += p.memory_full_info().pss if name == "postgresql" else p.memory_info().rss
                except psutil.Error:
                    continue
                self.first.setdefault((name, pid), cpu)
                self.last[(name, pid)] = cpu
            self.peak_mem[name] = max(self.peak_mem[name], mem)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> GroupSampler:
        self.t0 = time.perf_counter()
        self.sys0 = psutil.cpu_times()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()
        self.t1 = time.perf_counter()
        self.sys1 = psutil.cpu_times()

    def result(self) -> dict:
        wall = self.t1 - self.t0
        cpu = dict.fromkeys(self.groups, 0.0)
        for (name, pid), last in self.last.items():
            cpu[name] += last - self.first[(name, pid)]
        busy = 0.0
        if self.sys0 and self.sys1:
            idle = (self.sys1.idle + getattr(self.sys1, "iowait", 0)) - (self.sys0.idle + getattr(self.sys0, "iowait", 0))
            total = sum(self.sys1) - sum(self.sys0)
            busy = total - idle
        return {"wall": wall, "cpu": cpu, "peak_mem": dict(self.peak_mem), "machine_busy_cpu": busy,
                "other_cpu": max(0.0, busy - sum(cpu.values()))}


# ---------------------------------------------------------------------------- data


def _batches(store: Any, ops: list[dict]) -> None:
    from crm_server.batch import apply_batch
    from crm_server.scope import SYSTEM

    for start in range(0, len(ops), 1000):
        bad = [r for r in apply_batch(store, SYSTEM.id, ops[start:start + 1000]) if r["status"] not in OK_STATUSES]
        if bad:
            raise RuntimeError(f"preparing the benchmark data failed: {bad[0]}")


def territory_id(n: int) -> str:
    return f"bench-t{n:03d}"


INTAKE_TERRITORIES = ("bench-intake-0", "bench-intake-1")


def _row(ent: Any, record: dict, territory: str | None = None) -> tuple:
    """A bulk-loader row: wire values in the entity's column order (an attached record also
    carries its customer's territory)."""
    values = tuple(record.get(c) for c in ent.columns if c != "version")
    return (*values, territory) if ent.anchor == "customer_id" else values


def prepare(target: str, territories: int, per_territory: int, intake_customers: int) -> dict:
    """Add the client territories (``per_territory`` customers, each with 2 contacts, 2 orders
    and 3 activities) and the order-intake territories to a seeded database (with the store's
    bulk loader: the seed's own path, COPY on PostgreSQL)."""
    from crm_server.store import open_store
    from crm_tui.core.domain import ENTITIES

    store = open_store(target)
    t0 = time.perf_counter()
    stamp = "2026-11-01T09:00:00Z"
    try:
        names = [territory_id(t) for t in range(territories)] + list(INTAKE_TERRITORIES)
        _batches(store, [{"op_id": f"bench-{n}", "op": "create", "entity": "territory", "id": n,
                          "fields": {"name": n.replace("-", " ").title(), "region": "Bench"}} for n in names])
        rows: dict[str, list[tuple]] = {"customer": [], "contact": [], "order": [], "activity": []}
        for n in names:
            count = intake_customers if n in INTAKE_TERRITORIES else per_territory
            for i in range(count):
                cid = f"{n}-c{i:04d}"
                rows["customer"].append(_row(ENTITIES["customer"], {
                    "id": cid, "name": f"Customer {i} of {n}", "city": "Berlin", "country": "DE", "tier": "silver",
                    "territory": n, "lifetime_value": 36_000, "created_at": stamp, "updated_at": stamp}))
                for k in range(2):
                    rows["contact"].append(_row(ENTITIES["contact"], {
                        "id": f"{cid}-p{k}", "customer_id": cid, "name": f"Contact {k}", "email": f"c{k}.{i}@{n}.example",
                        "is_primary": k == 0, "created_at": stamp, "updated_at": stamp}, n))
                    rows["order"].append(_row(ENTITIES["order"], {
                        "id": f"{cid}-o{k}", "customer_id": cid, "number": f"BENCH-{n}-{i}-{k}",
                        "order_date": f"2026-{9 + k:02d}-15", "amount": 12_000 * (k + 1), "currency": "EUR",
                        "status": "delivered", "created_at": stamp, "updated_at": stamp}, n))
                for k in range(3):
                    rows["activity"].append(_row(ENTITIES["activity"], {
                        "id": f"{cid}-a{k}", "customer_id": cid, "kind": "note", "subject": f"Note {k}",
                        "internal": False, "occurred_at": f"2026-11-{10 + k:02d}T09:00:00Z",
                        "created_at": stamp, "updated_at": stamp}, n))
        if store.backend == "postgresql":
            with store.bulk_load() as loader:  # COPY into the live indexes
                for name in ("customer", "contact", "order", "activity"):
                    loader.add(ENTITIES[name], rows[name])
        else:
            # SQLite's bulk loader drops and rebuilds every index (minutes at 1M customers); a few
            # thousand batch ops a second are quicker for this much.
            ops = [{"op_id": f"p-{row[0]}", "op": "create", "entity": name, "id": row[0],
                    "fields": {c: v for c, v in zip(ENTITIES[name].columns[1:], row[1:], strict=False)
                               if v is not None and c not in ("created_at", "updated_at", "number", "version")
                               and (c != "territory" or name == "customer")}}
                   for name in ("customer", "contact", "order", "activity") for row in rows[name]]
            _batches(store, ops)
        store.maintain()
    finally:
        store.close()
    return {"territories": territories, "per_territory": per_territory, "intake_customers": intake_customers,
            "records": sum(len(r) for r in rows.values()) + len(names), "seconds": time.perf_counter() - t0}


def add_users(target: str, specs: list[tuple[str, str, list[str]]]) -> list[str]:
    """Create users (id, role, territories) and return a token of each."""
    from crm_server.accounts import add_user
    from crm_server.store import open_store

    store = open_store(target)
    try:
        return [add_user(store, uid, role=role, territories=terrs, user_id=uid)[1] for uid, role, terrs in specs]
    finally:
        store.close()


def count_ids(target: str, table: str, prefix: str) -> int:
    from crm_server.store import open_store

    store = open_store(target)
    try:
        with store.read() as tx:
            return tx.conn.execute(f"SELECT count(*) FROM {table} WHERE id LIKE '{prefix}%'").fetchone()[0]
    finally:
        store.close()


# ---------------------------------------------------------------------------- variants


@dataclass
class Variant:
    name: str
    label: str
    db: str  # SQLite path or PostgreSQL URL
    servers: list[ServerProc] = field(default_factory=list)
    haproxy: HAProxy | None = None
    log_dir: Path = WORK

    @property
    def url(self) -> str:
        return self.haproxy.url if self.haproxy else self.servers[0].url

    def server_pids(self) -> list[int]:
        return [s.pid for s in self.servers if s.proc is not None]

    def start(self, processes: int) -> None:
        for i in range(processes):
            srv = ServerProc(self.db, self.log_dir / f"{self.name}-server{i + 1}.log",
                             extra=["--max-connections-per-client", "0", "--max-connections", "2000"])
            self.servers.append(srv.start())
        if processes > 1:
            self.haproxy = HAProxy(self.log_dir / self.name, [s.url.removeprefix("http://") for s in self.servers])
            (self.log_dir / self.name).mkdir(parents=True, exist_ok=True)
            self.haproxy.start()

    def stop(self) -> None:
        if self.haproxy:
            self.haproxy.stop()
        for s in self.servers:
            s.stop()

    def locked_lines(self) -> int:
        n = 0
        for i in range(len(self.servers)):
            log = self.log_dir / f"{self.name}-server{i + 1}.log"
            if log.exists():
                n += log.read_text(errors="replace").count("database is locked")
        return n


# ---------------------------------------------------------------------------- load processes


def run_load(cfgs: list[dict], tag: str, groups: dict[str, Any], timeout: float) -> tuple[list[dict], dict]:
    """Run one ``bench.serverload`` process per cfg; sample the groups (plus the load generator)
    meanwhile. Returns their outputs and the sample."""
    work = WORK / "load"
    work.mkdir(parents=True, exist_ok=True)
    running = []
    for i, cfg in enumerate(cfgs):
        cfg_path, out_path = work / f"{tag}-{i}.cfg.json", work / f"{tag}-{i}.out.json"
        cfg_path.write_text(json.dumps(cfg))
        out_path.unlink(missing_ok=True)
        running.append((procs.spawn([PY, "-m", "bench.serverload", str(cfg_path), str(out_path)],
                                    log=work / f"{tag}-{i}.log"), out_path))
    gen = {"load generator": lambda: [p.pid for p, _ in running if p.poll() is None]}
    with GroupSampler({**groups, **gen}) as sampler:
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p, _ in running):
            if time.monotonic() > deadline:
                for p, _ in running:
                    procs.stop(p)
                raise RuntimeError(f"{tag}: the load generator did not finish in {timeout:.0f} s")
            time.sleep(0.1)
    outs = []
    for i, (p, out_path) in enumerate(running):
        code = procs.stop(p)
        if code != 0 or not out_path.exists():
            log = (work / f"{tag}-{i}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{tag}: load generator {i} exited with {code}:\n{log}")
        outs.append(json.loads(out_path.read_text()))
    return outs, sampler.result()


def merge_counts(outs: list[dict], key: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for o in outs:
        for k, v in o.get(key, {}).items():
            total[k] = total.get(k, 0) + v
    return total


def merge_latency(outs: list[dict]) -> dict[str, list[float]]:
    total: dict[str, list[float]] = {}
    for o in outs:
        for k, v in o["latency"].items():
            total.setdefault(k, []).extend(v)
    return total


# ---------------------------------------------------------------------------- the run


class ServerBench:
    def __init__(self, plan: Plan, output: Path):
        self.plan, self.output = plan, output
        self.cluster: Cluster | None = None
        self.variants: dict[str, Variant] = {}
        self.results: dict[str, Any] = {"plan": plan.__dict__, "sync": [], "intake": [], "revenue": [],
                                        "scope": [], "profiles": {}, "errors": {}, "setup": {},
                                        "command": "python -m bench.server " + " ".join(sys.argv[1:])}
        self.started = time.perf_counter()

    def save(self) -> None:
        self.results["elapsed_s"] = time.perf_counter() - self.started
        WORK.mkdir(parents=True, exist_ok=True)
        (WORK / "results.json").write_text(json.dumps(self.results, indent=1, default=str))

    def step(self, name: str, fn: Any) -> None:
        say(f"{name} ...")
        t0 = time.perf_counter()
        try:
            fn()
            say(f"{name} done in {time.perf_counter() - t0:.0f} s")
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one failing part must not cost the others
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            say(f"{name} FAILED: {exc}")
            traceback.print_exc()
        self.save()

    def groups(self, v: Variant) -> dict[str, Any]:
        g: dict[str, Any] = {"crm-server": v.server_pids}
        if v.db.startswith("postgresql://") and self.cluster:
            g["postgresql"] = self.cluster.pids
        if v.haproxy:
            g["haproxy"] = lambda: [v.haproxy.proc.pid] if v.haproxy and v.haproxy.proc else []
        return g

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        p = self.plan
        self.results["machine"] = machine_info()
        self.results["machine"]["haproxy"] = _version(["haproxy", "-v"])
        self.results["machine"]["postgresql"] = _version([str(_pg_bin("postgres")), "--version"])
        if WORK.exists():
            shutil.rmtree(WORK)
        WORK.mkdir(parents=True)
        territories = max(1, max(p.clients) // p.clients_per_territory)
        intake_customers = max(5, p.per_territory // 5)
        say(f"{p.mode} run: {p.customers:,} customers; clients {p.clients}; {p.rounds} round(s)")
        db, seeded_s = dataset.seeded_db(p.customers, 1, say)
        sqlite_db = WORK / "sqlite.db"
        dataset.work_copy(db, sqlite_db)
        self.results["setup"]["sqlite_seed_s"] = seeded_s
        say("preparing the client territories (SQLite)")
        self.results["setup"]["prepare_sqlite"] = prepare(str(sqlite_db), territories, p.per_territory, intake_customers)
        self.results["setup"]["sqlite_bytes"] = dataset.file_size(sqlite_db)
        say("starting PostgreSQL")
        self.cluster = Cluster().start()
        seeded = self.cluster.create_database("crm_seeded")
        say(f"seeding PostgreSQL with {p.customers:,} customers (COPY)")
        t0 = time.perf_counter()
        done = subprocess.run([PY, "-m", "crm_server.cli", "seed", "--db", seeded, "--customers", str(p.customers),
                               "--seed", "1", "--now", dataset.SEED_NOW], capture_output=True, text=True,
                              env=procs.clean_env(), cwd=procs.ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"crm-server seed on PostgreSQL failed: {done.stderr[-2000:]}")
        self.results["setup"]["pg_seed_s"] = time.perf_counter() - t0
        say("preparing the client territories (PostgreSQL)")
        self.results["setup"]["prepare_pg"] = prepare(seeded, territories, p.per_territory, intake_customers)
        say("copying the PostgreSQL database for each PostgreSQL variant (CREATE DATABASE ... TEMPLATE)")
        t0 = time.perf_counter()
        pg1 = self.cluster.create_database("crm_pg1", template="crm_seeded")
        pgn = self.cluster.create_database("crm_pgn", template="crm_seeded")
        self.results["setup"]["pg_clone_s"] = time.perf_counter() - t0
        self.results["setup"]["pg_bytes"] = self.cluster.database_bytes("crm_seeded")
        self.results["setup"]["counts"] = dataset.server_counts(sqlite_db)
        self.variants = {
            "sqlite": Variant("sqlite", "SQLite×1", str(sqlite_db), log_dir=WORK),
            "pg1": Variant("pg1", "PostgreSQL×1", pg1, log_dir=WORK),
            "pgn": Variant("pgn", f"PostgreSQL×{p.workers} + HAProxy", pgn, log_dir=WORK),
        }
        for name, v in self.variants.items():
            say(f"starting {v.label}")
            v.start(p.workers if name == "pgn" else 1)
        self.results["variants"] = {k: {"label": v.label, "processes": len(v.servers)} for k, v in self.variants.items()}
        self.territories = territories
        self.intake_customers = intake_customers

    # ------------------------------------------------------------------ sync clients

    def sync_once(self, v: Variant, clients: int, rnd: int, *, profile: bool = False) -> dict:
        p = self.plan
        tag = f"{v.name}-c{clients}-r{rnd}" + ("-profile" if profile else "")
        prefix = f"x{tag}-"
        specs = [(f"{tag}-rep{i:03d}", "sales", [territory_id(i // p.clients_per_territory)]) for i in range(clients)]
        tokens = add_users(v.db, specs)
        spec_list = [{"index": i, "token": tokens[i], "territory": specs[i][2][0]} for i in range(clients)]
        nproc = 1 if clients < 20 else 2
        deadline = time.time() + p.steady + 600
        cfgs = [{"mode": "sync", "url": v.url, "clients": spec_list[k::nproc], "steady": p.steady,
                 "interval": p.interval, "push_every": p.push_every, "prefix": prefix, "deadline": deadline,
                 "connections": clients + 8} for k in range(nproc)]
        if self.cluster and v.db.startswith("postgresql://"):
            self.cluster.reset_statements()
        locked0 = v.locked_lines()
        spy = _PySpy(v.server_pids(), WORK / "profiles" / tag, p.steady) if profile else None
        try:
            outs, sample = run_load(cfgs, tag, self.groups(v), timeout=p.steady + 900)
        finally:
            if spy:
                spy.stop()
        out = summarize_sync(outs, sample)
        out.update({"variant": v.name, "clients": clients, "round": rnd,
                    "db_created": count_ids(v.db, "activities", prefix),
                    "locked": v.locked_lines() - locked0})
        if self.cluster and v.db.startswith("postgresql://"):
            out["top_statements"] = self.cluster.top_statements()
        if spy:
            out["py_spy"] = spy.summary()
        return out

    def sync(self) -> None:
        for rnd in range(1, self.plan.rounds + 1):
            for clients in self.plan.clients:
                for v in self.variants.values():
                    def one(v: Variant = v, clients: int = clients, rnd: int = rnd) -> None:
                        self.results["sync"].append(self.sync_once(v, clients, rnd))
                    self.step(f"sync C={clients} {v.label} round {rnd}", one)

    # ------------------------------------------------------------------ order intake

    def intake_once(self, v: Variant, rnd: int) -> dict:
        p = self.plan
        tag = f"{v.name}-intake-r{rnd}"
        prefix = f"o{tag}-"
        writer_token, follower_token = add_users(v.db, [(f"{tag}-writer", "agent", []),
                                                        (f"{tag}-follower", "sales", list(INTAKE_TERRITORIES))])
        customers = [f"{t}-c{i:04d}" for t in INTAKE_TERRITORIES for i in range(self.intake_customers)]
        work = WORK / "load"
        work.mkdir(parents=True, exist_ok=True)
        ready, stop_file = work / f"{tag}.ready", work / f"{tag}.stop"
        for f in (ready, stop_file):
            f.unlink(missing_ok=True)
        deadline = time.time() + p.intake_seconds + 900
        fcfg = {"mode": "follower", "url": v.url, "token": follower_token, "prefix": prefix, "ready_file": str(ready),
                "stop_file": str(stop_file), "deadline": deadline, "connections": 4}
        fcfg_path, fout = work / f"{tag}-follower.cfg.json", work / f"{tag}-follower.out.json"
        fcfg_path.write_text(json.dumps(fcfg))
        fout.unlink(missing_ok=True)
        follower = procs.spawn([PY, "-m", "bench.serverload", str(fcfg_path), str(fout)],
                               log=work / f"{tag}-follower.log")
        try:
            limit = time.monotonic() + 300
            while not ready.exists():
                if follower.poll() is not None or time.monotonic() > limit:
                    raise RuntimeError(f"{tag}: the feed follower did not get ready; see {work / (tag + '-follower.log')}")
                time.sleep(0.05)
            nproc = 2
            start_at = time.time() + 3.0  # the writer processes start meanwhile
            ids = list(range(p.writers))
            cfgs = [{"mode": "writers", "url": v.url, "token": writer_token, "writer_ids": ids[k::nproc],
                     "customers": customers, "batch": p.batch, "seconds": p.intake_seconds, "start_at": start_at,
                     "prefix": prefix, "deadline": deadline, "connections": p.writers + 4} for k in range(nproc)]
            if self.cluster and v.db.startswith("postgresql://"):
                self.cluster.reset_statements()
            groups = {**self.groups(v), "feed follower": lambda: [follower.pid] if follower.poll() is None else []}
            outs, sample = run_load(cfgs, tag, groups, timeout=p.intake_seconds + 900)
            stop_file.write_text("stop")
            follower.wait(300)
        finally:
            procs.stop(follower)
        if not fout.exists():
            raise RuntimeError(f"{tag}: the feed follower failed; see {work / (tag + '-follower.log')}")
        fres = json.loads(fout.read_text())
        out = summarize_intake(outs, fres, sample)
        out.update({"variant": v.name, "round": rnd, "db_created": count_ids(v.db, "orders", prefix),
                    "writers": p.writers, "batch": p.batch})
        if self.cluster and v.db.startswith("postgresql://"):
            out["top_statements"] = self.cluster.top_statements()
        return out

    def intake(self) -> None:
        for rnd in range(1, self.plan.rounds + 1):
            for v in self.variants.values():
                def one(v: Variant = v, rnd: int = rnd) -> None:
                    self.results["intake"].append(self.intake_once(v, rnd))
                self.step(f"order intake {v.label} round {rnd}", one)

    # ------------------------------------------------------------------ revenue, feed scope

    def revenue(self) -> None:
        # SQLite has no partitions and reads the whole orders table per territory: at full size
        # (minutes per pass) it is left out; the smaller runs show it for comparison.
        sqlite = [] if self.plan.customers >= 200_000 else revenue_figures(self.variants["sqlite"].db, "sqlite")
        self.results["revenue"] = [*sqlite, *revenue_figures(self.variants["pg1"].db, "pg1",
                                                                      reps=1 if self.plan.customers >= 200_000 else 3)]

    def scope(self) -> None:
        from bench.feed_scope import measure_rep_pull

        assert self.cluster is not None
        small, large = self.plan.scope_sizes
        rows = []
        url = self.cluster.create_database("crm_scope_small")
        rows.append(measure_rep_pull(url, small))
        if large == self.plan.customers:
            # The untouched seeded database (the variants ran on copies of it) is the large organisation.
            rows.append(measure_rep_pull(self.cluster.url("crm_seeded"), large, seeded=True))
        else:
            rows.append(measure_rep_pull(self.cluster.create_database("crm_scope_large"), large))
        self.results["scope"] = rows

    # ------------------------------------------------------------------ profiles of misses

    def profiles(self) -> None:
        from bench.server_report import budgets

        missed = [b for b in budgets(self.results) if b["met"] is False]
        self.results["profiles"]["missed"] = [b["name"] for b in missed]
        if not missed or not self.plan.profile:
            return
        c = 50 if 50 in self.plan.clients else self.plan.clients[len(self.plan.clients) // 2]
        for name in ("sqlite", "pgn"):
            v = self.variants[name]
            say(f"profiling {v.label} at C={c} (py-spy on the server processes)")
            self.results["profiles"][name] = self.sync_once(v, c, 0, profile=True)
            self.save()

    def execute(self) -> None:
        try:
            self.setup()
            self.save()
            parts = {"sync": ("sync clients", self.sync), "intake": ("order intake", self.intake),
                     "revenue": ("revenue by month by territory", self.revenue),
                     "profiles": ("profiles of missed budgets", self.profiles),
                     "scope": ("a rep's pull with a small and a large organisation", self.scope)}
            for part in SCENARIOS:
                if part in self.plan.only:
                    self.step(*parts[part])
        finally:
            for v in self.variants.values():  # SIGTERM to all first: they shut down side by side
                for s in v.servers:
                    if s.proc is not None and s.proc.poll() is None:
                        s.proc.terminate()
            for v in self.variants.values():
                v.stop()
            if self.cluster:
                self.cluster.stop()
            self.save()
            self.report()

    def report(self) -> None:
        from bench.server_report import render

        self.output.write_text(render(self.results))
        say(f"wrote {self.output}")


# ---------------------------------------------------------------------------- summaries


def _pct(xs: list[float], p: float) -> float | None:
    from bench.stats import percentile

    return percentile(xs, p) if xs else None


def summarize_sync(outs: list[dict], sample: dict) -> dict:
    clients = [c for o in outs for c in o["clients"]]
    t0, t1 = min(o["t0"] for o in outs), max(o["t1"] for o in outs)
    window = t1 - t0
    lat = merge_latency(outs)
    status = merge_counts(outs, "status")
    records = merge_counts(outs, "records")
    ops = merge_counts(outs, "op_status")
    applied = sum(ops.get(s, 0) for s in OK_STATUSES)
    boot_wall = max((c["bootstrap_s"] for c in clients), default=0.0)
    # Lost by the feed: an activity acknowledged before a client of its territory started its
    # final pull, that this client never received.
    acked_by_territory: dict[str, list[tuple[str, float]]] = {}
    for c in clients:
        acked_by_territory.setdefault(c["territory"], []).extend(c["created"])
    missing = 0
    for c in clients:
        if c["error"]:
            continue
        seen = set(c["seen"])
        missing += sum(1 for aid, at in acked_by_territory[c["territory"]] if at < c["drain_at"] and aid not in seen)
    created = {aid for c in clients for aid, _ in c["created"]}
    return {
        "window_s": window, "bootstrap_wall_s": boot_wall, "bootstrap_records": records.get("bootstrap", 0),
        "bootstrap_rps": records.get("bootstrap", 0) / boot_wall if boot_wall else None,
        "records": sum(records.values()), "records_per_s": sum(records.values()) / window if window else None,
        "pull_records": records.get("pull", 0), "pulls": len(lat.get("pull", [])),
        "pulls_per_s": len(lat.get("pull", [])) / window if window else None,
        "requests": sum(len(v) for v in lat.values()),
        "requests_per_s": sum(len(v) for v in lat.values()) / window if window else None,
        "ops_applied": applied, "ops_per_s": applied / window if window else None, "op_status": ops,
        "latency": {k: {"n": len(v), "p50": _pct(v, 50), "p99": _pct(v, 99)} for k, v in lat.items()},
        "latency_all": {"p50": _pct([x for v in lat.values() for x in v], 50),
                        "p99": _pct([x for v in lat.values() for x in v], 99)},
        "status": status, "errors": {k: v for k, v in status.items() if k != "200"},
        "status_5xx": sum(v for k, v in status.items() if k.startswith("5")),
        "acked_creates": len(created), "feed_missing": missing,
        "client_errors": [c["error"] for c in clients if c["error"]],
        "sample": sample,
    }


def summarize_intake(outs: list[dict], follower: dict, sample: dict) -> dict:
    acked = [a for o in outs for a in o["acked"]]
    t0, t1 = min(o["t0"] for o in outs), max(o["t1"] for o in outs)
    window = t1 - t0
    seen = follower["first_seen"]
    lags = [seen[oid] - at for oid, at in acked if oid in seen]
    lat = merge_latency(outs)
    status = merge_counts(outs, "status")
    return {
        "window_s": window, "orders": len(acked), "orders_per_s": len(acked) / window if window else None,
        "batches": len(lat.get("batch", [])),
        "batch_latency": {"p50": _pct(lat.get("batch", []), 50), "p99": _pct(lat.get("batch", []), 99)},
        "lag": {"p50": _pct(lags, 50), "p99": _pct(lags, 99), "max": max(lags) if lags else None},
        "feed_missing": sum(1 for oid, _ in acked if oid not in seen), "redelivered": follower["redelivered"],
        "op_status": merge_counts(outs, "op_status"), "status": status,
        "errors": {k: v for k, v in status.items() if k != "200"},
        "status_5xx": sum(v for k, v in status.items() if k.startswith("5")),
        "sample": sample,
    }


def revenue_figures(target: str, variant: str, reps: int = 3) -> list[dict]:
    """Revenue by month for each seeded territory over the whole data set and over one quarter;
    on PostgreSQL with partition pruning on and off (median of ``reps``)."""
    from bench.stats import median
    from crm_server.store import open_store
    from crm_server.store.probe import relations

    store = open_store(target)
    out = []
    try:
        with store.read() as tx:
            names = [r[0] for r in tx.conn.execute("SELECT id FROM territories WHERE id NOT LIKE 'bench-%' ORDER BY id")]
            orders = tx.conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        pg = store.backend == "postgresql"
        ranges = [("whole data set (2024-11 .. 2026-11)", "2024-11-01", "2026-12-01"),
                  ("one quarter (2026-08 .. 2026-10)", "2026-08-01", "2026-11-01")]
        for label, since, until in ranges:
            for pruning in ((True, False) if pg else (None,)):
                times, rows, parts = [], 0, None
                for rep in range(reps + 1):  # the first is a warm-up (caches), not counted
                    t0 = time.perf_counter()
                    with store.read() as tx:
                        if pruning is False:
                            tx.conn.execute("SET LOCAL enable_partition_pruning = off")
                        rows = sum(len(tx.revenue_by_month(since=since, until=until, territories=[t])) for t in names)
                    if rep:
                        times.append(time.perf_counter() - t0)
                if pg:
                    with store.metered() as meter, store.read() as tx:
                        tx.revenue_by_month(since=since, until=until, territories=[names[0]])
                    sql, params = next((s, p) for s, p in meter.statements if "orders" in s)
                    with store.read() as tx:
                        if pruning is False:
                            tx.conn.execute("SET LOCAL enable_partition_pruning = off")
                        plan = tx.conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()[0][0]
                    parts = len({r for r in relations(plan["Plan"]) if r.startswith("orders_")})
                out.append({"variant": variant, "range": label, "pruning": pruning, "territories": len(names),
                            "orders_in_db": orders, "result_rows": rows, "seconds": median(times),
                            "partitions_read_per_query": parts})
        if pg:
            with store.read() as tx:
                out[0]["partitions_total"] = tx.conn.execute(
                    "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
                    " WHERE p.relname = 'orders'").fetchone()[0]
    finally:
        store.close()
    return out


# ---------------------------------------------------------------------------- helpers


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not installed"


def _pg_bin(name: str) -> Path:
    from bench.pgcluster import _bin_dir

    try:
        return _bin_dir() / name
    except RuntimeError:
        return Path(name)


class _PySpy:
    """py-spy recording each server process for ``seconds`` (raw collapsed stacks)."""

    def __init__(self, pids: list[int], out: Path, seconds: float):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        exe = Path(PY).with_name("py-spy")
        self.procs = []
        if not exe.exists():
            self.missing = True
            return
        self.missing = False
        for pid in pids:
            self.procs.append(procs.spawn([str(exe), "record", "--pid", str(pid), "--rate", "100", "--nonblocking",
                                           "--duration", str(int(seconds + 10)), "--format", "raw",
                                           "--output", str(out / f"{pid}.txt")], log=out / f"{pid}.log"))

    def stop(self) -> None:
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(60)
            procs.stop(p)

    def summary(self, top: int = 15) -> dict:
        if self.missing:
            return {"error": "py-spy is not installed (pip install py-spy)"}
        return summarize_pyspy(self.out, top)


WAITING = ("Condition.wait", "EpollSelector.select", "Connection.wait", "Event.wait", "Queue.get", "_wait_for_tstate_lock")


def summarize_pyspy(folder: Path, top: int = 15) -> dict:
    """py-spy's raw stacks in ``folder`` (one file per process): where the samples were (self),
    split into waiting (for the database, the event loop's select, a thread handoff) and running,
    and which functions of crm_server/ they were under (inclusive)."""
    selfc: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = waiting = 0
    for f in sorted(Path(folder).glob("*.txt")):
        for line in f.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            count = int(n)
            frames = [fr for fr in stack.split(";") if fr and not fr.startswith(("process ", "thread "))]
            if not frames:
                continue
            total += count
            leaf = frames[-1]
            selfc[leaf] = selfc.get(leaf, 0) + count
            if leaf.startswith(WAITING):
                waiting += count
            for fr in set(frames):
                if "crm_server/" in fr and "crm_server/cli.py" not in fr and "crm_server/serving.py" not in fr:
                    ours[fr] = ours.get(fr, 0) + count
    return {"samples": total, "waiting": waiting,
            "self": sorted(selfc.items(), key=lambda kv: -kv[1])[:top],
            "inclusive": sorted(ours.items(), key=lambda kv: -kv[1])[:top]}


# ---------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"a {QUICK_CUSTOMERS:,}-customer data set and short runs")
    ap.add_argument("--tiny", action="store_true", help="seconds-long runs on a tiny data set (the harness's own test)")
    ap.add_argument("--customers", type=int, help=f"data set size (default {FULL_CUSTOMERS:,}, --quick {QUICK_CUSTOMERS:,})")
    ap.add_argument("--clients", help="comma-separated client counts (default 10,50,200)")
    ap.add_argument("--rounds", type=int, help="rounds of every scenario (figures are medians over them)")
    ap.add_argument("--steady", type=float, help="seconds each sync client runs after its bootstrap")
    ap.add_argument("--workers", type=int, help="server processes behind HAProxy (default 2: one per core)")
    ap.add_argument("--no-profile", action="store_true", help="skip the profiles of missed budgets")
    ap.add_argument("--only", help="comma-separated parts to run, of " + ", ".join(SCENARIOS)
                    + " (default all; e.g. --only intake measures order intake alone in a few minutes)")
    ap.add_argument("--output", default=str(procs.ROOT / "bench" / "SERVER.md"), help="where to write the report")
    ap.add_argument("--work", default=str(WORK), help="the run's scratch directory (deleted at the start of a run)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from bench/.work/server/results.json")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global WORK
    args = parse(argv)
    # SIGTERM stops the run like Ctrl-C: servers, HAProxy and PostgreSQL are stopped, the report written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    WORK = Path(args.work)
    output = Path(args.output)
    if args.report_only:
        from bench.server_report import render

        results = json.loads((WORK / "results.json").read_text())
        for name, prof in results.get("profiles", {}).items():
            folder = WORK / "profiles" / f"{name}-c{prof.get('clients')}-r0-profile" if isinstance(prof, dict) else None
            if folder is not None and folder.is_dir():
                prof["py_spy"] = summarize_pyspy(folder)
        output.write_text(render(results))
        return 0
    bench = ServerBench(make_plan(args), output)
    try:
        bench.execute()
    finally:
        procs.cleanup()
    return 1 if bench.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
