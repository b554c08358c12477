"""CrmApp that keeps every message it showed, for tests to assert on.

Textual drops a notification from its own list once its toast times out, and that list is
private; this subclass overrides the public ``App.notify`` (which every screen's and widget's
``notify`` reaches) and keeps the messages in ``notified``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from screens.app import CrmApp


def _css_paths() -> list[Path]:
    """CrmApp's stylesheets as absolute paths: Textual resolves a relative CSS_PATH against the
    file of the class that is instantiated, which for this subclass is not screens/."""
    declared = CrmApp.CSS_PATH
    paths = [declared] if isinstance(declared, (str, Path)) else list(declared or [])
    home = Path(inspect.getfile(CrmApp)).parent
    return [home / p for p in paths]


class NotifiedCrmApp(CrmApp):
    """The real app; ``notified`` lists the text of every notification, oldest first."""

    CSS_PATH = _css_paths()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notified: list[str] = []

    def notify(self, message: str, **kwargs: Any) -> None:
        self.notified.append(str(message))
        super().notify(message, **kwargs)
