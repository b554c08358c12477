"""Client-generated ids: time-ordered, unique without coordination, valid record and op ids."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, sorts like the number


def new_id(prefix: str = "") -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, 26 characters, plus a prefix."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return prefix + "".join(reversed(chars))
