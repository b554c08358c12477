"""Layered settings: defaults < config file < CRM_TUI_* environment < explicit values."""

from __future__ import annotations

import pytest

from crm_tui.config import ConfigError, load_settings


def test_file_then_environment_then_overrides(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('theme = "nord"\n[sync]\ninterval = 5\npage_size = 100\n[keymap]\n"app.search" = "f2"\n')
    monkeypatch.setenv("CRM_TUI_SYNC__INTERVAL", "7")
    settings = load_settings(path)
    assert (settings.theme, settings.sync.interval, settings.sync.page_size) == ("nord", 7.0, 100)
    assert settings.keymap == {"app.search": "f2"}
    assert load_settings(path, theme="gruvbox").theme == "gruvbox"


def test_missing_file_means_defaults(tmp_path):
    settings = load_settings(tmp_path / "nope.toml")
    assert settings.sync.batch_size == 500 and settings.server is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [("[sync]\ninterval = 'soon'\n", "sync.interval"), ("theme = \n", "cannot read"), ("colour = 1\n", "colour")],
)
def test_bad_files_name_the_problem(tmp_path, text, needle):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert needle in str(err.value) and str(path) in str(err.value)
