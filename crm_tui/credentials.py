"""Where `crm-tui login` keeps the server URL and token, one entry per replica (data dir), so
several accounts can live side by side.

The server URL lives in ``credentials.json`` (0600, config dir). The token lives in the OS
keyring; only where the user opts in (``security.token_store = "file"``) does it sit in that
0600 file. A token found in the file without that opt-in (written by an older crm-tui) is moved
into the keyring on first use, and the user is told; where no secure keyring exists it is used
with a warning, never silently. ``save`` replaces a stored token in place, wherever it lives, so
a renewed token needs no new login.

The token is never logged and never put on a child process's command line. ``CRM_TUI_TOKEN``
and ``CRM_TUI_SERVER`` override what is stored (for CI and service units).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_tui import keyring_store
from crm_tui.paths import Paths
from crm_tui.private_files import write_private_json

STORES = ("keyring", "file")


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str
    # Where the token came from: "keyring", "file", "env" (CRM_TUI_TOKEN) or "" (not stored yet).
    store: str = ""

    def __repr__(self) -> str:  # never print the token by accident
        return f"Credentials(server={self.server!r}, token='***', store={self.store!r})"


class TokenUnavailable(Exception):
    """The token is in the keyring and the keyring cannot be reached (or refused)."""


def _say(message: str) -> None:
    print(f"crm-tui: {message}", file=sys.stderr)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(paths: Paths, data: dict[str, Any]) -> None:
    write_private_json(paths.credentials, data)


def _secret_name(paths: Paths) -> str:
    return f"api-token:{paths.data_dir}"


def load(paths: Paths, *, notify: Callable[[str], None] = _say) -> Credentials | None:
    """The credentials for this replica, the environment winning over what is stored.

    Moves a token an older crm-tui left in the file into the keyring (``notify`` says so).
    Raises TokenUnavailable when the token is in a keyring that cannot be reached."""
    entry = _read(paths.credentials).get(str(paths.data_dir), {})
    server = os.environ.get("CRM_TUI_SERVER") or entry.get("server")
    if not server:
        return None
    if os.environ.get("CRM_TUI_TOKEN"):
        return Credentials(server=server, token=os.environ["CRM_TUI_TOKEN"], store="env")
    store = entry.get("token_store")
    if entry.get("token"):
        if store == "file":
            return Credentials(server=server, token=entry["token"], store="file")
        return _migrate(paths, server, entry["token"], notify)
    if store != "keyring":
        return None
    try:
        token = keyring_store.get_secret(_secret_name(paths))
    except keyring_store.KeyringUnavailable as exc:
        raise TokenUnavailable(f"the API token for {paths.data_dir} is in the OS keyring, which is not reachable "
                               f"({exc}); set CRM_TUI_TOKEN, or log in again") from None
    return Credentials(server=server, token=token, store="keyring") if token else None


def _migrate(paths: Paths, server: str, token: str, notify: Callable[[str], None]) -> Credentials:
    """A token an older crm-tui kept in the file: into the keyring if there is a secure one."""
    if keyring_store.secure_backend() is None:
        notify(f"WARNING: the API token for {paths.data_dir} is stored in plaintext in {paths.credentials} and "
               "there is no secure OS keyring to move it to; to keep it there knowingly, log in again with "
               "security.token_store = \"file\"")
        return Credentials(server=server, token=token, store="file")
    try:
        keyring_store.set_secret(_secret_name(paths), token)
    except keyring_store.KeyringUnavailable as exc:
        notify(f"WARNING: could not move the API token into the keyring ({exc}); it stays in {paths.credentials}")
        return Credentials(server=server, token=token, store="file")
    data = _read(paths.credentials)
    data[str(paths.data_dir)] = {"server": server, "token_store": "keyring"}
    _write(paths, data)
    notify(f"moved the API token for {paths.data_dir} from {paths.credentials} into the OS keyring "
           f"({keyring_store.describe()})")
    return Credentials(server=server, token=token, store="keyring")


def save(paths: Paths, creds: Credentials, *, store: str | None = None) -> str:
    """Store the credentials for this replica and say where the token went.

    ``store`` is "keyring" or "file" (0600); None keeps the store this replica's token already
    uses (how a renewed token replaces the old one), else the keyring. Raises
    keyring_store.KeyringUnavailable when the keyring is wanted and there is no secure one."""
    data = _read(paths.credentials)
    old = data.get(str(paths.data_dir), {})
    store = store or (old.get("token_store") if old.get("token_store") in STORES else "keyring")
    if store == "keyring":
        keyring_store.set_secret(_secret_name(paths), creds.token)
        data[str(paths.data_dir)] = {"server": creds.server, "token_store": "keyring"}
        where = f"the OS keyring ({keyring_store.describe()})"
    else:
        keyring_store.delete_secret(_secret_name(paths))
        data[str(paths.data_dir)] = {"server": creds.server, "token": creds.token, "token_store": "file"}
        where = f"{paths.credentials} (0600, security.token_store = \"file\")"
    _write(paths, data)
    return where


def forget(paths: Paths) -> bool:
    """Forget this replica's server and token (the keyring entry too); False if none was stored."""
    data = _read(paths.credentials)
    entry = data.pop(str(paths.data_dir), None)
    in_keyring = keyring_store.delete_secret(_secret_name(paths))
    if entry is None:
        return in_keyring
    _write(paths, data)
    return True
