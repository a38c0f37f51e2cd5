"""Giving freed heap memory back to the system, for the long-running workbench.

Every read hands the engine a fresh bytes object (up to 256 KiB), the display
store keeps some of them for a while, and Textual allocates many small objects
in between. glibc's allocator serves such buffers from the main heap and can
only shrink the heap from its top, so after hours of churn the freed holes in the
middle stay resident: in a 10-minute soak (`benchmarks/soak.py`) the workbench's
`[heap]` grew in steps from 128 to 182 MiB while what Python held stayed flat.
`malloc_trim(0)` returns those free pages to the kernel (glibc 2.8+ releases
whole free pages anywhere in the heap, not only at its top).

Only on glibc; elsewhere (macOS, musl without the call) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Callable

TRIM_SECONDS = 30.0
"""How often the workbench trims: a trim of a fragmented 200 MiB heap takes a few
milliseconds, which a person does not notice twice a minute."""


def _load_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def can_release() -> bool:
    """True where `release_free_memory` can do anything (glibc)."""
    return _malloc_trim is not None


def release_free_memory() -> bool:
    """Return the heap's free pages to the kernel; True if any memory was released."""
    if _malloc_trim is None:
        return False
    return bool(_malloc_trim(0))
