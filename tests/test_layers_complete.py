"""The layers contract names the crm_tui/ shell's modules one by one (pyproject.toml): a module
left out of it would be checked by no layer at all, so every one must be named, and only once."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layer_contract() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return contract["layers"]


def test_every_shell_module_is_in_exactly_one_layer() -> None:
    named: list[str] = []
    for layer in layer_contract():
        named += [m.strip() for m in layer.split(":") if m.strip().startswith("crm_tui.")]
    shell = sorted(f"crm_tui.{p.stem}" for p in (ROOT / "crm_tui").glob("*.py") if p.stem != "__init__")
    assert sorted(m for m in named if m != "crm_tui.core") == shell


def test_the_layers_run_from_commands_down_to_the_kernel() -> None:
    layers = layer_contract()
    assert layers[0].split(":")[0].strip() == "crm_tui.__main__"
    assert layers[1:3] == ["screens", "sync"]
    assert layers[4:] == ["cache", "crm_tui.core"]
