"""Writing a choice made in the app back to the user's config file, keeping their comments.

Only the app's own preferences are written (the theme); everything else in the file stays as
the user wrote it, byte for byte.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from crm_tui.config import ConfigError


def set_value(path: Path, key: str, value: Any) -> None:
    """Set the top-level ``key`` to ``value`` in the TOML file at ``path`` (created if missing),
    atomically (a crash leaves the old file or the new one). Raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        document = tomlkit.parse(text)
        document[key] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(tomlkit.dumps(document))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, TOMLKitError) as exc:
        raise ConfigError(f"cannot save {key} to {path}: {exc}") from None
