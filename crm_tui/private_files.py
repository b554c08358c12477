"""Small private files (0600) written whole or not at all: the stored logins, a replica's key file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_private_json(path: Path, data: Any, *, exclusive: bool = False) -> bool:
    """Write ``data`` as JSON to ``path`` (0600, its directory 0700 if new), atomically and synced.

    With ``exclusive`` an existing file is left alone and False is returned (two processes creating
    the same file agree on the first one); otherwise the file is replaced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)
