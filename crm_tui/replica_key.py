"""Each encrypted replica's key: a random 256-bit key, kept in the OS keyring, or wrapped by a
passphrase where no secure keyring exists (or the user chose one).

Beside the replica, ``replica-key.json`` says where its key lives. It holds no secret: the name
of the keyring entry, or the scrypt salt and parameters with the AES-GCM-wrapped key. A
passphrase comes from ``CRM_TUI_PASSPHRASE`` (the daemon, scripts) or, in a terminal, a prompt;
a wrong one is told apart from a damaged file. Unlocked keys are kept for the life of the process,
so a replica asks once (the launcher asks before the app starts; its sync worker never prompts).
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from cache.sealing import KEY_BYTES, SealBroken, Sealer
from crm_tui import keyring_store
from crm_tui.config import Settings
from crm_tui.paths import Paths
from crm_tui.private_files import write_private_json

KEY_FILE = "replica-key.json"
PASSPHRASE_ENV = "CRM_TUI_PASSPHRASE"
MIN_PASSPHRASE = 8
# scrypt at 2^15 x 8: about 32 MB and a tenth of a second, paid once per process.
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
PROMPT_TRIES = 3

_unlocked: dict[str, bytes] = {}


class UnlockError(Exception):
    """The replica's key cannot be had (wrong passphrase, no keyring, key missing); the message
    says what to do."""


def key_file(paths: Paths) -> Path:
    return paths.data_dir / KEY_FILE


def read_key_info(paths: Paths) -> dict[str, Any] | None:
    """The replica's key description, or None if it has none (plaintext, or never created)."""
    try:
        info = json.loads(key_file(paths).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UnlockError(f"cannot read {key_file(paths)}: {exc}") from None
    if not isinstance(info, dict) or info.get("store") not in ("keyring", "passphrase"):
        raise UnlockError(f"{key_file(paths)} is not a crm-tui key description")
    return info


def _publish_key_info(paths: Paths, info: dict[str, Any]) -> bool:
    """Write the key file unless one exists; False if another process wrote one first (two
    processes opening a new replica at once must agree on one key)."""
    return write_private_json(key_file(paths), info, exclusive=True)


def _keyring_name(info: dict[str, Any]) -> str:
    return f"replica-key:{info['key_id']}"


def _kek(passphrase: str, info: dict[str, Any]) -> bytes:
    kdf = info["kdf"]
    return Scrypt(salt=base64.b64decode(kdf["salt"]), length=KEY_BYTES, n=kdf["n"], r=kdf["r"],
                  p=kdf["p"]).derive(passphrase.encode())


def _ask(prompt: str) -> str:
    return getpass.getpass(prompt)


def _passphrase_from_env() -> str | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value if value else None


# ---------------------------------------------------------------------------- unlocking


def unlock(paths: Paths, *, interactive: bool = False, ask: Callable[[str], str] = _ask) -> bytes:
    """The key of the encrypted replica at ``paths`` (described by its key file).

    Raises UnlockError when the key file is missing, the keyring lacks the key or is unavailable,
    or the passphrase is missing or wrong."""
    cached = _unlocked.get(str(paths.data_dir))
    if cached is not None:
        return cached
    info = read_key_info(paths)
    if info is None:
        raise UnlockError(f"the replica at {paths.replica} is encrypted but its key description "
                          f"({key_file(paths)}) is missing")
    if info["store"] == "keyring":
        key = _from_keyring(paths, info)
    else:
        key = _from_passphrase(paths, info, interactive, ask)
    _unlocked[str(paths.data_dir)] = key
    return key


def _from_keyring(paths: Paths, info: dict[str, Any]) -> bytes:
    try:
        stored = keyring_store.get_secret(_keyring_name(info))
    except keyring_store.KeyringUnavailable as exc:
        raise UnlockError(f"the key of the replica at {paths.replica} is in the OS keyring, which is not "
                          f"reachable: {exc}") from None
    if not stored:
        raise UnlockError(f"the key of the replica at {paths.replica} is not in the keyring "
                          f"({keyring_store.describe()}); without it the replica cannot be read: move "
                          f"{paths.data_dir} aside and sync a new replica")
    try:
        key = bytes.fromhex(stored)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise UnlockError(f"the keyring entry for the replica at {paths.replica} is not a replica key")
    return key


def _from_passphrase(paths: Paths, info: dict[str, Any], interactive: bool, ask: Callable[[str], str]) -> bytes:
    wrapped = base64.b64decode(info["wrapped_key"])
    context = info["key_id"].encode()
    env = _passphrase_from_env()
    if env is not None:
        try:
            return Sealer(_kek(env, info)).open(wrapped, context)
        except SealBroken:
            raise UnlockError(f"{PASSPHRASE_ENV} is not the passphrase of the replica at {paths.replica}") from None
    if not interactive:
        raise UnlockError(f"the replica at {paths.replica} is protected by a passphrase: set {PASSPHRASE_ENV} "
                          "or run this in a terminal to be asked for it")
    for _ in range(PROMPT_TRIES):
        try:
            return Sealer(_kek(ask(f"Passphrase for the replica at {paths.replica}: "), info)).open(wrapped, context)
        except SealBroken:
            print("crm-tui: wrong passphrase", file=sys.stderr)
    raise UnlockError(f"wrong passphrase for the replica at {paths.replica} ({PROMPT_TRIES} tries)")


# ---------------------------------------------------------------------------- creating


def store_for(settings: Settings) -> str:
    """Where a new key goes under these settings: "keyring" or "passphrase"."""
    choice = settings.security.key_store
    if choice == "auto":
        return "keyring" if keyring_store.secure_backend() is not None else "passphrase"
    return choice


def create(paths: Paths, settings: Settings, *, interactive: bool = False, ask: Callable[[str], str] = _ask,
           store: str | None = None) -> bytes:
    """A new random key for the replica at ``paths``, stored where ``store`` (default: the
    settings) says, with its key file written. Raises UnlockError when it cannot be stored (no
    secure keyring where one is required; no passphrase to wrap it with)."""
    store = store or store_for(settings)
    key = os.urandom(KEY_BYTES)
    info: dict[str, Any] = {"format": 1, "cipher": "sqlcipher4", "store": store, "key_id": uuid.uuid4().hex}
    if store == "keyring":
        try:
            keyring_store.set_secret(_keyring_name(info), key.hex())
        except keyring_store.KeyringUnavailable as exc:
            raise UnlockError(f"cannot keep the replica key in the keyring: {exc}; set "
                              "security.key_store = \"passphrase\" to protect it with a passphrase instead") from None
        info["keyring"] = keyring_store.describe()
    else:
        passphrase = _new_passphrase(paths, interactive, ask)
        info["kdf"] = {"name": "scrypt", **SCRYPT, "salt": base64.b64encode(os.urandom(16)).decode()}
        info["wrapped_key"] = base64.b64encode(Sealer(_kek(passphrase, info)).seal(key, info["key_id"].encode())).decode()
    if not _publish_key_info(paths, info):
        if store == "keyring":
            keyring_store.delete_secret(_keyring_name(info))
        return unlock(paths, interactive=interactive, ask=ask)
    _unlocked[str(paths.data_dir)] = key
    return key


def _new_passphrase(paths: Paths, interactive: bool, ask: Callable[[str], str]) -> str:
    env = _passphrase_from_env()
    if env is not None:
        if len(env) < MIN_PASSPHRASE:
            raise UnlockError(f"{PASSPHRASE_ENV} is shorter than {MIN_PASSPHRASE} characters")
        return env
    if not interactive:
        raise UnlockError(f"no secure OS keyring for the replica key of {paths.data_dir}: set {PASSPHRASE_ENV} "
                          "or run this in a terminal to choose a passphrase (or, knowingly, "
                          "security.encrypt_replica = false)")
    print(f"crm-tui: no secure OS keyring here; the replica at {paths.replica} will be encrypted with a "
          "passphrase you choose (asked once per start; CRM_TUI_PASSPHRASE for the daemon)", file=sys.stderr)
    for _ in range(PROMPT_TRIES):
        first = ask("New passphrase: ")
        if len(first) < MIN_PASSPHRASE:
            print(f"crm-tui: at least {MIN_PASSPHRASE} characters, please", file=sys.stderr)
            continue
        if ask("Same passphrase again: ") != first:
            print("crm-tui: the two did not match", file=sys.stderr)
            continue
        return first
    raise UnlockError("no passphrase chosen")


def forget(paths: Paths) -> None:
    """Drop the process's unlocked copy of this replica's key (the stored key stays)."""
    _unlocked.pop(str(paths.data_dir), None)


def destroy(paths: Paths) -> None:
    """Delete the replica's key everywhere it is kept (keyring entry and key file): whatever was
    encrypted with it becomes unreadable. For a remote wipe, or a replica being thrown away."""
    try:
        info = read_key_info(paths)
    except UnlockError:
        info = None
    if info is not None and info["store"] == "keyring":
        keyring_store.delete_secret(_keyring_name(info))
    key_file(paths).unlink(missing_ok=True)
    forget(paths)
