"""The two ways the bench runs: encrypted (the default for users) and plaintext, side by side.

An encrypted variant's replica gets its key the way a machine without a keyring gets it: a key
file beside the replica, wrapped by a passphrase that comes from ``CRM_TUI_PASSPHRASE``. The
passphrase is paid for once per process (scrypt); the figures are SQLCipher's cost per page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

VARIANTS = ("encrypted", "plaintext")
PASSPHRASE = "crm-tui bench passphrase (not a secret)"


def env() -> dict[str, str]:
    """What a crm-tui child process of an encrypted variant needs in its environment."""
    return {"CRM_TUI_PASSPHRASE": PASSPHRASE}


def replica_key(data_dir: str | Path, cfg: dict[str, Any], *, create: bool = False) -> bytes | None:
    """The key of the bench replica in ``data_dir`` (created when ``create``), or None for the
    plaintext variant."""
    if not cfg.get("encrypted"):
        return None
    from crm_tui import replica_key as keys
    from crm_tui.config import SecuritySettings, Settings
    from crm_tui.paths import Paths

    os.environ.update(env())
    data_dir = Path(data_dir)
    paths = Paths(data_dir=data_dir, cache_dir=data_dir / "hot-cache", config_dir=data_dir)
    if create and keys.read_key_info(paths) is None:
        return keys.create(paths, Settings(security=SecuritySettings(key_store="passphrase")))
    return keys.unlock(paths)


def open_replica(path: str | Path, hot_dir: str | Path, cfg: dict[str, Any], **options: Any):
    """The bench replica at ``path`` as this variant opens it."""
    from cache.replica import Replica

    return Replica(path, hot_dir, key=replica_key(Path(path).parent, cfg), **options)
