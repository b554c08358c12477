"""This installation's device id: a random name the client sends with every request
(``X-CRM-Device``), so an admin can see a user's devices and revoke a lost one
(`crm-server user revoke-device`; docs/security.md, "Remote wipe").

It is made at login (or at the first sync of a replica logged in before devices existed) and kept
in the state dir; a remote wipe deletes it, and the next login makes a new one.
"""

from __future__ import annotations

import os
import re
import secrets
import socket

from crm_tui.paths import Paths

DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def device_id(paths: Paths, *, create: bool = True) -> str | None:
    """The device id of this installation; a new one is made (and kept) when there is none
    and ``create`` is true. None when there is none and it may not (or cannot) be made."""
    path = paths.device_file
    try:
        found = path.read_text().strip()
    except OSError:
        found = ""
    if DEVICE_RE.match(found):
        return found
    if not create:
        return None
    new = "dev-" + secrets.token_hex(16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if found:
            path.unlink(missing_ok=True)  # a damaged one
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new + "\n")
        try:
            os.link(tmp, path)  # fails if another process made one first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()
    except OSError:
        return None  # a read-only state dir: requests go without a device id


def device_name() -> str:
    """What an admin sees next to the id in `crm-server user devices`: the host's name."""
    return socket.gethostname()[:64] or "unknown host"
