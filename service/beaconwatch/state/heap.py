"""Give freed heap memory back to the OS after a pair table grows (glibc only).

A table grows by allocating its columns anew and freeing the old ones. glibc raises its mmap
threshold each time a large mmapped block is freed, so the next columns below 32 MB come from
the heap, and the freed copies stay in the process's RSS: at 1M pairs, 437 bytes of RSS per
pair instead of 365. `malloc_trim` returns them. A table grows only log2(max_pairs / 1024)
times, so the trim's few milliseconds do not matter. Elsewhere (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
