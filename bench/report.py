"""bench/RESULTS.md and the stdout summary, from the run's results dict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import fmt_ratio, mb, ratio

MiB = 1024 * 1024


@dataclass
class Row:
    key: str
    scenario: str
    figure: str
    budget: str
    status: str  # pass, MISS, info, error
    baseline: str
    ratio: str


def _ms(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x * 1000:.{digits}f} ms"


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} s"


def _rate(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}/s"


def _ok(cond: bool) -> str:
    return "pass" if cond else "MISS"


def rows(res: dict[str, Any]) -> list[Row]:
    sc = res.get("scenarios", {})
    errors = res.get("errors", {})
    out: list[Row] = []

    def err(key: str, label: str) -> None:
        if key in errors:
            out.append(Row(key, label, "failed", "", "error", "", ""))

    s = sc.get("search")
    if s:
        worst = max(s["queries"], key=lambda q: q["product"]["p99"])
        naive_worst = next(q for q in s["queries"] if q["query"] == worst["query"])["naive"]
        out.append(Row("search", "1. Search, worst query p99", f"{_ms(worst['product']['p99'])} (“{worst['query']}”)",
                       "≤ 10 ms every query", _ok(not s["slow"]),
                       f"naive bm25 MATCH {_ms(naive_worst.get('p99'))}; point lookup {_ms(s['point_lookup']['p99'], 3)}",
                       f"{fmt_ratio(ratio(worst['product']['p99'], naive_worst.get('p99')))} of naive"))
        out.append(Row("search-all", "1. Search, all queries p50 / p99",
                       f"{_ms(s['overall']['p50'])} / {_ms(s['overall']['p99'])}", "", "info",
                       f"naive {_ms(s['overall_naive']['p50'])} / {_ms(s['overall_naive']['p99'])}",
                       f"{fmt_ratio(ratio(s['overall']['p99'], s['overall_naive']['p99']))} of naive (p99)"))
    err("search", "1. Search")
    t = sc.get("tui")
    if t:
        p, f = t["product"]["paint"], t["floor"]["paint"]
        out.append(Row("tui", "2. Keystroke → painted results, p95 above floor",
                       f"{_ms(t['p95_above_floor'], 1)} (p50 {_ms(p['p50'], 1)}, p95 {_ms(p['p95'], 1)})",
                       "≤ 50 ms above floor", _ok(t["p95_above_floor"] <= t["budget_above_floor"]),
                       f"plain Input floor p50 {_ms(f['p50'], 1)}, p95 {_ms(f['p95'], 1)}",
                       f"{fmt_ratio(ratio(p['p95'], f['p95']))} of floor (p95)"))
    err("tui", "2. Keystroke → painted results")
    li = sc.get("lists")
    if li and li["G"].get("n"):
        g, gf = li["G"], li["G_floor"]
        out.append(Row("lists-G", f"8. `G` on the full queue ({li['queue_rows']:,} rows) → last row painted, p95",
                       _ms(g["p95"], 1), "≤ 100 ms", _ok(g["p95"] <= li["budget"]),
                       f"raw SQL last block {_ms(gf['p95'], 2)} (forward OFFSET {_ms(li['G_forward_offset']['p95'], 1)})",
                       f"+{_ms(g['p95'] - gf['p95'], 1)} above the SQL"))
        f, ff = li["filter"], li["filter_floor"]
        out.append(Row("lists-filter", "8. `/` filter over the full queue, key → rows painted, p95", _ms(f["p95"], 1),
                       "≤ 100 ms", _ok(f["p95"] <= li["budget"]),
                       f"raw SQL filtered count + first block {_ms(ff['p95'], 1)}",
                       f"+{_ms(f['p95'] - ff['p95'], 1)} above the SQL"))
        v, vf = li.get("view") or {}, li.get("view_floor") or {}
        if v.get("n") and vf.get("n"):
            per = li.get("statements_per") or {}
            out.append(Row("lists-view", "8. Queue view change (`v`) → first rows painted, p95", _ms(v["p95"], 1),
                           "≤ 100 ms", _ok(v["p95"] <= li["budget"]),
                           f"raw SQL first block {_ms(vf['p95'], 2)}; counts on the UI thread: "
                           f"{per.get('view_counts')}", f"+{_ms(v['p95'] - vf['p95'], 1)} above the SQL"))
    err("lists", "8. Whole lists")
    c = sc.get("c360")
    if c:
        pl = c["point_lookup"]
        out.append(Row("c360-cold", "3. Customer 360 cold, p50 / p99", f"{_ms(c['cold']['p50'])} / {_ms(c['cold']['p99'])}",
                       "≤ 5 ms (p99)", _ok(c["cold"]["p99"] <= c["budget_cold"]),
                       f"point lookup {_ms(pl['p50'], 3)} / {_ms(pl['p99'], 3)}",
                       f"{fmt_ratio(ratio(c['cold']['p99'], pl['p99']))} (p99)"))
        out.append(Row("c360-warm", "3. Customer 360 warm, p50 / p99", f"{_ms(c['warm']['p50'], 3)} / {_ms(c['warm']['p99'], 3)}",
                       "≤ 1 ms (p99)", _ok(c["warm"]["p99"] <= c["budget_warm"]),
                       f"point lookup {_ms(pl['p50'], 3)} / {_ms(pl['p99'], 3)}",
                       f"{fmt_ratio(ratio(c['warm']['p99'], pl['p99']))} (p99)"))
    err("c360", "3. Customer 360")
    b = sc.get("bootstrap")
    if b:
        n = len(b["reps"])
        out.append(Row("boot-rate", f"4. Bootstrap records/s end to end (median of {n})", _rate(b["records_per_s"]),
                       "≥ 100,000/s", _ok(b["records_per_s"] >= 100_000),
                       f"raw executemany ceiling {_rate(b['ceiling_rows_per_s'])}",
                       f"{fmt_ratio(ratio(b['records_per_s'], b['ceiling_rows_per_s']))} of ceiling"))
        out.append(Row("boot-customers", "4. Bootstrap: customer search usable", _s(b["customers_ready_s"]), "≤ 15 s",
                       _ok(b["customers_ready_s"] <= 15), "", ""))
        out.append(Row("boot-contacts", "4. Bootstrap: contact search usable", _s(b["contacts_ready_s"]), "≤ 45 s",
                       _ok(b["contacts_ready_s"] <= 45), "", ""))
        rep = b["reps"][0]
        peak = rep["_sampled"]["peak_rss"]
        out.append(Row("boot-rss", "4. Bootstrap peak RSS client / server",
                       f"{mb(rep.get('max_rss'))} / {mb(rep.get('server_hwm') or peak.get('server'))}", "", "info", "", ""))
    err("bootstrap", "4. Bootstrap")
    i = sc.get("incremental")
    if i:
        out.append(Row("incremental", f"5. Incremental sync of 1k changes (median of {i['run_once']['n']})",
                       f"{_ms(i['run_once']['p50'], 0)} (pull {_ms(i['pull']['p50'], 0)}, max {_ms(i['run_once']['max'], 0)})",
                       "≤ 300 ms", _ok(i["run_once"]["p50"] <= i["budget"]),
                       f"raw fetch of the same pages {_ms(i['raw_fetch']['p50'], 0)}",
                       fmt_ratio(ratio(i["run_once"]["p50"], i["raw_fetch"]["p50"]))))
    err("incremental", "5. Incremental sync")
    pu = sc.get("push")
    if pu and pu["rounds"]:
        out.append(Row("push", f"6. Push of 10k edits: requests, time (median of {pu['push']['n']})",
                       f"{pu['requests']} requests, {_s(pu['push']['p50'])}", "≤ 20 requests",
                       _ok(pu["requests"] <= pu["budget_requests"]),
                       f"raw POST in batches of {pu['batch_size']}: {_s(pu['raw']['p50'])}",
                       fmt_ratio(ratio(pu["push"]["p50"], pu["raw"]["p50"]))))
    err("push", "6. Push")
    m = sc.get("memory")
    if m:
        peak = m["tui"]["peak"] or m["tui"]["_process"]["max_rss"]
        fl = m["floor"]["peak"] or m["floor"]["_process"]["max_rss"]
        out.append(Row("tui-rss", "7. TUI RSS with the full replica (peak)", mb(peak), "≤ 200 MB",
                       _ok(peak <= m["tui"]["budget"]), f"minimal Textual app {mb(fl)}", fmt_ratio(ratio(peak, fl))))
    err("memory", "7. TUI memory")
    d = sc.get("daemon")
    if d:
        out.append(Row("daemon-cpu", "7. Daemon idle CPU", f"{d['idle_cpu_pct']:.2f}% of a core",
                       "≈ 0% (≤ 0.5%)", _ok(d["idle_cpu_pct"] <= 0.5),
                       f"sleeping Python {d['baseline_idle_cpu_pct']:.2f}%", ""))
        out.append(Row("daemon-rss", "7. Daemon RSS idle / during sync",
                       f"{mb(d.get('rss_idle'))} / {mb(max(d.get('rss_first_sync_peak') or 0, d.get('rss_requested_sync_peak') or 0))}",
                       "", "info", f"same imports, idle {mb(d.get('baseline_rss'))}",
                       fmt_ratio(ratio(d.get("rss_idle"), d.get("baseline_rss")))))
    err("daemon", "7. Daemon")
    return out


def primary(res: dict[str, Any]) -> dict[str, Any]:
    """The results the report is about: the encrypted run when there is one (what users run)."""
    variants = res.get("variants")
    if not variants:
        return res
    return variants.get("encrypted") or next(iter(variants.values()))


def summary_table(res: dict[str, Any]) -> str:
    if res.get("variants"):
        return "\n\n".join(summary_table(v) for v in res["variants"].values())
    table = [("scenario", "figure", "budget", "result", "baseline (same run)", "ratio")]
    table += [(r.scenario, r.figure, r.budget, r.status, r.baseline, r.ratio) for r in rows(res)]
    widths = [min(max(len(row[i]) for row in table), 60) for i in range(6)]
    lines = []
    for n, row in enumerate(table):
        lines.append("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    mode = res.get("mode")
    head = (f"crm-tui benchmark ({mode}, {res.get('variant', 'encrypted')} replica"
            f"{' — budgets are for the 1M data set' if mode == 'quick' else ''})")
    return head + "\n" + "\n".join(lines)


# ---------------------------------------------------------------------------- RESULTS.md


def _code(text: str | None) -> list[str]:
    return ["```", text or "", "```", ""] if text else []


def _profile_block(p: dict[str, Any] | None, title: str = "Profile") -> list[str]:
    if not p:
        return []
    out = [f"{title} (pyinstrument, wall time {p.get('duration') or 0:.1f} s; full profile: `{p['html']}`, `{p['txt']}`):", ""]
    out += _code(p.get("tree"))
    out += ["Functions by own time (top):", ""]
    out += _code(p.get("self_top"))
    return out


def _sql_block(rows_: list[dict[str, Any]] | None, unit: str) -> list[str]:
    if not rows_:
        return []
    out = [f"SQLite statements by time ({unit}):", "", "| ms | calls | statement |", "| ---: | ---: | --- |"]
    for r in rows_:
        sql = r["sql"].replace("|", "\\|")
        out.append(f"| {r['ms']:.2f} | {r['calls']:.3g} | `{sql}` |")
    return [*out, ""]


STATUS = {"pass": "✅ pass", "MISS": "❌ **miss**", "info": "info", "error": "⚠️ error"}


def _side_by_side(L: list[str], variants: dict[str, dict[str, Any]]) -> None:
    """Each summary figure with encryption on and off, measured in the same run."""
    enc, plain = variants.get("encrypted"), variants.get("plaintext")
    if not enc or not plain:
        return
    by_key = {r.key: r for r in rows(plain)}
    L += ["## Encryption: what it costs", "",
          "The same scenarios on the same data set, in the same run, once on an encrypted replica (SQLCipher, "
          "the default) and once on a plaintext one (`security.encrypt_replica = false`). Both use SQLCipher's "
          "SQLite build, so the difference is the encryption alone.", "",
          "| scenario | budget | encrypted | | plaintext | |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows(enc):
        other = by_key.get(r.key)
        L.append(f"| {r.scenario} | {r.budget} | {r.figure} | {STATUS[r.status]} | "
                 f"{other.figure if other else '–'} | {STATUS[other.status] if other else ''} |")
    sizes = [(v, (res.get("replica") or {}).get("bytes")) for v, res in (("encrypted", enc), ("plaintext", plain))]
    if all(b for _, b in sizes):
        L.append("")
        L.append("Replica file after the scenarios: " + ", ".join(f"{v} {mb(b)}" for v, b in sizes) + ".")
    L.append("")


def write_results(res: dict[str, Any], path: Path) -> None:
    variants = res.get("variants")
    main = primary(res)
    L = _report(main)
    if variants and len(variants) > 1:
        at = L.index("## Machine")
        side: list[str] = []
        _side_by_side(side, variants)
        L[at:at] = side
        for name, other in variants.items():
            if other is main:
                continue
            L += [f"## The {name} run in detail", "", "<details>", "",
                  *[line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in _details(other)],
                  "</details>", ""]
    path.write_text("\n".join(L).rstrip() + "\n")


def _details(res: dict[str, Any]) -> list[str]:
    L: list[str] = []
    sc = res.get("scenarios", {})
    _search(L, sc.get("search"))
    _tui(L, sc.get("tui"))
    _lists(L, sc.get("lists"))
    _c360(L, sc.get("c360"))
    _bootstrap(L, sc.get("bootstrap"))
    _incremental(L, sc.get("incremental"))
    _push(L, sc.get("push"))
    _memory(L, sc.get("memory"), sc.get("daemon"))
    return L


def _report(res: dict[str, Any]) -> list[str]:
    L: list[str] = []
    sc = res.get("scenarios", {})
    mach = res.get("machine", {})
    quick = res.get("mode") == "quick"
    L.append("# crm-tui benchmark results")
    L.append("")
    if quick:
        L += [f"> **QUICK RUN** (`python -m bench --quick`, {res['customers']:,} customers). The budgets are for the "
              "1M-customer data set of `make bench`; pass/fail here is only indicative.", ""]
    if res.get("merged_from"):
        L += [f"> Scenarios {', '.join(res.get('rerun') or [])} were re-run with `--only` and merged into the results "
              f"of the run of {res['merged_from']} (same data set and replica).", ""]
    if res.get("interrupted"):
        L += ["> **Interrupted** — the figures below are what was measured before Ctrl-C.", ""]
    L += [f"- Date: {mach.get('date', '?')}; took {res.get('elapsed_s', 0) / 60:.1f} min; command: `{res.get('command')}`",
          f"- Replica: {res.get('variant', 'encrypted')} (the figures below; see \"Encryption: what it costs\" for "
          "the other way, when the run did both)",
          f"- Code: git {mach.get('git', '?')}",
          "- Every latency is a median/percentile of many runs, every throughput a median of repetitions; each "
          "figure sits beside a baseline measured in the same run on the same machine, and the ratio between them.",
          ""]
    L += ["## Summary", "", "| scenario | figure | budget | result | baseline (same run) | ratio |",
          "| --- | --- | --- | --- | --- | --- |"]
    for r in rows(res):
        L.append(f"| {r.scenario} | {r.figure} | {r.budget} | {STATUS[r.status]} | {r.baseline} | {r.ratio} |")
    L.append("")
    for name, e in res.get("errors", {}).items():
        L.append(f"- ⚠️ `{name}` failed: `{e}` (see bench/.work/run/workers/*.log)")
    if res.get("errors"):
        L.append("")

    # Machine and data set
    L += ["## Machine", ""]
    if mach:
        pk = mach.get("packages", {})
        L += [f"- CPU: {mach['cpu']}, {mach['cpus_usable']} usable cores ({mach['cores_logical']} logical); "
              f"RAM {mach['ram'] / 1024**3:.1f} GiB; {mach['os']}",
              f"- Python {mach['python']}; SQLite {mach['sqlite']} (FTS5 trigram: {'yes' if mach['fts5_trigram'] else 'no'})",
              "- Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items()),
              f"- Load average at start: {', '.join(f'{x:.2f}' for x in mach.get('load_at_start') or [])} "
              "(the machine is shared: client, server and other work run on the same cores)", ""]
    ds = res.get("dataset")
    if ds:
        L += ["## Data set", "",
              f"`crm-server seed --customers {res['customers']:,} --seed {res['seed']} --now 2026-11-25T09:00:00Z`, "
              f"cached as `{ds['file']}` ({mb(ds['bytes'])})"
              + (f", seeded in {ds['seeded_now_s']:.0f} s this run" if ds.get("seeded_now_s") else "") + ".", ""]
        boot = sc.get("bootstrap")
        rc = boot["reps"][0]["counts"] if boot else {}
        L += ["| entity | server rows | replica rows after bootstrap |", "| --- | ---: | ---: |"]
        names = {"territories": "territory", "users": "user", "customers": "customer", "contacts": "contact",
                 "tickets": "ticket", "deals": "deal", "orders": "order", "activities": "activity",
                 "tasks": "task"}
        for table, n in ds["counts"].items():
            L.append(f"| {table} | {n:,} | {rc.get(names[table], 0):,} |" if rc else f"| {table} | {n:,} | – |")
        L.append(f"| **total** | **{sum(ds['counts'].values()):,}** | **{sum(rc.values()):,}** |" if rc else "")
        L.append("")
        if res.get("replica"):
            L += [f"Replica file after bootstrap (and the later scenarios): {mb(res['replica']['bytes'])}.", ""]

    L += _details(res)
    _bounds(L, res)
    _notes(L)
    L += ["## Method", "",
          "- `make bench` (1M customers) / `make bench-quick` (50k); `python -m bench --help` for options "
          "(`--only`, `--bootstrap-reps`, `--no-profile`, `--customers`).",
          "- The seeded server database is cached in `bench/data/` (keyed by size and seed); each run works on a "
          "fresh copy with two added users (an agent, who sees every customer, and an admin who makes server-side "
          "changes). Servers run on free loopback ports with the per-token rate limit off.",
          "- Each scenario runs in a fresh Python process (`bench/worker.py`), so caches and memory of one do not "
          "leak into another. The bootstrap replica of the first repetition is the full replica the other "
          "scenarios use.",
          "- Full profiles of missed budgets: `bench/profiles/` (not committed). Raw figures: "
          "`bench/.work/run/results.json`.",
          "- `--encryption both` (the default) runs every scenario twice, on an encrypted replica and on a "
          "plaintext one (`--encryption on|off` runs one); the encrypted replica's key is wrapped by a passphrase "
          "given in `CRM_TUI_PASSPHRASE`, as on a machine without a keyring.", ""]
    return L


def _search(L: list[str], s: dict[str, Any] | None) -> None:
    if not s:
        return
    L += ["## 1. Search latency", "",
          "Warm queries against the full replica through `Replica.search(text, limit=50)`, round-robin over the set. "
          "Naive = bm25-ranked FTS5 MATCH of the same prefix terms on customers and contacts "
          "(`ORDER BY bm25(...) LIMIT 50`). Point lookup = one customer row by id: "
          f"p50 {_ms(s['point_lookup']['p50'], 3)}, p99 {_ms(s['point_lookup']['p99'], 3)} (n={s['point_lookup']['n']}).", "",
          "| query | kind | hits (total) | p50 | p99 | n | naive p50 | naive p99 | p99 vs naive | budget |",
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for q in s["queries"]:
        p, nv = q["product"], q["naive"]
        tot = f"{q['total']:,}{'+' if q['capped'] else ''}"
        L.append(f"| `{q['query']}` | {q['kind']} | {q['hits']} ({tot}) | {_ms(p['p50'])} | {_ms(p['p99'])} | {p['n']} | "
                 f"{_ms(nv.get('p50'))} | {_ms(nv.get('p99'))} | {fmt_ratio(ratio(p['p99'], nv.get('p99')))} | "
                 f"{'✅' if p['p99'] <= s['budget'] else '❌'} |")
    o = s["overall"]
    L += [f"| **all** | | | **{_ms(o['p50'])}** | **{_ms(o['p99'])}** | {o['n']} | {_ms(s['overall_naive']['p50'])} | "
          f"{_ms(s['overall_naive']['p99'])} | {fmt_ratio(ratio(o['p99'], s['overall_naive']['p99']))} | |", ""]


def _tui(L: list[str], t: dict[str, Any] | None) -> None:
    if not t:
        return
    p, f = t["product"], t["floor"]
    L += ["## 2. Keystroke → painted results (headless Textual, 120×40)", "",
          f"{t['keystrokes']} keystrokes per side, typing {', '.join(f'`{x}`' for x in t['typed'])} one key at a time "
          "(3 rounds, product and floor interleaved). The clock runs from the key event to the first frame the "
          "compositor renders (and encodes) that shows the results of the text typed so far; the floor is the same "
          "harness typing into a plain `Input` in a minimal app.", "",
          "| | p50 | p95 | p99 | max |", "| --- | ---: | ---: | ---: | ---: |"]

    def row(label: str, x: dict[str, Any]) -> None:
        if x.get("n"):
            L.append(f"| {label} | {_ms(x['p50'], 1)} | {_ms(x['p95'], 1)} | {_ms(x['p99'], 1)} | {_ms(x['max'], 1)} |")

    row("**product: key → results painted**", p["paint"])
    row("**floor: key → value painted**", f["paint"])
    row("product: key → typed character painted", p["echo"])
    row(f"product: key → search starts (debounce {t['debounce'] * 1000:.0f} ms)", p["before_refresh"])
    row("product: search screen refresh (search + table + summary)", p["refresh"])
    row("product: of which `Replica.search`", p["search"])
    row("product: refresh done → frame painted", p["after_refresh"])
    L += ["", f"p95 above the floor: **{_ms(t['p95_above_floor'], 1)}** (budget ≤ 50 ms).", ""]


def _lists(L: list[str], li: dict[str, Any] | None) -> None:
    if not li or not li["G"].get("n"):
        return
    L += ["## 8. Whole lists: `G` and `/` on the full ticket queue (headless Textual, 120×40)", "",
          f"The queue in its \"all\" view, status \"any\": {li['queue_rows']:,} tickets (every one). `G` from the top, timed from the key "
          "event to the first frame rendered with the cursor on the last row; `/` then "
          f"{', '.join(f'`{x}`' for x in li['filters'])} typed a key at a time, each key timed to the first frame "
          "showing the rows for the text so far. Floors: the SQL beneath, on the same connection.", "",
          "| | p50 | p95 | p99 | max | n |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, key in (("**`G` → last row painted**", "G"), ("floor: the last block (walked from the end)", "G_floor"),
                       ("contrast: last block by a forward OFFSET", "G_forward_offset"),
                       ("**`/` key → filtered rows painted**", "filter"),
                       ("floor: filtered count + first block", "filter_floor"),
                       ("of which the filtered count", "filter_count_floor"),
                       ("**`v` → the next view's first rows painted**", "view"),
                       ("floor: the view's first block", "view_floor")):
        x = li.get(key) or {}
        if x.get("n"):
            L.append(f"| {label} | {_ms(x['p50'], 1)} | {_ms(x['p95'], 1)} | {_ms(x['p99'], 1)} | {_ms(x['max'], 1)} | "
                     f"{x['n']} |")
    matches = ", ".join(f"`{k}` {v:,}" for k, v in (li.get("filter_matches") or {}).items())
    L += ["", f"Matches over the whole queue: {matches}. Last row shown after `G`: `{li.get('last_row_shown', '')}`.", ""]
    per = li.get("statements_per") or {}
    if per:
        L += [f"SQL statements the app ran per action (most seen): `G` {per.get('G')}, `/` key {per.get('filter')}"
              + (f", `v` {per.get('view')}, of which counting or summing tickets on the UI thread "
                 f"{per.get('view_counts')} (the queue's count and overdue count come from workers)"
                 if per.get("view") is not None else "") + ".", ""]
    if li.get("view_rows"):
        L += ["Rows per view after `v`: " + ", ".join(f"{k} {n:,}" for k, n in li["view_rows"].items()) + ".", ""]


def _c360(L: list[str], c: dict[str, Any] | None) -> None:
    if not c:
        return
    L += ["## 3. Customer 360 open", "",
          f"{c['customers']} random customers, `Reads.customer_360(id)` as the screen calls it; cold = first open "
          "(hot-cache miss: assembled from SQLite, stored in diskcache), warm = the same customers again, 3 passes "
          "(diskcache hit). Build only = the assembly without the hot cache, on other customers.", "",
          "| | p50 | p95 | p99 | max | n |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, key in (("cold (SQLite + store in diskcache)", "cold"), ("warm (diskcache)", "warm"),
                       ("build only (no cache)", "build_only"), ("baseline: point lookup of the row", "point_lookup")):
        x = c[key]
        L.append(f"| {label} | {_ms(x['p50'], 3)} | {_ms(x['p95'], 3)} | {_ms(x['p99'], 3)} | {_ms(x['max'], 3)} | {x['n']} |")
    L += ["", f"Hot-cache misses during the cold pass: {c['cache_misses_cold']}; hits during the warm passes: "
          f"{c['cache_hits_warm']}. Rows per view (lists): median {c['rows_per_view'].get('p50', 0):.0f}.", ""]


def _bootstrap(L: list[str], b: dict[str, Any] | None) -> None:
    if not b:
        return
    L += ["## 4. Bootstrap over loopback into an empty replica", "",
          "`SyncEngine.run_once` on a new replica (durable=False, as `crm-tui sync` opens it), default page size, "
          "against `crm-server serve` on loopback (restarted for each repetition), timed from opening the empty "
          "replica to the end of the run. Search usable = the moment the replica's `complete_entities` lists "
          "customers (then contacts). Ceiling = the same rows, read from the server's database, inserted with plain "
          "`executemany` into empty tables of the same columns (no key, index or FTS), one transaction per 2,000 "
          "rows, with the replica's pragmas; only the inserts are timed.", "",
          "| rep | records | seconds | records/s | customers searchable | contacts searchable | requests | "
          "client CPU | server CPU | client peak RSS | server peak RSS | replica file | ceiling rows/s | ratio |",
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, (r, c) in enumerate(zip(b["reps"], b["ceilings"], strict=False), 1):
        srv_cpu = (r.get("_sampled") or {}).get("cpu", {}).get("server")
        srv_peak = r.get("server_hwm") or (r.get("_sampled") or {}).get("peak_rss", {}).get("server")
        L.append(f"| {n} | {r['pulled']:,} | {r['seconds']:.1f} | {r['records_per_s']:,.0f} | {_s(r['customers_ready_s'])} | "
                 f"{_s(r['contacts_ready_s'])} | {r['requests']:,} | {r['cpu']:.0f} s | "
                 f"{'–' if srv_cpu is None else f'{srv_cpu:.0f} s'} | {mb(r['max_rss'])} | {mb(srv_peak)} | "
                 f"{mb(r['replica_bytes'])} | {c['rows_per_s']:,.0f} | {fmt_ratio(ratio(r['records_per_s'], c['rows_per_s']))} |")
    L += ["", "Records/s while each entity streamed (repetition 1):", "", "| entity | records | seconds | records/s | "
          "ceiling rows/s for it |", "| --- | ---: | ---: | ---: | ---: |"]
    ceil = b["ceilings"][0]["per_entity"]
    for ph in b["reps"][0]["phases"]:
        ce = ceil.get(ph["entity"] or "", {})
        crate = ce["rows"] / ce["seconds"] if ce.get("seconds") else None
        L.append(f"| {ph['entity']} | {ph['records']:,} | {ph['seconds']:.1f} | {_rate(ph['records_per_s'])} | {_rate(crate)} |")
    L.append("")


def _incremental(L: list[str], i: dict[str, Any] | None) -> None:
    if not i:
        return
    L += ["## 5. Incremental sync of 1k server changes", "",
          "Each round an admin updates 1,000 records (500 customers' city, 250 contacts' title, 250 tickets' "
          "priority) with one `POST /v1/batch`; then the full replica syncs with `SyncEngine.run_once` (me, empty "
          "push, pull). Baseline: the same feed pages fetched raw with httpx + orjson from the same cursor, applied "
          "nowhere.", "",
          "| round | admin batch | raw fetch (baseline) | run_once | of which pull | records pulled | requests | "
          "server CPU in run_once |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, r in enumerate(i["rounds"], 1):
        L.append(f"| {n} | {_ms(r['admin_batch_s'], 0)} | {_ms(r['raw_fetch_s'], 0)} | {_ms(r['run_once_s'], 0)} | "
                 f"{_ms(r['pull_s'], 0)} | {r['pulled']:,} | {r['requests']} | {_ms(r['server_cpu_s'], 0)} |")
    L += ["", f"Median run_once {_ms(i['run_once']['p50'], 0)} (budget ≤ 300 ms); median raw fetch "
          f"{_ms(i['raw_fetch']['p50'], 0)}.", ""]


def _push(L: list[str], p: dict[str, Any] | None) -> None:
    if not p or not p.get("rounds"):
        return
    L += ["## 6. Push of 10k queued local edits", "",
          "Each round: 10,000 edits saved as the app saves them (durable replica; half customers' city, half "
          "contacts' title), then `SyncEngine.push` as the sync worker runs it. Baseline: 10,000 equivalent ops on "
          f"other records POSTed raw in batches of {p['batch_size']}.", "",
          "| round | queued | push time | requests | pushed | conflicts | rejected | left pending | raw POST (baseline) | "
          "raw requests | ratio | queueing 10k saves |",
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, r in enumerate(p["rounds"], 1):
        L.append(f"| {n} | {r['queued']:,} | {_s(r['push_s'])} | {r['requests']} | {r['pushed']:,} | {r['conflicts']} | "
                 f"{r['rejected']} | {r['left'].get('pending', 0)} | {_s(r['raw_s'])} | {r['raw_requests']} | "
                 f"{fmt_ratio(ratio(r['push_s'], r['raw_s']))} | {_s(r['queue_s'])} |")
    sv = p["save"]
    L += ["", f"One local save (`writes.update`, durable): p50 {_ms(sv['p50'], 2)}, p99 {_ms(sv['p99'], 2)} "
          f"(n={sv['n']}). Rounds stop once the pushes took 4 minutes in total.", ""]
    if p.get("profile"):
        L += ["The push has no time budget, but it is far slower than the raw baseline; a profiled push "
              f"(stopped after {p['profile'].get('pushed_before_stop', '?')} requests, not counted above):", ""]
        L += _profile_block(p["profile"], "Push profile")


def _memory(L: list[str], m: dict[str, Any] | None, d: dict[str, Any] | None) -> None:
    if m:
        L += ["## 7. Memory and idle CPU", "", "TUI (CrmApp headless over the full replica) vs a minimal Textual app, "
              "RSS at each stage, and the process's peak so far (VmHWM; the stage where it jumps made the peak):", "",
              "| stage | CrmApp RSS | CrmApp peak so far | minimal app RSS |", "| --- | ---: | ---: | ---: |"]
        st, fl = m["tui"]["stages"], m["floor"]["stages"]
        hwm = m["tui"].get("hwm") or {}
        for k in st:
            L.append(f"| {k.replace('_', ' ')} | {mb(st[k])} | {mb(hwm.get(k))} | {mb(fl.get(k)) if k in fl else ''} |")
        L.append(f"| **peak (VmHWM)** | | **{mb(m['tui']['peak'])}** | {mb(m['floor']['peak'])} |")
        L.append("")
    if d:
        L += ["Sync daemon (`crm-tui sync --daemon --interval 3600`, own config dir and credentials, over the full "
              "replica):", "",
              f"- first sync after start ({d['changes_before_start']:,} admin changes made for it, plus whatever earlier "
              f"scenarios left in the feed; it pulled {(d.get('first_sync_run') or {}).get('pulled', '?'):,} records): "
              f"{_s(d['first_sync_s'])}, peak RSS {mb(d['rss_first_sync_peak'])}",
              f"- idle for {d['idle_wall']:.0f} s: CPU {d['idle_cpu_pct']:.2f}% of a core ({d['idle_cpu_s']:.2f} s), "
              f"RSS {mb(d['rss_idle'])}; baseline (Python with the same imports, sleeping): CPU "
              f"{d['baseline_idle_cpu_pct']:.2f}%, RSS {mb(d['baseline_rss'])}",
              f"- \"sync now\" asked of the running daemon ({d['changes_requested']:,} new server changes): "
              f"{d.get('request', 'SIGUSR1')}; synced ({(d.get('requested_sync_run') or {}).get('pulled', '?'):,} records pulled) "
              f"{_s(d['requested_sync_s'])} after the request, peak RSS "
              f"{mb(d['rss_requested_sync_peak'])}",
              f"- daemon peak RSS over its life (VmHWM): {mb(d.get('daemon_hwm'))}; exit code after SIGTERM: {d['exit_code']}",
              ""]


NOTES = Path(__file__).resolve().parent / "NOTES.md"


def _notes(L: list[str]) -> None:
    """The hand-written part: what was tried for each budget, and what is left (bench/NOTES.md)."""
    if NOTES.exists():
        L += [NOTES.read_text().rstrip(), ""]


def _bounds(L: list[str], res: dict[str, Any]) -> None:
    sc = res.get("scenarios", {})
    missed = [r for r in rows(res) if r.status == "MISS"]
    if not missed:
        return
    L += ["## What bounds the missed budgets", "",
          "Evidence gathered by the harness in the same run (profiles are taken in extra, unmeasured runs). The "
          "interpretation and what to try are in the issue thread / the session report; the facts are here.", ""]
    keys = {r.key for r in missed}
    if "search" in keys and sc.get("search"):
        s = sc["search"]
        L += ["### Search p99 > 10 ms", "", "Queries over budget: " + ", ".join(f"`{q}`" for q in s["slow"]) + ".", ""]
        for q, rows_ in (s.get("sql_breakdown") or {}).items():
            L += [f"`{q}`:", ""]
            L += _sql_block(rows_, "ms per search")
        L += _profile_block(s.get("profile"))
    if "tui" in keys and sc.get("tui"):
        t = sc["tui"]
        p = t["product"]
        L += ["### Keystroke → painted results", "",
              f"Median split of one keystroke: key → search starts {_ms(p['before_refresh']['p50'], 1)} (the search "
              f"screen's debounce is {t['debounce'] * 1000:.0f} ms), screen refresh {_ms(p['refresh']['p50'], 1)} (of "
              f"which `Replica.search` {_ms(p['search']['p50'], 1)}), refresh → frame {_ms(p['after_refresh']['p50'], 1)}.", ""]
        L += _sql_block(t.get("sql_breakdown"), "ms per keystroke, profiled round")
        L += _profile_block(t.get("profile"), "Profile of one product round (the event loop's idle wait shows as epoll/select)")
    for key, label in (("c360-cold", "Customer 360 cold"), ("c360-warm", "Customer 360 warm")):
        if key in keys and sc.get("c360"):
            c = sc["c360"]
            L += [f"### {label}", "", f"Build only (SQLite assembly, no cache) p50 {_ms(c['build_only']['p50'], 3)}, "
                  f"p99 {_ms(c['build_only']['p99'], 3)}; cold p50 {_ms(c['cold']['p50'], 3)}; warm p50 "
                  f"{_ms(c['warm']['p50'], 3)}.", ""]
            L += _sql_block(c.get("sql_breakdown"), "ms per cold open")
            L += _profile_block(c.get("profile"))
            keys.discard("c360-cold")
            keys.discard("c360-warm")
    if keys & {"boot-rate", "boot-customers", "boot-contacts"} and sc.get("bootstrap"):
        b = sc["bootstrap"]
        reps = sorted(b["reps"], key=lambda x: x["records_per_s"])
        r = reps[len(reps) // 2]
        wall = r["seconds"]
        srv = (r.get("_sampled") or {}).get("cpu", {}).get("server")
        client_pct = 100 * r["cpu"] / wall
        srv_pct = 100 * srv / wall if srv is not None else None
        verdict = ("The client is the bottleneck: it keeps one core busy while the server mostly waits (pages are "
                   "fetched and applied one after the other, never overlapped)."
                   if client_pct > 70 and (srv_pct or 0) < 40 else
                   "Neither process keeps a core busy on its own: the page round trips and the alternation of fetch "
                   "and apply bound the rate." if client_pct + (srv_pct or 0) < 120 else
                   "Client and server together keep both cores busy.")
        L += ["### Bootstrap", "",
              f"CPU over the {wall:.0f} s of the median repetition: client process {r['cpu']:.0f} s "
              f"({client_pct:.0f}% of one core), server {'–' if srv is None else f'{srv:.0f} s ({srv_pct:.0f}%)'}. "
              + verdict, ""]
        pr = b.get("profile_run")
        if pr:
            stopped = pr.get("stopped_early") and (pr.get("pulled") or 0) < r["pulled"]
            note = " (stopped early: the profile covers the first part of the bootstrap)" if stopped else ""
            L += [f"Profiled run{note}: {pr.get('pulled') or 0:,} records in {pr.get('seconds') or 0:.0f} s.", ""]
        L += _profile_block(b.get("profile"), "Client profile")
        L += _sql_block(b.get("sql_breakdown"), "total ms in the profiled run")
    if "incremental" in keys and sc.get("incremental"):
        i = sc["incremental"]
        L += ["### Incremental sync", ""]
        L += _sql_block(i.get("sql_breakdown"), "ms in one profiled run_once")
        L += _profile_block(i.get("profile"))
    if "push" in keys and sc.get("push"):
        L += ["### Push", ""]
        L += _profile_block(sc["push"].get("profile"))
    if keys & {"lists-G", "lists-filter"} and sc.get("lists"):
        li = sc["lists"]
        L += ["### Whole lists (`G`, `/`)", ""]
        for key, label, floor in (("G", "`G`", "G_floor"), ("filter", "`/` key", "filter_floor")):
            x, f = li[key], li[floor]
            if x.get("n") and f.get("n"):
                L.append(f"- {label}: p50 {_ms(x['p50'], 1)} / p95 {_ms(x['p95'], 1)}; the SQL beneath p50 "
                         f"{_ms(f['p50'], 1)} / p95 {_ms(f['p95'], 1)}; the rest is the frame (rows rendered, "
                         "compositing) and the event loop.")
        cf = li.get("filter_count_floor") or {}
        if cf.get("n"):
            L.append(f"- of the `/` SQL, the filtered count over the whole queue: p50 {_ms(cf['p50'], 1)}, "
                     f"p95 {_ms(cf['p95'], 1)}.")
        per = li.get("statements_per") or {}
        if per:
            L.append(f"- SQL statements per action (most seen): `G` {per.get('G')}, `/` key {per.get('filter')}.")
        L.append("")
    if "tui-rss" in keys:
        L += ["### TUI RSS", "", "See the stage table in section 7: the growth per stage shows what holds the memory.", ""]
    if "daemon-cpu" in keys:
        L += ["### Daemon idle CPU", "", "The daemon's loop wakes once a second to check for a sync request.", ""]
