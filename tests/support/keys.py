"""A fixed replica key for tests that build a replica directly (without `open_replica`), so
they run encrypted like every real replica; and a look at a file's raw bytes."""

from __future__ import annotations

from pathlib import Path

TEST_KEY = bytes(range(32))


def raw_bytes_under(path: Path) -> bytes:
    """Every byte of every file at or under ``path`` (a file or a directory)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return b"".join(p.read_bytes() for p in files)
