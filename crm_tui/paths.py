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
OWN_CONFIG = "config"  # a data dir's own config dir, when it has one (Paths.resolve)


def config_dir() -> Path:
    return Path(os.environ.get("CRM_TUI_CONFIG_DIR") or platformdirs.user_config_dir(APP))


def default_data_dir() -> Path:
    return Path(os.environ.get("CRM_TUI_DATA_DIR") or platformdirs.user_data_dir(APP))


def default_cache_dir() -> Path:
    return Path(os.environ.get("CRM_TUI_CACHE_DIR") or platformdirs.user_cache_dir(APP))


def default_state_dir() -> Path:
    return Path(os.environ.get("CRM_TUI_STATE_DIR") or platformdirs.user_state_dir(APP))


class DataDirError(Exception):
    """A directory crm-tui must write to cannot be written; the message says which and why."""


@dataclass(frozen=True)
class Paths:
    """Where one replica lives."""

    data_dir: Path
    cache_dir: Path
    config_dir: Path
    state_dir: Path | None = None  # the log's directory; None: the user state dir

    @classmethod
    def resolve(cls, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Paths:
        """Paths for a replica. A given data dir holds its own hot cache and log unless they are
        named too (``--cache-dir``, ``CRM_TUI_STATE_DIR``); and where it carries its own config
        dir (``<data dir>/config``, as `crm-tui demo` leaves it), its login and config come from
        there unless ``CRM_TUI_CONFIG_DIR`` names another."""
        state = Path(os.environ["CRM_TUI_STATE_DIR"]) if os.environ.get("CRM_TUI_STATE_DIR") else None
        config = config_dir()
        if data_dir is not None:
            data = Path(data_dir).expanduser().resolve()
            cache = Path(cache_dir).expanduser().resolve() if cache_dir else data / "hot-cache"
            state = state or data / "log"
            if not os.environ.get("CRM_TUI_CONFIG_DIR") and (data / OWN_CONFIG).is_dir():
                config = data / OWN_CONFIG
        else:
            data = default_data_dir()
            cache = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir()
        return cls(data_dir=data, cache_dir=cache, config_dir=config, state_dir=state)

    @property
    def replica(self) -> Path:
        return self.data_dir / "replica.db"

    @property
    def lock(self) -> Path:
        """Held for the length of one sync run (sync/lock.py)."""
        return self.data_dir / "sync.lock"

    @property
    def daemon_lock(self) -> Path:
        """Held by the sync daemon serving this replica, for its whole life."""
        return self.data_dir / "daemon.lock"

    @property
    def log_file(self) -> Path:
        """Where the details go (rotated): tracebacks, sync runs, the daemon's log."""
        return (self.state_dir or default_state_dir()) / "crm-tui.log"

    @property
    def device_file(self) -> Path:
        """This installation's device id (crm_tui/device.py), made at login."""
        return (self.state_dir or default_state_dir()) / "device-id"

    @property
    def wiped_marker(self) -> Path:
        """Left by a remote wipe (crm_tui/wipe.py) so every process of this replica learns of it."""
        return self.data_dir / "wiped"

    @property
    def credentials(self) -> Path:
        return self.config_dir / "credentials.json"

    @property
    def config_file(self) -> Path:
        return Path(os.environ.get("CRM_TUI_CONFIG") or self.config_dir / "config.toml")

    def ensure(self) -> None:
        """Create the directories (private to the user) if they are missing, and check that
        they can be written. Raises DataDirError naming the directory and what is wrong."""
        for d in (self.data_dir, self.cache_dir):
            try:
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
                # Private to the user: take group and other permissions away, never add any.
                os.chmod(d, os.stat(d).st_mode & 0o700)
            except OSError as exc:
                raise DataDirError(f"cannot use {d}: {exc.strerror or exc}") from None
            if not os.access(d, os.W_OK | os.X_OK):
                raise DataDirError(f"{d} is read-only: syncing and the app need to write there "
                                   "(`crm-tui status` still works)")
