"""This machine's measured fp32 peak: the best of a few large square matmuls, on `threads` threads.

The achieved GFLOP/s of each variant is reported as a fraction of this figure, measured in the same
run (so a throttled or shared machine is compared with itself). torch when installed (its thread
count is set exactly); numpy otherwise (its BLAS picks its own thread count, which the JSON says).
"""

from __future__ import annotations

import time


def matmul_peak(threads: int, n: int = 2048, repeats: int = 3) -> dict:
    """{"gflops": best GFLOP/s, "method": how, "runs_gflops": each run} for an `n` x `n` fp32 matmul."""
    flop = 2.0 * n ** 3
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads)
        a, b = torch.randn(n, n), torch.randn(n, n)
        multiply = lambda: torch.mm(a, b)  # noqa: E731
        method = f"torch {torch.__version__} fp32 matmul {n}x{n}, {torch.get_num_threads()} thread(s)"
    else:
        import numpy as np

        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
        multiply = lambda: a @ b  # noqa: E731
        method = f"numpy {np.__version__} fp32 matmul {n}x{n}, BLAS default threads (torch not installed)"
    multiply()  # warm-up: thread pool, page faults
    runs = []
    for _ in range(repeats):
        begin = time.perf_counter()
        multiply()
        runs.append(flop / (time.perf_counter() - begin) / 1e9)
    return {"gflops": round(max(runs), 1), "method": method, "runs_gflops": [round(r, 1) for r in runs]}
