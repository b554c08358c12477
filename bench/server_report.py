"""bench/SERVER.md from the figures of ``python -m bench.server`` (``results.json``)."""

from __future__ import annotations

import math
from typing import Any

from bench.stats import fmt_ratio, mb, median, ms, ratio

VARIANTS = ("sqlite", "pg1", "pgn")
FEED_RATIO_BUDGET = 1.5
WRITE_BUDGET = 3000.0
SCOPE_BUDGET = 1.2


def _num(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def _med(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return median(vals) if vals else None


def _med_path(rows: list[dict], *path: str) -> float | None:
    vals = []
    for r in rows:
        x: Any = r
        for p in path:
            x = x.get(p) if isinstance(x, dict) else None
        if x is not None:
            vals.append(x)
    return median(vals) if vals else None


def _label(results: dict, v: str) -> str:
    return results.get("variants", {}).get(v, {}).get("label", v)


def sync_rows(results: dict, variant: str, clients: int) -> list[dict]:
    return [r for r in results.get("sync", []) if r["variant"] == variant and r["clients"] == clients]


def _verdict(met: bool | None) -> str:
    return {True: "✅ met", False: "❌ **missed**", None: "– not measured"}[met]


def budgets(results: dict) -> list[dict]:
    """Each budget of issue 8 with the figure measured and whether it was met (None: no figure)."""
    out = []
    plan = results.get("plan", {})
    cmax = max(plan.get("clients") or [0])
    for v in VARIANTS:
        rows = sync_rows(results, v, cmax)
        fives = sum(r["status_5xx"] for r in rows) if rows else None
        out.append({"name": f"C = {cmax}, {_label(results, v)}: responses 5xx", "budget": "0",
                    "figure": _num(fives), "met": None if fives is None else fives == 0})
        lost = sum(r["feed_missing"] + abs(r["db_created"] - r["acked_creates"]) for r in rows) if rows else None
        out.append({"name": f"C = {cmax}, {_label(results, v)}: lost or duplicated writes", "budget": "0",
                    "figure": _num(lost), "met": None if lost is None else lost == 0})
        if v == "sqlite":
            locked = sum(r["locked"] for r in rows) if rows else None
            out.append({"name": f"C = {cmax}, {_label(results, v)}: \"database is locked\"", "budget": "0",
                        "figure": _num(locked), "met": None if locked is None else locked == 0})
    c50 = 50 if 50 in (plan.get("clients") or []) else (sorted(plan.get("clients") or [0])[len(plan.get("clients") or [0]) // 2])
    base, top = _med(sync_rows(results, "sqlite", c50), "bootstrap_rps"), _med(sync_rows(results, "pgn", c50), "bootstrap_rps")
    r = ratio(top, base)
    out.append({"name": f"C = {c50}: feed throughput of {_label(results, 'pgn')} ÷ SQLite×1 (same run)",
                "budget": f"≥ {FEED_RATIO_BUDGET}×", "figure": f"{fmt_ratio(r)} ({_num(top)} vs {_num(base)} records/s)",
                "met": None if r is None else r >= FEED_RATIO_BUDGET})
    for v in ("pg1", "pgn"):
        rate = _med([x for x in results.get("intake", []) if x["variant"] == v], "orders_per_s")
        out.append({"name": f"writes through /v1/batch, {_label(results, v)}", "budget": f"≥ {WRITE_BUDGET:,.0f} ops/s",
                    "figure": f"{_num(rate)} ops/s", "met": None if rate is None else rate >= WRITE_BUDGET})
    scope = results.get("scope") or []
    if len(scope) == 2 and scope[0].get("rows_examined"):
        r = scope[1]["rows_examined"] / scope[0]["rows_examined"]
        out.append({"name": f"a rep's incremental pull, {scope[1]['other_customers']:,} vs {scope[0]['other_customers']:,}"
                            " customers elsewhere (rows examined)",
                    "budget": f"ratio ≤ {SCOPE_BUDGET}", "figure": f"{r:.2f}", "met": r <= SCOPE_BUDGET})
    else:
        out.append({"name": "a rep's incremental pull, large vs small organisation", "budget": f"ratio ≤ {SCOPE_BUDGET}",
                    "figure": "–", "met": None})
    return out


def _cpu(sample: dict, group: str) -> str:
    cpu, wall = sample["cpu"].get(group), sample["wall"]
    if cpu is None:
        return "–"
    return f"{cpu:,.1f} s ({cpu / wall * 100:.0f}%)" if wall else f"{cpu:,.1f} s"


def _errors(rows: list[dict]) -> str:
    total: dict[str, int] = {}
    for r in rows:
        for k, n in r["errors"].items():
            total[k] = total.get(k, 0) + n
    return ", ".join(f"{k}: {n}" for k, n in sorted(total.items())) or "none"


def _sync_section(results: dict) -> list[str]:
    plan = results["plan"]
    lines = [
        "## Sync clients",
        "",
        f"Each client is a sales rep of a small territory ({plan['per_territory']} customers, each with 2 contacts, "
        f"2 orders and 3 activities; {plan['clients_per_territory']} clients per territory, so each pulls the others' "
        f"pushes). All C clients start at once and bootstrap (`GET /v1/changes` pages of 2,000 until `has_more` is "
        f"false); then each pulls every {plan['interval']:g} s and pushes a batch of 2 ops (a new activity, a customer "
        f"edit) every {plan['push_every']} pulls, for {plan['steady']:g} s; then it drains the feed once more. "
        f"Figures are medians over {plan['rounds']} round(s); errors and lost writes are summed over them.",
        "",
        "*Bootstrap records/s* is what all clients together received while bootstrapping at once (the server's "
        "feed capacity: clients ask as fast as answers come). *Records/s served* and *ops/s applied* are over the "
        "whole window (bootstrap + steady + drain). Latency is per request (one feed page or one batch).",
        "",
        "| C | server | bootstrap records/s | bootstrap wall | records/s served | pulls/s | ops/s applied |"
        " p50 / p99 feed page (steady) | p50 / p99 push | p50 / p99 bootstrap page | errors by status |"
        " lost / duplicated | server CPU | server RSS | PostgreSQL CPU | PostgreSQL PSS | HAProxy CPU |"
        " load generator CPU | other processes' CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in plan["clients"]:
        for v in VARIANTS:
            rows = sync_rows(results, v, c)
            if not rows:
                continue
            mid = sorted(rows, key=lambda r: r["bootstrap_rps"] or 0)[len(rows) // 2]
            s = mid["sample"]
            lost = sum(r["feed_missing"] for r in rows)
            dup = sum(max(0, r["db_created"] - r["acked_creates"]) for r in rows)
            missing_db = sum(max(0, r["acked_creates"] - r["db_created"]) for r in rows)

            def lat(kind: str, rows: list[dict] = rows) -> str:
                return (f"{ms(_med_path(rows, 'latency', kind, 'p50'), 1)} / "
                        f"{ms(_med_path(rows, 'latency', kind, 'p99'), 1)}")

            lines.append(
                f"| {c} | {_label(results, v)} | {_num(_med(rows, 'bootstrap_rps'))} | {_med(rows, 'bootstrap_wall_s') or 0:.2f} s |"
                f" {_num(_med(rows, 'records_per_s'))} | {_num(_med(rows, 'pulls_per_s'), 1)} | {_num(_med(rows, 'ops_per_s'), 1)} |"
                f" {lat('pull')} | {lat('push')} | {lat('bootstrap')} | {_errors(rows)} | {lost + missing_db} / {dup} |"
                f" {_cpu(s, 'crm-server')} | {mb(s['peak_mem'].get('crm-server'))} | {_cpu(s, 'postgresql')} |"
                f" {mb(s['peak_mem'].get('postgresql')) if 'postgresql' in s['peak_mem'] else '–'} |"
                f" {_cpu(s, 'haproxy')} | {_cpu(s, 'load generator')} |"
                f" {s['other_cpu']:,.1f} s ({s['other_cpu'] / s['wall'] * 100:.0f}%) |")
    lines += ["", "CPU is seconds over the scenario's window (and % of one core); the machine has "
              f"{results['machine'].get('cpus_usable')} usable cores, so 200% is everything. Server RSS is the peak "
              "sum over the server processes; PostgreSQL's memory is the peak sum of its processes' proportional "
              "set size (shared buffers counted once).", "",
              "**Same-run ratios** (bootstrap records/s, median of rounds, ÷ SQLite×1 at the same C):", "",
              "| C | PostgreSQL×1 ÷ SQLite×1 | " + _label(results, "pgn") + " ÷ SQLite×1 | " + _label(results, "pgn")
              + " ÷ PostgreSQL×1 |", "| --- | --- | --- | --- |"]
    for c in plan["clients"]:
        b = {v: _med(sync_rows(results, v, c), "bootstrap_rps") for v in VARIANTS}
        lines.append(f"| {c} | {fmt_ratio(ratio(b['pg1'], b['sqlite']))} | {fmt_ratio(ratio(b['pgn'], b['sqlite']))} |"
                     f" {fmt_ratio(ratio(b['pgn'], b['pg1']))} |")
    return lines


def _intake_section(results: dict) -> list[str]:
    rows = results.get("intake", [])
    if not rows:
        return []
    plan = results["plan"]
    lines = ["## Order intake", "",
             f"{plan['writers']} writers post batches of {plan['batch']} new orders to `/v1/batch` back to back for "
             f"{plan['intake_seconds']:g} s (one agent token; customers of two intake territories). Meanwhile a sales rep "
             "of those territories follows the feed (a new pull as soon as one comes back empty, after 20 ms); the "
             "*feed lag* of an order is from its batch's answer to the follower's first sight of it.", "",
             "| server | orders/s accepted | batch p50 / p99 | feed lag p50 / p99 / max | not delivered / redelivered |"
             " errors by status | server CPU | PostgreSQL CPU | load generator CPU | other processes' CPU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in VARIANTS:
        vr = [r for r in rows if r["variant"] == v]
        if not vr:
            continue
        mid = sorted(vr, key=lambda r: r["orders_per_s"] or 0)[len(vr) // 2]
        s = mid["sample"]
        missing = sum(r["feed_missing"] + abs(r["db_created"] - r["orders"]) for r in vr)
        lines.append(
            f"| {_label(results, v)} | {_num(_med(vr, 'orders_per_s'))} |"
            f" {ms(_med_path(vr, 'batch_latency', 'p50'), 0)} / {ms(_med_path(vr, 'batch_latency', 'p99'), 0)} |"
            f" {ms(_med_path(vr, 'lag', 'p50'), 0)} / {ms(_med_path(vr, 'lag', 'p99'), 0)} / {ms(_med_path(vr, 'lag', 'max'), 0)} |"
            f" {missing} / {sum(r['redelivered'] for r in vr)} | {_errors(vr)} | {_cpu(s, 'crm-server')} |"
            f" {_cpu(s, 'postgresql')} | {_cpu(s, 'load generator')} | {s['other_cpu']:,.1f} s |")
    return lines


def _revenue_section(results: dict) -> list[str]:
    rows = results.get("revenue", [])
    if not rows:
        return []
    lines = ["## Revenue by month by territory", "",
             "On the server, in one read transaction: `revenue_by_month` (the store's query: orders of the range, "
             "cancelled and refunded left out, summed by month and currency) once per seeded territory. "
             f"{rows[0]['orders_in_db']:,} orders in the database"
             + (f"; PostgreSQL has {next((r['partitions_total'] for r in rows if r.get('partitions_total')), '?')} order "
                "partitions (one per month, a year ahead, and the default)." if any(r.get("partitions_total") for r in rows) else ".")
             + " *Without pruning* sets `enable_partition_pruning = off` for the transaction. After a warm-up pass, "
             "the median of 3 passes (one pass at full size).", "",
             "| server | range | partition pruning | territories | partitions read per query | result rows | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        prune = {True: "on", False: "off", None: "– (not partitioned)"}[r["pruning"]]
        lines.append(f"| {_label(results, r['variant'])} | {r['range']} | {prune} | {r['territories']} |"
                     f" {_num(r['partitions_read_per_query'])} | {r['result_rows']:,} | {r['seconds']:.3f} |")
    pg = [r for r in rows if r["variant"] == "pg1"]
    for label in dict.fromkeys(r["range"] for r in pg):
        on = next((r for r in pg if r["range"] == label and r["pruning"] is True), None)
        off = next((r for r in pg if r["range"] == label and r["pruning"] is False), None)
        if on and off:
            lines.append(f"\n{label}: without pruning ÷ with pruning = {fmt_ratio(ratio(off['seconds'], on['seconds']))}.")
    return lines


def _scope_section(results: dict) -> list[str]:
    rows = results.get("scope") or []
    if not rows:
        return []
    lines = ["## A rep's incremental pull, small vs large organisation", "",
             "`bench/feed_scope.py` on PostgreSQL: the rep has 200 customers and 200 changes since their last pull; "
             "around them, the rest of the organisation (seeded customers, and a tenth as many new activities written "
             "since the rep's last pull). The large organisation is the run's seeded database itself. Rows examined are "
             "what the pull's statements read (EXPLAIN ANALYZE of each).", "",
             "| other customers | other new records | rep records | pages | statements | rows examined | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['other_customers']:,} | {r['other_writes']:,} | {r['records']} | {r['pages']} |"
                     f" {r['statements']} | {r['rows_examined']:,} | {r['seconds']:.4f} |")
    if len(rows) == 2 and rows[0]["rows_examined"]:
        lines.append(f"\nRatio large ÷ small: rows examined {rows[1]['rows_examined'] / rows[0]['rows_examined']:.2f}, "
                     f"seconds {rows[1]['seconds'] / rows[0]['seconds']:.2f} (one pull: the seconds are noisier).")
    return lines


# What profiling the PostgreSQL paths found (cProfile of apply_batch in one process, pg_stat_statements and
# py-spy during `python -m bench.server --quick --only intake,sync`), what was changed, and what is left.
FINDINGS = [
    "### Profiled: the batch path and a feed page on PostgreSQL", "",
    "**Order intake, before.** A new order cost about fifteen round trips to PostgreSQL, each its own statement: "
    "the op-result lookup, a savepoint and its release, the existence check (an id lookup in *every* monthly "
    "partition of `orders`: the partition key is the order date, so an id alone prunes nothing), the tombstone "
    "check, the customer, its `FOR SHARE` lock, the order number, the sequence number, the order, its status "
    "event with its own lock and sequence number, two change rows, the op result and a re-read of the order "
    "(every partition again). With 20 writers that was a few hundred orders a second, the server threads "
    "mostly waiting for answers (py-spy: `Connection.wait`), and many `FOR SHARE` locks on the same few "
    "customers by concurrent transactions (PostgreSQL keeps those as multixacts).", "",
    "**Changed.** A batch's consecutive creates of customers' records that do not refer to one another are "
    "checked and written together (`crm_server/batch.py`, `_create_run`): one statement each for their op "
    "results, their ids' state in the change log (the `changes_record` index: one lookup per id, whatever the "
    "partitions), the records they refer to, the customers' shared locks (in id order), the order numbers and "
    "the sequence numbers; then one `INSERT ... SELECT FROM unnest(...)` per table with binary arrays (one "
    "executor start and one partition routing set-up per table, a statement text psycopg parses once) and a "
    "re-read of the new orders restricted to their order dates' partitions. 15 statements for a batch of 10 or "
    "of 200 new orders (`tests/server/test_batch_statements.py` counts them). If a concurrent writer took one "
    "of the ids meanwhile, the run's savepoint rolls back and its ops go one by one: the results are those of "
    "one op after the other. The commit clock's update and `COMMIT` now go in one round trip (pipeline mode), "
    "so the sequencer's row lock is never held across a trip back to a busy server process.", "",
    "**What is left.** CPU per accepted order during intake (PostgreSQL×1, the server's CPU including the feed "
    "follower's pages, `--quick --only intake` on a box whose other processes used ~170% of its 2 cores): "
    "before, 3.2 ms in crm-server and 3.6 ms in PostgreSQL; after, 0.36 ms and 0.30 ms (PostgreSQL×2: 0.44 "
    "and 0.36). PostgreSQL's share is the inserts themselves (the order, its status event and two change rows "
    "into their indexes); crm-server's is psycopg's parameter dumping, pydantic's `Op` check, field "
    "validation, the result dicts and JSON. At ~0.7 ms of CPU per order, 3,000 ops/s needs about two whole "
    "cores for the server and PostgreSQL alone, which this shared 2-core box never had to spare in these "
    "runs (the load generator and the feed follower run on it too): what bounds intake now is CPU, no longer "
    "round trips or locks (the commit clock is waited for a few ms per batch).", "",
    "**Feed pages.** A page's fixed cost on PostgreSQL is round trips. Without a read standby the token check "
    "now runs inside the page's own read transaction (one BEGIN and ROLLBACK instead of two, the user "
    "read once: 15 statements instead of 18 for a rep's feed page with a known device, counted by "
    "tests/server/test_feed_round_trips.py; record reads and lists likewise); with `--read-db` the token is still checked on the primary first, "
    "since a token issued or revoked a moment ago moves no commit the standby could be waited for. The "
    "transaction reads the device, token and user, the snapshot head, the store's identity and the "
    "last commit (one statement), on a snapshot's first page the count of every entity in scope (one "
    "statement), then one statement per entity and territory streamed. The change log now carries each "
    "order's date (schema version 7, filled in on upgrade), so the feed's `rows_json` of orders reads only the "
    "partitions of those dates instead of probing every monthly partition's index "
    "(tests/server/test_partitions.py reads the plan). The timings above were not re-measured since. SQLite "
    "answers the same statements in-process without a round trip, so per page it stays cheaper; "
    "PostgreSQL×N wins only where the extra processes get a core of their own.", "",
]


def _profile_section(results: dict) -> list[str]:
    prof = results.get("profiles", {})
    missed = prof.get("missed") or []
    lines = ["## What bounds the missed budgets", ""]
    if not missed:
        return [*lines, "No budget was missed." if prof else "Not profiled in this run."]
    lines.append("Missed: " + "; ".join(missed) + ".")
    lines.append("")
    cores = results.get("machine", {}).get("cpus_usable") or 2
    shares = [r["sample"]["other_cpu"] / (r["sample"]["wall"] * cores) for r in results.get("sync", []) + results.get("intake", [])
              if r["sample"]["wall"]]
    ours = [sum(r["sample"]["cpu"].values()) / (r["sample"]["wall"] * cores) for r in results.get("sync", []) + results.get("intake", [])
            if r["sample"]["wall"]]
    if shares:
        lines += [f"**The machine first.** During the sync and order-intake scenarios, processes outside this benchmark "
                  f"(the other engineers' test suites on this shared box) used a median **{median(shares) * 100:.0f}%** of "
                  f"the machine's CPU, and all of this benchmark's processes together (servers, PostgreSQL, HAProxy, load "
                  f"generator) a median {median(ours) * 100:.0f}%. Every throughput figure here is bounded by that share "
                  "more than by the server: more server processes cannot help when there is no idle core to run them on, "
                  "and each extra process (HAProxy, a second server, PostgreSQL's backends) adds hand-offs that cost "
                  "latency on a starved CPU. The profiles below show where the server's own time went.", ""]
    for v in ("sqlite", "pgn"):
        p = prof.get(v)
        if not p:
            continue
        s = p["sample"]
        lines += [f"### {_label(results, v)}, C = {p['clients']} again, with py-spy on the server processes", "",
                  f"CPU over the {s['wall']:.0f} s window: crm-server {_cpu(s, 'crm-server')}, PostgreSQL "
                  f"{_cpu(s, 'postgresql')}, HAProxy {_cpu(s, 'haproxy')}, load generator {_cpu(s, 'load generator')}, "
                  f"other processes {s['other_cpu']:,.1f} s; the whole machine was busy "
                  f"{s['machine_busy_cpu']:,.1f} s of {s['wall'] * results['machine'].get('cpus_usable', 2):,.0f} "
                  "core-seconds.", ""]
        spy = p.get("py_spy") or {}
        if spy.get("error"):
            lines += [spy["error"], ""]
        elif spy.get("samples"):
            n = spy["samples"]
            w = spy.get("waiting")
            lines += [f"py-spy ({n:,} samples of the server processes' threads"
                      + (f"; {w / n * 100:.0f}% of them waiting: for PostgreSQL's answer, in the event loop's select, "
                         "or in a thread handoff" if w is not None else "") + ") — where the samples were (self):",
                      "", "| % | function |", "| --- | --- |"]
            lines += [f"| {c / n * 100:.1f} | `{f[:150]}` |" for f, c in spy["self"][:12]]
            lines += ["", "and which of crm_server's functions they were under (inclusive):", "", "| % | function |",
                      "| --- | --- |"]
            lines += [f"| {c / n * 100:.1f} | `{f[:150]}` |" for f, c in spy["inclusive"][:12]]
            lines.append("")
    if any("/v1/batch" in m or "feed throughput" in m for m in missed):
        lines += FINDINGS
    top = []
    for r in results.get("intake", []):
        if r["variant"] == "pgn" and r.get("top_statements"):
            top = r["top_statements"]
    if top:
        lines += ["### PostgreSQL during order intake (pg_stat_statements, last round, PostgreSQL×N)", "",
                  "| calls | total ms | mean ms | rows | statement |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {t['calls']:,} | {t['total_ms']:,.0f} | {t['mean_ms']:.3f} | {t['rows']:,} |"
                  f" `{t['query'][:160].replace('|', '/')}` |" for t in top[:8]]
    return lines


def render(results: dict) -> str:
    m = results.get("machine", {})
    plan = results.get("plan", {})
    setup = results.get("setup", {})
    counts = setup.get("counts", {})
    lines = [
        "# Server benchmark (issue 8)",
        "",
        f"`make bench-server{'-quick' if plan.get('mode') == 'quick' else ''}` — {plan.get('mode')} run, "
        f"{plan.get('customers', 0):,} seeded customers. Written by `{results.get('command', 'python -m bench.server')}` "
        f"in {results.get('elapsed_s', 0) / 60:.0f} min.",
        "",
        "## Machine",
        "",
        f"- {m.get('date')}, {m.get('os')}, {m.get('cpu')}, {m.get('cpus_usable')} usable cores, "
        f"{(m.get('ram') or 0) / 2**30:.0f} GiB RAM; load average at start {m.get('load_at_start')}",
        f"- Python {m.get('python')}, SQLite {m.get('sqlite')}, {m.get('postgresql')}, {m.get('haproxy')}; git {m.get('git')}",
        "- **What shares the machine:** everything of the benchmark runs on it at once — the crm-server processes, "
        "PostgreSQL, HAProxy, the load generator (1–2 asyncio processes with httpx; a feed follower for order intake) "
        "and the idle servers of the other variants — plus whatever else runs on this shared box (other engineers' "
        "test suites: the *other processes' CPU* column measures it, from the machine's busy time minus ours).",
        f"- Data set: `crm-server seed --customers {plan.get('customers', 0):,} --seed 1` "
        + (", ".join(f"{k} {v:,}" for k, v in counts.items()) if counts else "")
        + f"; SQLite file {mb(setup.get('sqlite_bytes'))}, PostgreSQL database {mb(setup.get('pg_bytes'))}. "
        f"Seeding PostgreSQL (COPY) took {setup.get('pg_seed_s', 0):.0f} s. Each variant works on its own copy "
        "(PostgreSQL: `CREATE DATABASE ... TEMPLATE`), plus "
        f"{setup.get('prepare_pg', {}).get('territories', '?')} client territories and 2 order-intake territories "
        "added before the copy.",
        "- Servers: `crm-server serve --rate-limit 0 --max-connections-per-client 0` (the per-token limiter is off: "
        "this measures the server, not the limiter). SQLite: WAL, `synchronous = NORMAL`. PostgreSQL 15: fsync on, "
        "shared_buffers 512MB, the server's writes commit with `synchronous_commit = off` (like SQLite's NORMAL: a "
        "power cut may lose the last moments, never corrupt). HAProxy (`bench/pgcluster.py` writes its config, the "
        "shape of a deployment's): least-connections over the server processes, health-checked on `/health`.",
        "",
        "## Budgets (issue 8)",
        "",
        "| budget | target | this run | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for b in budgets(results):
        lines.append(f"| {b['name']} | {b['budget']} | {b['figure']} | {_verdict(b['met'])} |")
    if plan.get("mode") != "full":
        lines += ["", f"This is a **{plan.get('mode')}** run: the budgets are meant for the full data set "
                  "(1M customers, 3M orders); figures here only show that the harness works end to end."]
    if results.get("errors"):
        lines += ["", "**Parts that failed in this run:**", ""]
        lines += [f"- {k}: `{v[:300]}`" for k, v in results["errors"].items()]
    lines.append("")
    for section in (_sync_section, _intake_section, _revenue_section, _scope_section, _profile_section):
        if section is _sync_section and not results.get("sync"):
            continue
        body = section(results)
        if body:
            lines += [*body, ""]
    lines += ["## How to run", "",
              "`make bench-server` (1M customers; about an hour on this machine, most of it seeding) or "
              "`make bench-server-quick` (20,000 customers, a few minutes). Both install HAProxy with apt when it is "
              "missing and start their own PostgreSQL, servers and HAProxy on free loopback ports, and stop them at "
              "the end. `python -m bench.server --help` lists the knobs (`--clients`, `--rounds`, `--workers`, `--only intake` for one scenario in a few minutes, ...); "
              "`--report-only` rewrites this file from `bench/.work/server/results.json`.", ""]
    return "\n".join(lines)
