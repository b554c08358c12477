"""No package of the client imports itself in a loop: within each package the modules form a
layered graph, so a reader can start at the bottom (``cache/store.py``, ``sync/errors.py``) and
read upwards, and a part is handed what it needs instead of importing its owner back.

Imports under ``if TYPE_CHECKING:`` count: a loop a reader has to follow is a loop.
"""

from __future__ import annotations

import grimp
import pytest

# The packages whose module graph must stay acyclic. screens/: the app imports every screen; the
# screens reach the app through the narrow interface in screens/host.py (``CrmHost``).
ACYCLIC = ("cache", "sync", "crm_tui", "screens")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ACYCLIC)


def find_cycle(graph: grimp.ImportGraph, package: str) -> list[str] | None:
    """One import loop among ``package``'s modules (each importing the next, the last the
    first), or None when they form no loop."""
    modules = {package, *graph.find_descendants(package)}
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    done: set[str] = set()
    for start in sorted(modules):
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            module, i = stack.pop()
            if i == 0:
                path.append(module)
                on_path.add(module)
            if i < len(edges[module]):
                stack.append((module, i + 1))
                nxt = edges[module][i]
                if nxt in on_path:
                    return path[path.index(nxt):]
                if nxt not in done:
                    stack.append((nxt, 0))
            else:
                path.pop()
                on_path.discard(module)
                done.add(module)
    return None


@pytest.mark.parametrize("package", ACYCLIC)
def test_a_package_s_modules_import_each_other_in_no_loop(graph, package):
    cycle = find_cycle(graph, package)
    assert cycle is None, f"{package}/ has an import loop: {' -> '.join([*cycle, cycle[0]])}"


def test_screens_reach_the_app_only_through_its_interface(graph):
    importers = graph.find_modules_that_directly_import("screens.app")
    assert {m for m in importers if m.startswith("screens.")} == set()


def test_the_loop_finder_finds_a_loop_and_only_a_loop():
    g = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        g.add_module(module)
    g.add_import(importer="pkg.a", imported="pkg.b")
    g.add_import(importer="pkg.b", imported="pkg.c")
    assert find_cycle(g, "pkg") is None
    g.add_import(importer="pkg.c", imported="pkg.a")
    assert sorted(find_cycle(g, "pkg")) == ["pkg.a", "pkg.b", "pkg.c"]
