"""Latency and throughput benchmark (`edge-fetal bench`): every backend, end to end against a naive
baseline, and scaling with input size, batch and concurrent streams; JSON + Markdown + PNG results.

Needs onnx (and torch for the torch rows and the naive baseline): the `train` extra. Nothing is
imported until used, so the command line can build its parser from `bench.command` cheaply.
"""

__all__ = ["BenchOptions", "run_benchmark"]


def __getattr__(name: str):
    if name in __all__:
        from edge_fetal.bench import harness

        return getattr(harness, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
