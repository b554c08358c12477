"""screens/ and crm_tui/ import without cycles: a module never reaches back to a module that imports it.

The app imports every screen; screens reach the app through the narrow interface in screens/host.py
(``CrmHost``), so a newcomer can read the modules bottom-up. Imports under ``TYPE_CHECKING`` and
inside functions count: they tie the modules together just the same.
"""

from __future__ import annotations

import grimp
import pytest


def import_cycles(package: str) -> list[list[str]]:
    """Each import cycle inside ``package`` once, as the modules it passes through."""
    graph = grimp.build_graph(package)
    cycles: dict[frozenset[str], list[str]] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycle = [module, *back]
                cycles.setdefault(frozenset(cycle), cycle)
    return list(cycles.values())


@pytest.mark.parametrize("package", ["screens", "crm_tui"])
def test_package_imports_form_no_cycle(package: str) -> None:
    cycles = import_cycles(package)
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_screens_reach_the_app_only_through_its_interface() -> None:
    graph = grimp.build_graph("screens")
    assert graph.find_modules_that_directly_import("screens.app") == set()
