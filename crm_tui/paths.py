"""Every filesystem location crm-tui uses, in one place. Nothing is created at import time.

Defaults follow the platform (XDG on Linux) through platformdirs; each can be overridden by an
environment variable, and ``--data-dir`` moves the replica, hot cache and lock together so several
replicas can live side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "crm-tui"


def config_dir() -> Path:
    return Path(os.environ.get("CRM_TUI_CONFIG_DIR") or platformdirs.user_config_dir(APP))


def default_data_dir() -> Path:
    return Path(os.environ.get("CRM_TUI_DATA_DIR") or platformdirs.user_data_dir(APP))


def default_cache_dir() -> Path:
    return Path(os.environ.get("CRM_TUI_CACHE_DIR") or platformdirs.user_cache_dir(APP))


@dataclass(frozen=True)
class Paths:
    """Where one replica lives."""

    data_dir: Path
    cache_dir: Path
    config_dir: Path

    @classmethod
    def resolve(cls, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Paths:
        """Paths for a replica. A given data dir holds its own hot cache unless one is named too."""
        if data_dir is not None:
            data = Path(data_dir).expanduser().resolve()
            cache = Path(cache_dir).expanduser().resolve() if cache_dir else data / "hot-cache"
        else:
            data = default_data_dir()
            cache = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir()
        return cls(data_dir=data, cache_dir=cache, config_dir=config_dir())

    @property
    def replica(self) -> Path:
        return self.data_dir / "replica.db"

    @property
    def lock(self) -> Path:
        return self.data_dir / "sync.lock"

    @property
    def log(self) -> Path:
        return self.data_dir / "sync.log"

    @property
    def credentials(self) -> Path:
        return self.config_dir / "credentials.json"

    @property
    def config_file(self) -> Path:
        return Path(os.environ.get("CRM_TUI_CONFIG") or self.config_dir / "config.toml")

    def ensure(self) -> None:
        """Create the directories (private to the user) if they are missing."""
        for d in (self.data_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
