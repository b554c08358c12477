"""The README is part of the feature: it documents every binding, every CLI command, every
config key (with its default) and every exit code; the shipped systemd unit fits the daemon."""

from __future__ import annotations

import configparser

from crm_tui import cli as cli_module
from crm_tui.cli import cli
from crm_tui.config import SecuritySettings, Settings, SyncSettings
from screens.keys import all_binding_ids, binding_table
from support.readme import README, ROOT, readme_config_example, readme_exit_codes


def test_readme_lists_every_binding_with_its_default_keys():
    for binding_id, keys, _ in binding_table():
        assert f"| `{binding_id}` | `{keys}` |" in README, binding_id


def test_readme_lists_every_cli_command():
    for name in cli.commands:
        assert f"crm-tui {name}" in README or (name == "app" and "crm-tui [app]" in README), name


def test_readme_config_example_uses_real_keys_and_the_real_defaults():
    example = readme_config_example()
    top = {k for k in example if k not in ("sync", "keymap", "security")}
    assert example["security"] == SecuritySettings().model_dump()  # every security setting, at its default
    assert top <= set(Settings.model_fields), top - set(Settings.model_fields)
    assert set(example["keymap"]) <= set(all_binding_ids()), set(example["keymap"]) - set(all_binding_ids())
    # Every sync setting (every limit) is in the example, with the value it defaults to (a
    # setting that is off by default, like ca_bundle, shows an example value instead).
    assert set(example["sync"]) == set(SyncSettings.model_fields)
    defaults = SyncSettings()
    with_defaults = {k: v for k, v in example["sync"].items() if getattr(defaults, k) is not None}
    for key, value in with_defaults.items():
        assert getattr(defaults, key) == value, key
    for key in top:
        assert Settings.model_fields[key].default == example[key], key
    Settings(**{**example, "sync": with_defaults})  # and it is a valid config as a whole


def test_readme_exit_code_table_matches_the_cli():
    codes = readme_exit_codes()
    assert codes and set(codes) == {0, cli_module.EXIT_FAILED, cli_module.EXIT_USAGE,
                                    cli_module.EXIT_NOT_CONFIGURED, cli_module.EXIT_OFFLINE, cli_module.EXIT_LOCKED,
                                    cli_module.EXIT_WIPED}


def test_the_systemd_unit_restarts_the_daemon_whatever_made_it_wait():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys are case-sensitive
    unit.read(ROOT / "docs" / "systemd" / "crm-tui-sync.service")
    service = unit["Service"]
    assert "crm-tui sync --daemon" in service["ExecStart"]
    assert service["Restart"] in ("on-failure", "always")
    # Exit 3 (not logged in yet) and 5 (another daemon serves, for now) must not leave
    # background sync off for good.
    prevented = service.get("RestartPreventExitStatus", "").split()
    assert str(cli_module.EXIT_LOCKED) not in prevented and str(cli_module.EXIT_NOT_CONFIGURED) not in prevented
    # Exit 6: an admin revoked the device and its data is gone; a restart would only say so again.
    assert str(cli_module.EXIT_WIPED) in prevented
    assert unit["Unit"].get("StartLimitIntervalSec") == "0"


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

    doc = (ROOT / "docs" / "sync-protocol.md").read_text()
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
