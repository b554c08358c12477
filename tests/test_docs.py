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


def test_readme_documents_every_crm_server_serve_option():
    from crm_server.cli import serve

    section = README.split("### `crm-server`", 1)[1].split("\n## ", 1)[0]
    for param in serve.params:
        for flag in param.opts:
            if flag.startswith("--"):
                assert f"{flag} " in section or f"{flag}`" in section, flag


def test_the_protocol_doc_states_every_input_limit_with_its_value():
    from crm_server import limits
    from crm_server.serving import MAX_HEADER_BYTES

    doc = (Path(__file__).resolve().parent.parent / "docs" / "sync-protocol.md").read_text()
    for row in (
        f"| request line and headers | {MAX_HEADER_BYTES // 1024} KiB |",
        f"| query string | {limits.MAX_QUERY_BYTES // 1024} KiB |",
        f"| query parameters | {limits.MAX_QUERY_PARAMS} |",
        f"| request body | {limits.MAX_BODY_BYTES // (1024 * 1024)} MiB, declared or streamed |",
        f"| ops per batch | {limits.MAX_BATCH_OPS} |",
        f"| JSON nesting depth of a body | {limits.MAX_JSON_DEPTH} levels |",
        f"| keys per JSON object (fields per op) | {limits.MAX_OBJECT_KEYS} |",
        f"| items per JSON array | {limits.MAX_ARRAY_ITEMS} |",
        f"| length of any JSON string | {limits.MAX_STRING_CHARS:,} characters |",
        f"| length of any JSON object key | {limits.MAX_KEY_CHARS} characters |",
    ):
        assert row in doc, row
