"""What the README says, parsed, for the tests that hold it to the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def readme_config_example() -> dict:
    """The TOML example of the Configuration section."""
    section = README[README.index("## Configuration"):]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "the Configuration section has no TOML example"
    return tomllib.loads(block.group(1))


def readme_exit_codes() -> dict[int, str]:
    """The exit-code table: code -> meaning."""
    return {int(code): meaning for code, meaning in re.findall(r"^\| `(\d)` \| (.+) \|$", README, re.M)}
