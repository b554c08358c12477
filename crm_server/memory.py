"""Giving the memory a burst of requests used back to the operating system.

Python frees a request's objects once it is answered, but glibc's malloc keeps freed pages for
reuse, in one arena per thread that allocated them. Under a burst of large feed pages served
from the thread pool the server's RSS rose to its peak and stayed there. Two arenas and a
``malloc_trim`` every few seconds hand the freed pages back. Without glibc (macOS, musl) both
are no-ops: those allocators return memory on their own terms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger("crm_server.memory")

M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h
ARENAS = 2
TRIM_EVERY = 10.0  # seconds


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    return libc


def keep_memory_returnable(stop: threading.Event) -> None:
    """Cap malloc's arenas, then trim freed memory every TRIM_EVERY seconds until ``stop`` is set.

    Call it before the request threads start (the arena cap only binds threads created after it).
    The trimming runs in a daemon thread: it never delays a request.
    """
    libc = _glibc()
    if libc is None:
        return
    libc.mallopt(M_ARENA_MAX, ARENAS)

    def trim() -> None:
        while not stop.wait(TRIM_EVERY):
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()
    log.debug("malloc: %d arenas, trimmed every %.0f s", ARENAS, TRIM_EVERY)
