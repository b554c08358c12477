"""Record and op ids: what a valid one looks like (for the server, the client and the domain
alike), and client-generated ones (time-ordered, unique without coordination)."""

from __future__ import annotations

import os
import re
import time

# A record id or an op id: 1-64 of letters, digits, underscore and hyphen. ID_PATTERN is the
# JSON-schema form (the protocol's models), ID_RE the compiled one (``\Z``: no trailing newline).
ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
ID_RE = re.compile(ID_PATTERN.removesuffix("$") + r"\Z")

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, sorts like the number


def new_id(prefix: str = "") -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, 26 characters, plus a prefix."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return prefix + "".join(reversed(chars))
