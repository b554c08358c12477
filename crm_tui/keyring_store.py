"""The OS keyring (through the ``keyring`` library), used only when it is a secure one.

crm-tui keeps two kinds of secret there: each replica's encryption key and each replica's API
token. ``keyring`` will happily fall back to backends that are not secure (a plaintext file from
keyrings.alt, a "fail" or "null" backend); those are never used here: ``secure_backend`` returns
None and the callers ask for a passphrase, refuse, or use a store the user opted into.

Which backend is used is keyring's own choice (its config file, or ``PYTHON_KEYRING_BACKEND``):
that is also how the tests point it at a private Secret Service instead of the developer's.
"""

from __future__ import annotations

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend

SERVICE = "crm-tui"


class KeyringUnavailable(Exception):
    """No secure keyring, or the keyring refused (locked, gone); the message says which."""


def _is_secure(backend: KeyringBackend) -> bool:
    # keyring's own rule for a backend it would recommend; plaintext, fail and null backends all
    # rank below it.
    try:
        return backend.priority >= 1 and not isinstance(backend, ChainerBackend)
    except Exception:  # a backend's viability check can raise anything (no D-Bus, say)
        return False


def secure_backend() -> KeyringBackend | None:
    """The keyring backend secrets go to, or None when no secure one is available."""
    try:
        chosen = keyring.get_keyring()
    except Exception:
        return None
    candidates = chosen.backends if isinstance(chosen, ChainerBackend) else [chosen]
    return next((b for b in candidates if _is_secure(b)), None)


def describe() -> str:
    """A short name of the keyring in use, for messages ("SecretService Keyring", "none")."""
    backend = secure_backend()
    return backend.name if backend is not None else "no secure keyring"


def _backend() -> KeyringBackend:
    backend = secure_backend()
    if backend is None:
        raise KeyringUnavailable("no secure OS keyring is available (Secret Service, KWallet, macOS "
                                 "Keychain or Windows Credential Locker)")
    return backend


def get_secret(name: str) -> str | None:
    """The secret stored under ``name``, or None. Raises KeyringUnavailable."""
    backend = _backend()
    try:
        return backend.get_password(SERVICE, name)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the keyring ({backend.name}) refused: {exc}") from None


def set_secret(name: str, value: str) -> None:
    """Store (or replace) the secret under ``name``. Raises KeyringUnavailable."""
    backend = _backend()
    try:
        backend.set_password(SERVICE, name, value)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the keyring ({backend.name}) refused to store a secret: {exc}") from None


def delete_secret(name: str) -> bool:
    """Forget the secret under ``name``; False if there was none (or no keyring)."""
    backend = secure_backend()
    if backend is None:
        return False
    try:
        backend.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError:
        return False
    return True
