"""The top-level packages are ours, not the unrelated PyPI distributions called `cache` and `sync`."""

from pathlib import Path

import cache
import crm_server
import crm_tui
import screens
import sync

ROOT = Path(__file__).resolve().parent.parent


def test_top_level_packages_resolve_to_this_project():
    for module in (cache, sync, screens, crm_tui, crm_server):
        assert Path(module.__file__).resolve().parent.parent == ROOT, module.__file__
