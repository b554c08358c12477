"""Run a REAL BottleCRM (PyPI ``django-crm`` 1.35.0) on loopback, for tests and ``make bottlecrm``.

Nothing here imitates BottleCRM: it is the published package, served by gunicorn, on SQLite with
Celery in-memory and eager (no Redis), configured by a settings module that imports
``crm.settings`` and overrides only what a one-box run needs.

The slow parts are cached outside the repository, keyed by version, under
``${XDG_CACHE_HOME:-~/.cache}/crm-tui-bottlecrm/`` (override: ``CRM_TUI_BOTTLECRM_CACHE``):

* ``venv-1.35.0/`` — a Python >= 3.12 venv with the package (on 3.11 pip silently installs the
  old, different 0.9.0, so the interpreter is looked for: ``CRM_TUI_BOTTLECRM_PYTHON``,
  ``pyenv prefix 3.12``, ``~/.pyenv/versions/3.12*``, ``python3.12``, ``python3.13``);
* ``template-1.35.0/`` — a migrated database (253 migrations) with an admin, an org "Acme" and a
  personal access token for it, made through the real commands and API: ``create_default_admin``,
  ``devlogin``, ``POST /api/org/``, ``POST /api/profile/tokens/``.

The first run takes about 4-5 minutes; later runs copy the template and start in seconds. A
file lock makes parallel test workers wait for one another instead of installing twice.

    with BottleCRMProcess(tmp_path / "bcrm") as bcrm:
        api = bcrm.api()                          # httpx.Client with the token
        acc = bcrm.create("accounts", {"name": "Globex"})

Command line (what ``make bottlecrm`` runs): ``python tests/support/bottlecrm.py [--dir D]``
prints the URL and a token file, and serves until interrupted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

VERSION = "1.35.0"
START_TIMEOUT = 120.0
INSTALL_TIMEOUT = 900.0
MIGRATE_TIMEOUT = 900.0
ADMIN_EMAIL = "admin@example.com"
ORG = "Acme"

SETTINGS = '''"""BottleCRM on one box: SQLite, Celery in memory and eager. Written by tests/support/bottlecrm.py."""
import os

from crm.settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BOTTLECRM_DB"],
                         "OPTIONS": {"timeout": 20}}}
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
'''


class BottleCRMError(RuntimeError):
    """BottleCRM could not be installed or started; the message carries the log's tail."""


def cache_root() -> Path:
    """Where the venv and the template database are kept between runs."""
    if os.environ.get("CRM_TUI_BOTTLECRM_CACHE"):
        return Path(os.environ["CRM_TUI_BOTTLECRM_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "crm-tui-bottlecrm"


def find_python() -> str:
    """A Python >= 3.12 interpreter (django-crm 1.35 needs it). Raises BottleCRMError."""
    candidates: list[str] = []
    if os.environ.get("CRM_TUI_BOTTLECRM_PYTHON"):
        candidates.append(os.environ["CRM_TUI_BOTTLECRM_PYTHON"])
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        prefix = subprocess.run(["pyenv", "prefix", "3.12"], capture_output=True, text=True, timeout=20)
        if prefix.returncode == 0 and prefix.stdout.strip():
            candidates.append(str(Path(prefix.stdout.strip().splitlines()[0]) / "bin" / "python"))
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.1[2-9]*/bin/python"))
    candidates += [w for w in (shutil.which("python3.12"), shutil.which("python3.13")) if w]
    for candidate in candidates:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                                 capture_output=True, text=True, timeout=20)
            if out.stdout.strip() == "True":
                return candidate
    raise BottleCRMError("BottleCRM 1.35 needs Python >= 3.12 and none was found (pyenv install 3.12, or set CRM_TUI_BOTTLECRM_PYTHON)")


@contextlib.contextmanager
def _cache_lock() -> Iterator[Path]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield root
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise BottleCRMError(f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} took longer than {timeout:.0f} s") from exc
    if out.returncode != 0:
        raise BottleCRMError(f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} failed:\n{(out.stderr or out.stdout)[-3000:]}")
    return out.stdout


def ensure_venv() -> Path:
    """The cached venv with django-crm installed (installed once, atomically). Returns its dir."""
    with _cache_lock() as root:
        venv = root / f"venv-{VERSION}"
        if (venv / ".installed").exists():
            return venv
        # Built in place (a venv's scripts name it by absolute path); the stamp marks it complete.
        shutil.rmtree(venv, ignore_errors=True)
        _run([find_python(), "-m", "venv", str(venv)], timeout=120)
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"django-crm=={VERSION}"],
             timeout=INSTALL_TIMEOUT)
        (venv / ".installed").write_text(VERSION)
        return venv


def ensure_template() -> Path:
    """The cached template: a migrated database with admin, org and token (made once)."""
    venv = ensure_venv()
    with _cache_lock() as root:
        template = root / f"template-{VERSION}"
        if (template / "credentials.json").exists():
            return template
        building = root / f"template-{VERSION}.building"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        secret = secrets.token_hex(32)
        (building / "secret").write_text(secret)
        proc = BottleCRMProcess(building, venv=venv, database=building / "db.sqlite3", secret=secret)
        proc.write_settings()
        env = proc.env()
        _run([proc.admin, "migrate", "--noinput", "-v0"], timeout=MIGRATE_TIMEOUT, env=env, cwd=building)
        _run([proc.admin, "create_default_admin"], timeout=120, env=env, cwd=building)
        proc.start()
        try:
            jwt = proc.devlogin()
            created = httpx.post(proc.url + "/api/org/", json={"name": ORG}, headers={"Authorization": f"Bearer {jwt}"}, timeout=30)
            if created.status_code >= 300:
                raise BottleCRMError(f"POST /api/org/ answered {created.status_code}: {created.text[:500]}")
            jwt = proc.devlogin(org=ORG)
            issued = httpx.post(proc.url + "/api/profile/tokens/", json={"name": "crm-tui gateway"},
                                headers={"Authorization": f"Bearer {jwt}"}, timeout=30)
            if issued.status_code >= 300 or not str(issued.json().get("token", "")).startswith("bcrm_pat_"):
                raise BottleCRMError(f"POST /api/profile/tokens/ answered {issued.status_code}: {issued.text[:500]}")
            token = issued.json()["token"]
        finally:
            proc.stop()
        (building / "credentials.json").write_text(json.dumps({"token": token, "admin": ADMIN_EMAIL, "org": ORG}))
        for leftover in ("settings", "__pycache__", "gunicorn.log"):
            shutil.rmtree(building / leftover, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (building / leftover).unlink()
        shutil.rmtree(template, ignore_errors=True)
        building.rename(template)
        return template


class BottleCRMProcess:
    """A BottleCRM served by gunicorn on a free loopback port, over its own copy of the template."""

    def __init__(self, workdir: Path, *, venv: Path | None = None, database: Path | None = None, secret: str | None = None):
        self.workdir = Path(workdir)
        self.venv = venv
        self.database = database
        self.secret = secret
        self.url = ""
        self.token = ""
        self.proc: subprocess.Popen | None = None

    @property
    def admin(self) -> str:
        return str(self.venv / "bin" / "django-admin")

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> BottleCRMProcess:
        self.prepare()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def prepare(self) -> None:
        """Install (cached), copy the template database, write the settings module."""
        template = ensure_template()
        self.venv = self.venv or ensure_venv()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database = self.workdir / "db.sqlite3"
        shutil.copyfile(template / "db.sqlite3", self.database)
        self.secret = (template / "secret").read_text().strip()
        self.token = json.loads((template / "credentials.json").read_text())["token"]
        self.write_settings()

    def write_settings(self) -> None:
        package = self.workdir / "settings"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "bottlecrm_local.py").write_text(SETTINGS)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "settings.bottlecrm_local",
            "PYTHONPATH": str(self.workdir),
            "BOTTLECRM_DB": str(self.database),
            "SECRET_KEY": self.secret or "",
            "DEBUG": "True",
            "ENV_TYPE": "dev",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": secrets.token_urlsafe(16),
        })
        return env

    def start(self) -> None:
        """Start gunicorn and wait until the API answers. Raises BottleCRMError with the log."""
        log_path = self.workdir / "gunicorn.log"
        log = open(log_path, "ab")  # noqa: SIM115 - gunicorn writes to it until stop()
        cmd = [str(self.venv / "bin" / "gunicorn"), "crm.wsgi:application", "--bind", "127.0.0.1:0", "--workers", "2",
               "--timeout", "60", "--no-control-socket", "--error-logfile", "-"]
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env(), stdout=log, stderr=subprocess.PIPE,
                                     start_new_session=True)
        log.close()
        found: list[str] = []

        def read() -> None:
            assert self.proc and self.proc.stderr
            with open(log_path, "ab") as sink:
                for raw in self.proc.stderr:
                    sink.write(raw)
                    sink.flush()
                    match = re.search(rb"Listening at: (http://127\.0\.0\.1:\d+)", raw)
                    if match and not found:
                        found.append(match.group(1).decode())

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not found:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BottleCRMError(f"gunicorn did not start; log:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        self.url = found[0]
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/schema/", timeout=5).status_code < 500:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise BottleCRMError("BottleCRM never answered")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop gunicorn (its whole process group): SIGTERM, then SIGKILL after 10 s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def devlogin(self, org: str | None = None) -> str:
        """A JWT for the admin (``django-admin devlogin``; DEBUG only)."""
        cmd = [self.admin, "devlogin", ADMIN_EMAIL] + (["--org", org] if org else [])
        out = _run(cmd, timeout=120, env=self.env(), cwd=self.workdir)
        match = re.search(r"access_token:\s*(\S+)", out)
        if not match:
            raise BottleCRMError("devlogin printed no access token")
        return match.group(1)

    # ------------------------------------------------------------------ its own API

    def api(self) -> httpx.Client:
        """An httpx.Client on BottleCRM's API with the personal access token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def create(self, module: str, body: dict[str, Any]) -> str:
        """POST /api/{module}/ through BottleCRM's own API; returns the new id."""
        if module in ("cases", "opportunities"):
            body = {"teams": [], "assigned_to": [], "contacts": [], **body}
        if module == "opportunities" and "pipeline" not in body:
            body["pipeline"] = self.default_pipeline()
        with self.api() as c:
            response = c.post(f"/api/{module}/", json=body)
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def patch(self, module: str, record_id: str, body: dict[str, Any]) -> None:
        with self.api() as c:
            response = c.patch(f"/api/{module}/{record_id}/", json=body)
        assert response.status_code == 200, response.text

    def delete(self, module: str, record_id: str) -> None:
        with self.api() as c:
            response = c.delete(f"/api/{module}/{record_id}/")
        assert response.status_code == 200, response.text

    def get(self, module: str, record_id: str) -> dict[str, Any] | None:
        """The record as BottleCRM's detail endpoint returns it (unwrapped), or None on 404."""
        key = {"accounts": "account_obj", "contacts": "contact_obj", "cases": "cases_obj",
               "opportunities": "opportunity_obj"}[module]
        with self.api() as c:
            response = c.get(f"/api/{module}/{record_id}/")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()[key]

    def find(self, module: str, **filters: str) -> list[dict[str, Any]]:
        """Rows of a module's list endpoint (first 500) matching BottleCRM's own filters."""
        keys = {"accounts": [("active_accounts", "open_accounts"), ("closed_accounts", "close_accounts")],
                "contacts": [("results",)], "cases": [("cases",)], "opportunities": [("opportunities",)]}[module]
        with self.api() as c:
            data = c.get(f"/api/{module}/", params={**filters, "limit": 500}).json()
        rows: list[dict[str, Any]] = []
        for path in keys:
            part: Any = data
            for k in path:
                part = part[k]
            rows += part
        return rows

    def default_pipeline(self) -> str:
        with self.api() as c:
            pipelines = c.get("/api/opportunities/pipelines/").json()["pipelines"]
        return next(p for p in pipelines if p.get("is_default"))["id"]


def main(argv: list[str]) -> int:
    """``make bottlecrm``: start one, print how to reach it, serve until Ctrl-C."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Run a real BottleCRM on loopback (cached install).")
    parser.add_argument("--dir", help="working directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="bottlecrm-"))
    print(f"preparing BottleCRM {VERSION} in {workdir} (first run: install and migrate, about 5 minutes) ...", flush=True)
    with BottleCRMProcess(workdir) as bcrm:
        token_file = workdir / "token"
        token_file.write_text(bcrm.token)
        token_file.chmod(0o600)
        print(f"BottleCRM {VERSION} listening on {bcrm.url}", flush=True)
        print(f"personal access token in {token_file}; API schema at {bcrm.url}/schema/", flush=True)
        print("Ctrl-C stops it.", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
