"""Where `crm-tui login` keeps the server URL and token: a 0600 JSON file in the config dir,
one entry per replica (data dir), so several accounts can live side by side.

The token is never logged and never put on a child process's command line. ``CRM_TUI_TOKEN``
and ``CRM_TUI_SERVER`` override the file (for CI and service units).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from crm_tui.paths import Paths


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str

    def __repr__(self) -> str:  # never print the token by accident
        return f"Credentials(server={self.server!r}, token='***')"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(paths: Paths) -> Credentials | None:
    """The credentials for this replica, the environment winning over the file."""
    entry = _read(paths.credentials).get(str(paths.data_dir), {})
    server = os.environ.get("CRM_TUI_SERVER") or entry.get("server")
    token = os.environ.get("CRM_TUI_TOKEN") or entry.get("token")
    if not server or not token:
        return None
    return Credentials(server=server, token=token)


def save(paths: Paths, creds: Credentials) -> Path:
    """Store the credentials for this replica; the file is created 0600 and replaced atomically."""
    paths.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _read(paths.credentials)
    data[str(paths.data_dir)] = {"server": creds.server, "token": creds.token}
    fd, tmp = tempfile.mkstemp(dir=paths.config_dir, prefix=".credentials-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, paths.credentials)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return paths.credentials


def forget(paths: Paths) -> bool:
    data = _read(paths.credentials)
    if data.pop(str(paths.data_dir), None) is None:
        return False
    fd, tmp = tempfile.mkstemp(dir=paths.config_dir, prefix=".credentials-")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, paths.credentials)
    return True
