"""How `crm-server serve` says it is ready, and how a parent process waits for it.

``serve`` prints one line, ``listening on URL``, once its socket accepts connections; with
``--port 0`` that line is the only way to learn the port. The demo, the test fixtures and the
benchmark start the server as a child process and read it with :func:`wait_for_url`. Nothing
here imports the server itself.
"""

from __future__ import annotations

import subprocess
import threading

PREFIX = "listening on "


def announcement(url: str) -> str:
    """The line ``serve`` prints once it is ready at ``url``."""
    return PREFIX + url


def wait_for_url(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float) -> str | None:
    """The URL a ``crm-server serve`` child (started with ``stdout=PIPE``) announced, or None if
    it said something else, closed its output or said nothing within ``timeout`` seconds. The
    child is left running either way: stopping it is the caller's."""
    line: list[str | bytes] = []
    if proc.stdout is None:
        raise ValueError("the server's stdout must be a pipe (stdout=subprocess.PIPE)")
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line:
        return None
    text = line[0].decode() if isinstance(line[0], bytes) else line[0]
    text = text.strip()
    return text.removeprefix(PREFIX) if text.startswith(PREFIX) else None
