"""Keep glibc from returning and refetching the monitor's large buffers on every POST.

Each records POST makes arrays of 0.2-1.5 MB: the body, the parsed columns and
NumPy temporaries. glibc serves anything at or above its mmap threshold
(128 KiB at start) with a fresh ``mmap`` and unmaps it on free, and trims the
heap back to the kernel once 128 KiB of it are free at the top. Either way the
next POST faults the same pages in again. NumPy only reuses temporaries above
256 KB, so arrays of a 5,000-row POST pay this all the time: ``(a >> 6) & b``
on a 160 KB array took 130-200 µs against 13 µs in place (bench/README.md).

``apply_allocator_tuning`` raises both thresholds at start-up with
``mallopt``: 4 MiB for mmap, 32 MiB for trimming. Fed 5,000-row POSTs at
12,000 records/s, the monitor process used 0.6-1.1 µs less CPU per record
(about a quarter) with the same peak resident memory (bench/README.md). An
operator's own ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` in the
environment wins, and a C library that is not glibc is left alone. This
module must not fail the monitor's start: it reports what it did and nothing
else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Mapping
from typing import Final

# mallopt's parameter numbers, from glibc's malloc.h.
M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
TUNING: Final = {
    # Environment variable glibc reads itself, parameter, value in bytes.
    "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, 4 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": (M_TRIM_THRESHOLD, 32 * 1024 * 1024),
}

Mallopt = Callable[[int, int], int]


def build_allocator_tuning(environ: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """The settings to apply: every one of TUNING the environment does not set already."""
    return {name: setting for name, setting in TUNING.items() if name not in environ}


def find_mallopt() -> Mallopt | None:
    """glibc's ``mallopt``, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def apply_allocator_tuning(environ: Mapping[str, str], mallopt: Mallopt | None) -> list[str]:
    """Apply the tuning the environment leaves open; returns a line for each setting
    saying what was done, for the start-up log."""
    tuning = build_allocator_tuning(environ)
    if mallopt is None:
        return ["allocator tuning skipped: this C library has no mallopt (not glibc)"]
    done = []
    for name, (parameter, value) in tuning.items():
        applied = mallopt(parameter, value) == 1
        state = "set" if applied else "refused by mallopt; glibc's default stays"
        done.append(f"allocator: {name}={value} {state}")
    for name in TUNING.keys() - tuning.keys():
        done.append(f"allocator: {name} from the environment ({environ[name]}) is kept")
    return done
