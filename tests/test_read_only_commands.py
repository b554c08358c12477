"""A command that only reads (agenda, status) on a data dir that does not exist says so and creates
nothing: no data dir, no log directory beside it (issue 10, "all day in the app")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _crm_tui(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_TUI_")}
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "home" / "config")
    return subprocess.run([sys.executable, "-m", "crm_tui", *args], capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.mark.parametrize(("command", "code"), [(("agenda",), 3), (("agenda", "--json"), 3), (("status",), 0)])
def test_a_read_only_command_on_a_missing_data_dir_creates_nothing(tmp_path, command, code):
    missing = tmp_path / "nonexist" / "x"
    done = _crm_tui(tmp_path, "--data-dir", str(missing), *command)
    assert done.returncode == code, done.stderr
    assert not (tmp_path / "nonexist").exists()
