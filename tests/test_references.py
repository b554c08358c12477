"""References in the docs, the README, docstrings and comments point at something that exists.

A newcomer follows "see sync-contract promise 7" or "lives in tests/e2e/" to learn the code;
a reference that points nowhere sends them hunting. Two kinds are checked:

* every "sync-contract promise N" (also "sync contract N", "promises N, M") names a promise that
  docs/sync-contract.md defines;
* every repository path named in prose (``cache/outbox.py``, ``tests/e2e/``, ``docs/*.md``)
  exists in the repository.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "sync-contract.md"
PACKAGES = ("cache", "sync", "crm_tui", "screens", "crm_server", "bench", "tests")
TOP_DIRS = (*PACKAGES, "docs", "deploy", ".ci")
SKIP_DIRS = {"__snapshots__", "__pycache__", ".venv", ".git"}

NUMBERS = r"(\d+(?:\s*(?:[-–]|,|and|or)\s*\d+)*)"
CONTRACT_REF = re.compile(
    r"(?i)\b(?:sync[- ]contract\s+(?:promises?\s+)?|(?<![\w-])promises?\s+)" + NUMBERS)
# A path into the repository: a top-level directory of ours, then at least one more part.
PATH_REF = re.compile(r"(?<![\w./~$-])((?:" + "|".join(re.escape(d) for d in TOP_DIRS)
                      + r")/[\w.*-]+(?:/[\w.*-]+)*/?)")
# A markdown file named on its own (DESIGN.md, sync-protocol.md), outside a link target.
MD_REF = re.compile(r"(?<![\w.-])([\w-]+\.md)\b")


def _sources() -> list[Path]:
    """Every file whose prose a reader follows: the README, docs/, and our Python sources."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
                found.append(path)
    return [p for p in found if p.is_file() and p != Path(__file__).resolve()]


def _numbers(text: str) -> set[int]:
    """``1-2`` -> {1, 2}; ``5, 6 and 7`` -> {5, 6, 7}."""
    out: set[int] = set()
    for part in re.split(r"\s*(?:,|and|or)\s*", text):
        ends = [int(n) for n in re.split(r"\s*[-–]\s*", part) if n]
        out.update(range(ends[0], ends[-1] + 1))
    return out


def defined_promises() -> set[int]:
    """The numbers docs/sync-contract.md defines (its numbered list items)."""
    return {int(m) for m in re.findall(r"(?m)^(\d+)\. \*\*", CONTRACT.read_text())}


def test_the_contract_numbers_its_promises_without_gaps():
    promises = defined_promises()
    assert promises == set(range(1, max(promises) + 1))
    assert len(promises) >= 10


def test_every_contract_reference_names_a_promise_that_exists():
    promises = defined_promises()
    bad = []
    for path in _sources():
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for match in CONTRACT_REF.finditer(line):
                missing = _numbers(match.group(1)) - promises
                if missing:
                    bad.append(f"{path.relative_to(ROOT)}:{lineno}: {match.group(0)!r}")
    assert not bad, "references to promises docs/sync-contract.md does not define:\n" + "\n".join(bad)


def test_promise_references_in_code_say_where_the_contract_is():
    """Whoever reads "promise 4" in a docstring can find it: the file names docs/sync-contract.md."""
    bad = []
    for path in _sources():
        text = path.read_text()
        if path.suffix == ".py" and CONTRACT_REF.search(text) and "docs/sync-contract.md" not in text:
            bad.append(str(path.relative_to(ROOT)))
    assert not bad, bad


@functools.cache
def _generated() -> list[str]:
    """Directories .gitignore names under our top-level directories (bench/data/ ...): made by
    running something, so a reference to them is fine while they do not exist yet."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return [line.rstrip("/") for line in lines if line.startswith(tuple(f"{d}/" for d in TOP_DIRS))]


def _exists(ref: str) -> bool:
    ref = ref.rstrip("/.")
    if any(ref == g or ref.startswith(g + "/") for g in _generated()):
        return True
    if "*" in ref:
        return any(ROOT.glob(ref))
    return (ROOT / ref).exists()


@functools.cache
def _names_in_repository() -> frozenset[str]:
    """The name of every file and directory anywhere under ROOT: what ``ROOT.glob("**/NAME")``
    finds, walked once instead of once per reference."""
    names: set[str] = set()
    for _parent, dirs, files in os.walk(ROOT):
        names.update(dirs)
        names.update(files)
    return frozenset(names)


def test_every_repository_path_named_in_prose_exists():
    bad = []
    for path in _sources():
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for match in PATH_REF.finditer(line):
                if not _exists(match.group(1)):
                    bad.append(f"{path.relative_to(ROOT)}:{lineno}: {match.group(1)}")
            for match in MD_REF.finditer(line):
                name = match.group(1)
                if name not in _names_in_repository():
                    bad.append(f"{path.relative_to(ROOT)}:{lineno}: {name}")
    assert not bad, "paths that do not exist in the repository:\n" + "\n".join(bad)
