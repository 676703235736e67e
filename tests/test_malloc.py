"""Training keeps freed memory for the next step: large blocks stop faulting in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Blocks the size of a training step's activations (8 frames at 176x256), made and freed in
# rounds as a step does; prints the page faults of each round. Without keep_freed_memory glibc
# faults ~1,800 pages a round in every round here.
ROUNDS = """
import resource, sys
import numpy as np
from edge_fetal.malloc import keep_freed_memory
print(keep_freed_memory())
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [np.ones(size << 20, np.uint8) for size in (24, 3, 24, 1, 12, 24)]
    del blocks
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_step_memory_is_reused_without_page_faults():
    out = subprocess.run([sys.executable, "-c", ROUNDS], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True"
    faults = [int(v) for v in out[1:]]
    assert faults[0] > 1000  # the first round maps its memory in
    assert max(faults[2:]) < 50, faults  # later rounds reuse it
