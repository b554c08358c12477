"""The README is part of the feature: it documents every binding and every CLI command."""

from __future__ import annotations

from pathlib import Path

from crm_tui.cli import cli
from screens.keys import binding_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_lists_every_binding_with_its_default_keys():
    for binding_id, keys, _ in binding_table():
        assert f"| `{binding_id}` | `{keys}` |" in README, binding_id


def test_readme_lists_every_cli_command():
    for name in cli.commands:
        assert f"crm-tui {name}" in README or (name == "app" and "crm-tui [app]" in README), name
