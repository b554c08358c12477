"""Every table of the replica has one owner, in cache/: sync/, crm_tui/ and screens/ call the
replica's parts (``replica.history.start_run``, ``replica.reads.quarantined_count`` ...) and
never run SQL on its connection themselves."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLERS = ("sync", "crm_tui", "screens")
SQL_CALLS = {"execute", "executemany", "executescript"}


def sql_calls(path: Path) -> list[str]:
    """``file:line`` of every ``x.execute(...)``-style call in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS]


def test_only_cache_runs_sql_on_the_replica():
    found = [hit for package in CALLERS for path in sorted((ROOT / package).rglob("*.py")) for hit in sql_calls(path)]
    assert found == []


def test_the_check_sees_sql():
    path = ROOT / "cache" / "history.py"
    assert sql_calls(path), "cache/history.py writes sync_runs: the check must see it"
