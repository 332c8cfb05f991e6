"""How a serving process keeps its memory: the Python objects made at start-up, and the C allocator's freed blocks.

A ``dockyard serve`` worker moves blobs in pieces of about a megabyte (received, hashed, written, sent). glibc's
allocator gives a thread's freed top-of-heap memory back to the kernel as soon as more than 128 KiB is free
(``madvise``), and serves blocks above a threshold that moves with use straight from ``mmap``: each new piece then
touches pages the kernel must hand out and zero again, which costs a page fault per 4 KiB (on a virtual machine
whose balloon driver returned that memory to the host, a trip to the host too). :func:`keep_freed_memory` makes
the allocator keep up to :data:`TRIM_THRESHOLD` of freed memory per heap for the next pieces.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os

log = logging.getLogger("dockyard.server")

#: Freed memory a heap keeps for reuse before it is given back to the kernel (glibc's default: 128 KiB, rising
#: with the mmap threshold). A fill or an upload in flight holds about this much.
TRIM_THRESHOLD = 32 * 1024 * 1024
#: Blocks up to this size come from the heaps (and are reused); larger ones are mapped and unmapped each time.
#: glibc's own ceiling for its moving threshold.
MMAP_THRESHOLD = 32 * 1024 * 1024

# mallopt(3) parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Environment variables through which an operator tunes glibc's allocator; when one is set it is left alone.
_OPERATOR_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def runs_on_glibc() -> bool:
    """Whether this process's C library is glibc (whose allocator :func:`keep_freed_memory` tunes)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # not a GNU system
        return False


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed blocks for reuse (see the module's docstring); whether it was done.

    Nothing is changed on another C library, or when the operator tunes the allocator through its environment
    variables (``GLIBC_TUNABLES``, ``MALLOC_TRIM_THRESHOLD_``, …)."""
    if not runs_on_glibc():
        return False
    if any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1)
    if not done:
        log.debug("the C allocator refused the settings for freed memory; its defaults stay")
    return done


def settle_heap() -> None:
    """Collect what start-up left behind, then keep every object alive now out of the cyclic garbage collector's
    passes (``gc.freeze``): they live as long as the process, and a full collection would otherwise walk all of
    them every few thousand requests (~20 µs per request in B8's profile). Garbage made later is collected as
    before."""
    gc.collect()
    gc.freeze()
