"""The SQLite the replica runs on: SQLCipher's build (``sqlcipher3``), keyed or not.

Every replica connection comes from here, encrypted or plaintext, so the whole client catches one
family of exceptions (``sqlite3.Error`` below is SQLCipher's) and runs one SQLite version. Other
modules write ``from cache.sqlite import sqlite3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3  # sqlcipher3 has no type information; its dbapi2 is the sqlite3 module's API
else:
    from sqlcipher3 import dbapi2 as sqlite3

__all__ = ["PLAINTEXT_HEADER", "connect_keyed", "has_plaintext_header", "sqlite3"]

PLAINTEXT_HEADER = b"SQLite format 3\x00"


def connect_keyed(path: str, key: bytes | None, *, timeout: float, uri: bool = False) -> sqlite3.Connection:
    """A connection to ``path`` (a file: URI with ``uri``) in autocommit mode, keyed with the raw
    256-bit ``key`` (None: plaintext). Raises sqlite3.Error; the key is not checked until the
    first read."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=False, uri=uri)
    # SQLCipher writes its own diagnostics (a wrong key's "hmac check failed") to stderr; the
    # callers turn every failure into one line of their own.
    conn.execute("PRAGMA cipher_log_level = NONE")
    if key is not None:
        # A raw key skips SQLCipher's passphrase KDF: opening a connection stays cheap.
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    return conn


def has_plaintext_header(path: str) -> bool | None:
    """True if the file at ``path`` is a plaintext SQLite database, False if it is not (an
    encrypted one looks like random bytes), None if it is missing or empty."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(PLAINTEXT_HEADER))
    except FileNotFoundError:
        return None
    if not head:
        return None
    return head == PLAINTEXT_HEADER
