"""A private Secret Service for the tests: gnome-keyring on a D-Bus session bus of its own.

    with SecretService(tmp_dir) as service:
        os.environ.update(service.env)     # keyring (in this process and its children) now uses it

It is the same backend a Linux desktop uses (keyring's SecretService backend over D-Bus), so the
tests exercise the real path, and they can never read or write the developer's own keyring: the
bus, the daemon and its keyring files all live under ``tmp_dir`` and die with the fixture.
`make test` installs gnome-keyring and dbus-daemon (the `secret-service` target).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from support.server import stop_process

START_TIMEOUT = 20.0
START_ATTEMPTS = 3
PASSWORD = b"test-login-keyring"


class SecretService:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.env: dict[str, str] = {}
        self._procs: list[subprocess.Popen] = []

    def __enter__(self) -> SecretService:
        # gnome-keyring now and then refuses its very first collection ("Prompt dismissed": the
        # probe came before the unlocked login keyring existed, and a daemon in that state stays
        # so); a fresh bus and daemon in a fresh directory comes up (seen once in a CI run here).
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start(self.directory / f"attempt-{attempt}")
            except RuntimeError:
                if attempt == START_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _start(self, directory: Path) -> SecretService:
        for tool in ("dbus-daemon", "gnome-keyring-daemon"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is missing: `make secret-service` installs it")
        runtime = directory / "run"
        for d in (runtime, directory / "data", directory / "home"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1",
                                f"--address=unix:path={runtime / 'bus'}"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._procs.append(bus)
        address = bus.stdout.readline().strip()  # type: ignore[union-attr]
        if not address:
            self.__exit__()
            raise RuntimeError("the private D-Bus session did not start")
        self.env = {"DBUS_SESSION_BUS_ADDRESS": address, "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}
        daemon_env = {**os.environ, **self.env, "XDG_RUNTIME_DIR": str(runtime),
                      "XDG_DATA_HOME": str(directory / "data"), "HOME": str(directory / "home")}
        keyring = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=daemon_env)
        self._procs.append(keyring)
        keyring.stdin.write(PASSWORD)  # type: ignore[union-attr]
        keyring.stdin.close()  # type: ignore[union-attr]
        self._wait_ready(daemon_env)
        return self

    def _wait_ready(self, env: dict[str, str]) -> None:
        probe = ("import keyring; keyring.get_keyring().set_password('crm-tui-probe', 'p', 'x'); "
                 "assert keyring.get_password('crm-tui-probe', 'p') == 'x'")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=START_TIMEOUT)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                self.__exit__()
                raise RuntimeError(f"the private Secret Service did not come up: {done.stderr.decode()[-300:]}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self._procs):
            stop_process(proc)
        self._procs.clear()
