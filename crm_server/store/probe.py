"""What a piece of work costs the database: statements run and rows examined.

    with probe(store) as cost:
        pull_changes(store, user_id, cursor, 2000)
    cost.statements, cost.rows_examined

Only read transactions opened by this thread inside the block are counted (a feed page is one).
PostgreSQL: every statement is run again under ``EXPLAIN ANALYZE`` (in a new snapshot, after the
block) and the rows its scan nodes read, kept or filtered out, are added up. SQLite has no row
counter: ``rows_examined`` counts its virtual machine steps instead (a B-tree seek is one step
whatever the table's size, so like rows it grows with what is read, not with what is stored).
Used by the tests of a rep's feed cost and by ``bench/feed_scope.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from crm_server.store.base import Store

SCAN_NODES = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan"}


@dataclass
class Meter:
    """Filled by a store's read transactions while it is installed (see ``Store.metered``)."""

    statements: list[tuple[str, Any]] = field(default_factory=list)
    steps: int = 0


@dataclass
class Cost:
    statements: int = 0
    rows_examined: int = 0
    details: list[tuple[int, str]] = field(default_factory=list, repr=False)  # (rows, statement) on PostgreSQL

    def explain(self) -> str:
        """Rows examined per statement, one line each (PostgreSQL), for a failure message."""
        return "\n".join(f"{rows:>8} {sql[:160]}" for rows, sql in self.details)


def scan_rows(plan: dict) -> int:
    """Rows read by the scan nodes of an ``EXPLAIN (ANALYZE, FORMAT JSON)`` plan node and its
    children: rows kept plus rows removed by filters, over every loop."""
    total = 0
    if plan.get("Node Type") in SCAN_NODES:
        per_loop = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        per_loop += plan.get("Rows Removed by Index Recheck", 0)
        total += round(per_loop * plan.get("Actual Loops", 1))
    for child in plan.get("Plans", ()):
        total += scan_rows(child)
    return total


def relations(plan: dict) -> set[str]:
    """The tables (and partitions) a query plan reads."""
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for child in plan.get("Plans", ()):
        found |= relations(child)
    return found


@contextmanager
def probe(store: Store) -> Iterator[Cost]:
    """Count the statements and rows examined by the reads of this thread inside the block."""
    cost = Cost()
    with store.metered() as meter:
        yield cost
    selects = [(sql, params) for sql, params in meter.statements if sql.lstrip().upper().startswith("SELECT")]
    cost.statements = len(selects)
    if store.backend == "postgresql":
        plans = store.plans(selects, analyze=True)  # type: ignore[attr-defined]
        cost.details = [(scan_rows(p["Plan"]), sql) for (sql, _), p in zip(selects, plans, strict=True)]
        cost.rows_examined = sum(rows for rows, _ in cost.details)
    else:
        cost.rows_examined = meter.steps
