"""Profiles for the "what bounds it" sections: pyinstrument call trees (full profiles saved to
bench/profiles/), and a per-statement SQL timer for code that spends its time inside SQLite,
where a Python profiler only shows ``Connection.execute``."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from bench.procs import ROOT

PROFILES = ROOT / "bench" / "profiles"


class Profile:
    """``with Profile("search") as p: ...`` then ``p.result``: paths of the saved profiles and the
    top of the call tree and of the self-time list, as text for RESULTS.md."""

    def __init__(self, name: str, interval: float = 0.001, tree_lines: int = 40, threshold: float = 0.02):
        from pyinstrument import Profiler

        self.name = name
        self.profiler = Profiler(interval=interval, async_mode="disabled")
        self.tree_lines = tree_lines
        self.threshold = threshold
        self.result: dict[str, Any] = {}

    def __enter__(self) -> Profile:
        self.profiler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.profiler.stop()
        self.result = save(self.profiler, self.name, self.tree_lines, self.threshold)


def save(profiler: Any, name: str, tree_lines: int = 40, threshold: float = 0.02) -> dict[str, Any]:
    PROFILES.mkdir(parents=True, exist_ok=True)
    html = PROFILES / f"{name}.html"
    txt = PROFILES / f"{name}.txt"
    html.write_text(profiler.output_html())
    full = profiler.output_text(unicode=True, color=False, show_all=False)
    txt.write_text(full)
    tree = profiler.output_text(unicode=True, color=False, time="percent_of_total",
                                processor_options={"filter_threshold": threshold})
    flat = profiler.output_text(unicode=True, color=False, flat=True, flat_time="self", time="percent_of_total")
    session = profiler.last_session
    return {
        "html": str(html.relative_to(ROOT)),
        "txt": str(txt.relative_to(ROOT)),
        "duration": session.duration if session else None,
        "cpu_time": getattr(session, "cpu_time", None) if session else None,
        "tree": _trim(tree, tree_lines),
        "self_top": _trim(flat, 16),
    }


def _trim(text: str, n: int) -> str:
    lines = [ln.rstrip() for ln in text.splitlines()]
    # Drop pyinstrument's banner (the ASCII logo and the recorded/samples lines).
    start = next((i for i, ln in enumerate(lines) if re.match(r"^\s*\d+(\.\d+)?%?\s", ln)), 0)
    body = [ln for ln in lines[start:] if ln.strip()]
    if len(body) > n:
        body = [*body[:n], f"… ({len(body) - n} more lines in the saved profile)"]
    return "\n".join(body)


# ---------------------------------------------------------------------------- SQL timing

_WS = re.compile(r"\s+")
_MARKS = re.compile(r"\((?:\?\s*,\s*)+\?\)")


def _norm(sql: str) -> str:
    return _MARKS.sub("(?, …)", _WS.sub(" ", sql).strip())


class SqlTimer:
    """Wraps a sqlite3.Connection; times every statement including the fetching of its rows."""

    def __init__(self, conn: Any):
        self._conn = conn
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _add(self, sql: str, seconds: float) -> None:
        s = self.stats[_norm(sql)]
        s[0] += 1
        s[1] += seconds

    def execute(self, sql: str, params: Any = ()) -> _TimedCursor:
        t = time.perf_counter()
        cur = self._conn.execute(sql, params)
        return _TimedCursor(cur, self, sql, time.perf_counter() - t)

    def executemany(self, sql: str, rows: Any) -> Any:
        t = time.perf_counter()
        cur = self._conn.executemany(sql, rows)
        self._add(sql, time.perf_counter() - t)
        return cur

    def reset(self) -> None:
        self.stats.clear()

    def top(self, n: int = 8, per: int = 1) -> list[dict[str, Any]]:
        """The statements that took longest in total (ms per call of the measured operation)."""
        rows = sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:n]
        return [{"sql": sql[:220], "calls": c / per, "ms": t * 1000 / per} for sql, (c, t) in rows]


class _TimedCursor:
    def __init__(self, cur: Any, timer: SqlTimer, sql: str, spent: float):
        self._cur, self._timer, self._sql = cur, timer, sql
        self._timer._add(sql, spent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def _timed(self, fn: Any, *a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            self._timer.stats[_norm(self._sql)][1] += time.perf_counter() - t

    def fetchone(self) -> Any:
        return self._timed(self._cur.fetchone)

    def fetchall(self) -> Any:
        return self._timed(self._cur.fetchall)

    def fetchmany(self, *a: Any) -> Any:
        return self._timed(self._cur.fetchmany, *a)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def instrument_replica(replica: Any) -> SqlTimer:
    """Route every part of a Replica through one SqlTimer (bench-only instrumentation)."""
    timer = SqlTimer(replica.conn)
    replica.conn = timer
    for part in ("reads", "search", "writes", "outbox", "pull"):
        obj = getattr(replica, part, None)
        if obj is not None and hasattr(obj, "conn"):
            obj.conn = timer
    return timer


def uninstrument_replica(replica: Any, timer: SqlTimer) -> None:
    replica.conn = timer._conn
    for part in ("reads", "search", "writes", "outbox", "pull"):
        obj = getattr(replica, part, None)
        if obj is not None and getattr(obj, "conn", None) is timer:
            obj.conn = timer._conn
