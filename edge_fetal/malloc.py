"""Keep freed memory in the process instead of handing it back to the kernel: for training
(`edge-fetal train`) and for the engine (`stream`, `demo`, `bench`).

glibc's malloc serves a large block (from 128 kB, a threshold that grows as such blocks are freed,
up to 32 MB) with a fresh memory map and unmaps it when freed; a training step's activations are
such blocks, so every step faults its memory in again page by page (8-28 thousand page faults a
step of 8 frames at 176x256 here). With the threshold fixed at its ceiling and the heap never
trimmed, a step reuses the previous step's memory: no page faults from the fourth step on, and
steps 1-9 % shorter in each of five interleaved pairs of 30-step runs on the 2-core host of
sessions 10-15 (`edge_fetal/train/EXPERIMENTS.md`). Only where blocks go changes, not a number
computed: a run's weights are the same bit for bit.

The engine makes and frees frame-sized arrays at every frame (the captured frame, its grey copy,
the overlay) and gained too: in four interleaved pairs of `edge-fetal bench` runs on that host,
live capture-to-result p50 and p99 lower in all four, frames/s from the mp4 file higher in three
(benchmarks/results/PROFILE.md, fifteenth session).
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_LARGEST_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling on 64-bit systems
_NEVER_TRIM = 2**31 - 1


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep blocks up to 32 MB in its heap and never shrink the heap.

    Returns False, changing nothing, where the C library is not glibc (macOS, musl) or refuses.
    The process keeps its peak memory for its lifetime: meant for a process that trains or streams.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _LARGEST_MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
