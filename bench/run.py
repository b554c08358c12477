"""The orchestrator behind ``python -m bench [--quick]``: data set, servers, scenarios, RESULTS.md.

Scenario order: 4 (bootstrap, which also makes the full replica the others use), 1, 3, 2, 7 (TUI),
then, against a running server, 5, 6 and 7 (daemon). With ``--encryption both`` (the default)
each scenario runs on an encrypted replica, then on a plaintext one, before the next scenario.
Each scenario's figures are written to bench/.work/run/<variant>/results.json as they arrive;
RESULTS.md is written at the end (also after a failure or Ctrl-C, with what was measured so far).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import dataset, procs
from bench.machine import machine_info
from bench.procs import ServerProc, run_worker, vm_hwm
from bench.stats import median
from bench.variant import VARIANTS

FULL_CUSTOMERS = 1_000_000
QUICK_CUSTOMERS = 50_000
SCENARIOS = ("bootstrap", "search", "c360", "tui", "lists", "memory", "incremental", "push", "daemon")


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"a {QUICK_CUSTOMERS:,}-customer data set for a fast check")
    p.add_argument("--customers", type=int, help=f"data set size (default {FULL_CUSTOMERS:,}, --quick {QUICK_CUSTOMERS:,})")
    p.add_argument("--seed", type=int, default=1, help="seed of the data set (default 1)")
    p.add_argument("--bootstrap-reps", type=int, help="bootstrap repetitions (default: 3 quick, 2 full)")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(SCENARIOS)} (without bootstrap, "
                                  "the replica and server copy of the previous run are reused)")
    p.add_argument("--no-profile", action="store_true", help="skip the profiles of missed budgets")
    p.add_argument("--encryption", choices=("both", "on", "off"), default="both",
                   help="run every scenario on an encrypted replica, a plaintext one, or both in turn (default)")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite the results file from the last run's bench/.work/run/results.json")
    p.add_argument("--output", default=str(procs.ROOT / "bench" / "RESULTS.md"), help="where to write the results")
    return p.parse_args(argv)


class Run:
    def __init__(self, args: argparse.Namespace, variant: str = "encrypted"):
        self.args = args
        self.variant = variant
        self.encrypted = variant == "encrypted"
        self.quick = args.quick
        self.customers = args.customers or (QUICK_CUSTOMERS if args.quick else FULL_CUSTOMERS)
        self.seed = args.seed
        self.profile = not args.no_profile
        self.only = set(args.only.split(",")) if args.only else set(SCENARIOS)
        unknown = self.only - set(SCENARIOS)
        if unknown:
            sys.exit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        self.reps = args.bootstrap_reps or (3 if self.quick else 2)
        self.work = dataset.WORK / "run" / variant
        self.replica_dir = self.work / "replica"
        self.state_file = self.work / "state.json"
        self.results: dict[str, Any] = {
            "mode": "quick" if self.quick else "full",
            "variant": variant,
            "customers": self.customers,
            "seed": self.seed,
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "scenarios": {},
            "errors": {},
        }
        self.started = time.perf_counter()

    # ------------------------------------------------------------------ helpers

    def save(self) -> None:
        self.results["elapsed_s"] = time.perf_counter() - self.started
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "results.json").write_text(json.dumps(self.results, indent=1, default=str))

    def scenario(self, name: str, fn: Any) -> None:
        if name not in self.only:
            return
        say(f"scenario {name} ({self.variant} replica) ...")
        t0 = time.perf_counter()
        try:
            self.results["scenarios"][name] = fn()
            say(f"scenario {name} ({self.variant}) done in {time.perf_counter() - t0:.0f} s")
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one failing scenario must not cost the others
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            say(f"scenario {name} FAILED: {exc}")
            traceback.print_exc()
        self.save()

    def worker(self, name: str, cfg: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return run_worker(name, {**cfg, "encrypted": self.encrypted}, self.work / "workers", **kw)

    @property
    def replica_db(self) -> str:
        return str(self.replica_dir / "replica.db")

    # ------------------------------------------------------------------ the run

    def execute(self) -> Iterator[str]:
        """The run, one scenario at a time: yields after each, so the variants can take turns
        (their figures then share the machine's conditions as closely as can be)."""
        self.results["machine"] = machine_info()
        say(f"{self.results['mode']} run, {self.variant} replica: {self.customers:,} customers, seed {self.seed}")
        db, seed_s = dataset.seeded_db(self.customers, self.seed, say)
        self.results["dataset"] = {"file": str(db.relative_to(procs.ROOT)), "bytes": dataset.file_size(db),
                                   "seeded_now_s": seed_s}
        self.server_db = self.work / "server.db"
        if "bootstrap" in self.only or not self._reuse():
            if self.work.exists():
                shutil.rmtree(self.work)
            self.work.mkdir(parents=True)
            say("copying the data set for this run and adding the benchmark users")
            dataset.work_copy(db, self.server_db)
            self.users = dataset.add_users(self.server_db)
            self.state_file.write_text(json.dumps({"customers": self.customers, "seed": self.seed,
                                                   "agent": self.users.agent, "admin": self.users.admin}))
            self.only.add("bootstrap")
        self.results["dataset"]["counts"] = dataset.server_counts(self.server_db)
        self.save()
        yield "setup"
        self.scenario("bootstrap", self.bootstrap)
        yield "bootstrap"
        if not (self.replica_dir / "replica.db").exists():
            raise RuntimeError("no full replica (the bootstrap failed); nothing else can be measured")
        self.results["replica"] = {"bytes": dataset.file_size(self.replica_dir / "replica.db")}
        self.scenario("search", lambda: self.worker("search", {
            "replica": self.replica_db, "hot_dir": str(self.work / "hot-search"),
            "profile": "search" if self.profile else None}))
        yield "search"
        self.scenario("c360", lambda: self.worker("c360", {
            "replica": self.replica_db, "hot_dir": str(self.work / "hot-c360"), "customers": 300,
            "profile": "c360" if self.profile else None}))
        yield "c360"
        self.scenario("tui", lambda: self.worker("tui", {
            "replica": self.replica_db, "hot_dir": str(self.work / "hot-tui"), "rounds": 3,
            "profile": "tui" if self.profile else None}))
        yield "tui"
        self.scenario("lists", lambda: self.worker("lists", {
            "replica": self.replica_db, "hot_dir": str(self.work / "hot-lists"), "rounds": 3}))
        yield "lists"
        self.scenario("memory", self.memory)
        yield "memory"
        if self.only & {"incremental", "push", "daemon"}:
            with ServerProc(self.server_db, self.work / "server.log") as srv:
                common = {"replica": self.replica_db, "hot_dir": str(self.replica_dir / "hot-cache"), "url": srv.url,
                          "token": self.users.agent, "admin_token": self.users.admin, "server_pid": srv.pid}
                self.scenario("incremental", lambda: self.worker("incremental", {
                    **common, "rounds": 5, "profile": "incremental" if self.profile else None},
                    sample={"server": srv.pid}))
                yield "incremental"
                self.scenario("push", lambda: self.worker("push", {
                    **common, "rounds": 3 if self.quick else 2, "profile_push": "push" if self.profile else None},
                    sample={"server": srv.pid}))
                yield "push"
                from bench.scenarios import daemon

                self.scenario("daemon", lambda: daemon.run(self.replica_dir, self.work, srv.url, self.users.agent,
                                                           self.users.admin, 10.0 if self.quick else 20.0,
                                                           self.encrypted))
                yield "daemon"

    def _reuse(self) -> bool:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return False
        if (state["customers"], state["seed"]) != (self.customers, self.seed) or not self.replica_dir.exists():
            return False
        self.users = dataset.Users(agent=state["agent"], admin=state["admin"])
        say("reusing the replica and server copy of the previous run (bootstrap not selected); the selected "
            "scenarios replace theirs in the previous results")
        try:
            previous = json.loads((self.work / "results.json").read_text())
        except (OSError, ValueError):
            previous = {}
        if (previous.get("customers"), previous.get("seed")) == (self.customers, self.seed):
            for key in ("scenarios", "errors"):
                self.results[key] = {k: v for k, v in previous.get(key, {}).items() if k not in self.only}
            self.results["replica"] = previous.get("replica")
            self.results["merged_from"] = previous.get("merged_from") or previous.get("machine", {}).get("date")
            self.results["rerun"] = sorted(set(previous.get("rerun") or []) | self.only)
        return True

    # ------------------------------------------------------------------ scenario 4

    def bootstrap(self) -> dict[str, Any]:
        reps, ceilings = [], []
        for rep in range(self.reps):
            say(f"  ceiling baseline {rep + 1}/{self.reps}: raw executemany of the same rows")
            ceilings.append(self.worker("bootstrap:ceiling", {
                "server_db": str(self.server_db), "dest": str(self.work / "ceiling.db"), "chunk": 2000},
                tag=f"ceiling-{rep}"))
            say(f"  bootstrap {rep + 1}/{self.reps} over loopback into an empty replica")
            data_dir = self.work / f"boot-{rep}"
            with ServerProc(self.server_db, self.work / "server.log") as srv:
                res = self.worker("bootstrap", {"url": srv.url, "token": self.users.agent, "data_dir": str(data_dir)},
                                  sample={"server": srv.pid}, tag=f"bootstrap-{rep}")
                res["server_hwm"] = vm_hwm(srv.pid)
            res["replica_bytes"] = dataset.file_size(data_dir / "replica.db")
            say(f"    {res['pulled']:,} records in {res['seconds']:.1f} s = {res['records_per_s']:,.0f} rec/s; "
                f"customers searchable at {res['customers_ready_s'] or float('nan'):.1f} s, contacts at "
                f"{res['contacts_ready_s'] or float('nan'):.1f} s (ceiling {ceilings[-1]['rows_per_s']:,.0f} rows/s)")
            if not res["ok"]:
                raise RuntimeError(f"bootstrap failed: {res['error']}")
            reps.append(res)
            if rep == 0:
                if self.replica_dir.exists():
                    shutil.rmtree(self.replica_dir)
                data_dir.rename(self.replica_dir)
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
        out: dict[str, Any] = {"reps": reps, "ceilings": ceilings}
        out["records_per_s"] = median([r["records_per_s"] for r in reps])
        out["ceiling_rows_per_s"] = median([c["rows_per_s"] for c in ceilings])
        out["customers_ready_s"] = median([r["customers_ready_s"] for r in reps if r["customers_ready_s"] is not None])
        out["contacts_ready_s"] = median([r["contacts_ready_s"] for r in reps if r["contacts_ready_s"] is not None])
        out["seconds"] = median([r["seconds"] for r in reps])
        missed = (out["records_per_s"] < 100_000 or out["customers_ready_s"] > 15 or out["contacts_ready_s"] > 45)
        if missed and self.profile:
            cap = None if self.quick else 240.0
            say(f"  profiled bootstrap (pyinstrument{'' if cap is None else f', first {cap:.0f} s'}; not counted)")
            data_dir = self.work / "boot-profile"
            with ServerProc(self.server_db, self.work / "server.log") as srv:
                prof = self.worker("bootstrap", {"url": srv.url, "token": self.users.agent, "data_dir": str(data_dir),
                                                 "profile": "bootstrap", "profile_seconds": cap},
                                   sample={"server": srv.pid}, tag="bootstrap-profile")
            shutil.rmtree(data_dir, ignore_errors=True)
            out["profile"] = prof.get("profile")
            out["sql_breakdown"] = prof.get("sql_breakdown")
            out["profile_run"] = {k: prof.get(k) for k in ("seconds", "pulled", "records_per_s", "stopped_early")}
            out["profile_run"]["sampled"] = prof.get("_sampled")
        return out

    # ------------------------------------------------------------------ scenario 7 (TUI)

    def memory(self) -> dict[str, Any]:
        tui = self.worker("memory:tui", {"replica": self.replica_db, "hot_dir": str(self.work / "hot-memory")},
                          tag="memory-tui")
        floor = self.worker("memory:floor", {}, tag="memory-floor")
        return {"tui": tui, "floor": floor}


VARIANT_CHOICE = {"both": VARIANTS, "on": ("encrypted",), "off": ("plaintext",)}


def combined(runs: list[Run]) -> dict[str, Any]:
    """One results dict for the report: each variant's results, in the order they ran."""
    return {"variants": {r.variant: r.results for r in runs}}


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    from bench.report import summary_table, write_results

    results_file = dataset.WORK / "run" / "results.json"
    if args.report_only:
        results = json.loads(results_file.read_text())
        write_results(results, Path(args.output))
        print(summary_table(results))
        return

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    status = 0
    runs = [Run(args, variant) for variant in VARIANT_CHOICE[args.encryption]]
    turns = {run.variant: run.execute() for run in runs}
    try:
        while turns:
            for run in runs:  # scenario by scenario, the variants take turns
                if run.variant not in turns:
                    continue
                try:
                    next(turns[run.variant])
                except StopIteration:
                    del turns[run.variant]
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    run.results["errors"]["run"] = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc()
                    status = 1
                    del turns[run.variant]
    except KeyboardInterrupt:
        for run in runs:
            run.results["interrupted"] = True
        say("interrupted; stopping what was started and writing what was measured")
        status = 130
    finally:
        procs.cleanup()
        for run in runs:
            run.save()
    results = combined(runs)
    results_file.write_text(json.dumps(results, indent=1, default=str))
    path = Path(args.output)
    write_results(results, path)
    print()
    print(summary_table(results))
    print(f"\nwrote {path}")
    sys.exit(status)
