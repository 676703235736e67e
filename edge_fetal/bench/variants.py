"""What is timed: a `Variant` is one way of running the model (a backend, a batch size, an input
size, N concurrent streams), and `interleave` times all of them round-robin.

Round r runs every variant for `iterations` calls, starting one variant later than round r-1, so
slow drift of the machine (thermal throttling, a neighbour's job) is spread over all variants
alike instead of landing on whichever ran last.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge_fetal.bench.schema import latency_stats


def current_rss_mib() -> float | None:
    """Resident memory of this process now (Linux /proc), in MiB."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this address space. `ru_maxrss` is
    the fallback (macOS, BSD); on Linux a child started from a big parent inherits the parent's
    ru_maxrss across fork + exec, so it would report the benchmark's peak, not the engine's.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 2**10, 1)
    except (OSError, ValueError, IndexError):
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def batches_of(inputs: Sequence[np.ndarray], batch: int) -> list[np.ndarray]:
    """`[1,1,S,S]` inputs → `[batch,1,S,S]` arrays of consecutive frames (wrapping around)."""
    n = len(inputs)
    return [np.concatenate([inputs[(i + k) % n] for k in range(batch)]) for i in range(0, n, batch)] if batch > 1 else list(inputs)


@dataclass(eq=False)  # compared and hashed by identity: the same variant may sit on several axes
class Variant:
    """`infer(batch)` timed over its `inputs` in turn. `label` goes into the JSON row as it is."""

    name: str
    group: str  # "model" | "size" | "batch" | "streams"
    label: dict
    infer: Callable[[np.ndarray], object]
    inputs: list[np.ndarray]
    close: Callable[[], None] = lambda: None
    backend: object = None  # the Backend behind `infer`, when there is one (the end-to-end run uses it)
    model_path: Path | None = None  # the ONNX file an ONNX Runtime variant runs
    times_ms: list[float] = field(default_factory=list)
    frames: int = 0
    wall_s: float = 0.0
    rss_delta_mib: float | None = None
    _next: int = 0

    @property
    def batch(self) -> int:
        return int(self.inputs[0].shape[0])

    def warm_up(self, calls: int) -> None:
        before = current_rss_mib()
        for _ in range(calls):
            self._call()
        after = current_rss_mib()
        if before is not None and after is not None:
            self.rss_delta_mib = round(after - before + (self.rss_delta_mib or 0.0), 1)

    def _call(self) -> float:
        batch = self.inputs[self._next % len(self.inputs)]
        self._next += 1
        begin = time.perf_counter()
        self.infer(batch)
        return (time.perf_counter() - begin) * 1e3

    def measure(self, iterations: int) -> None:
        begin = time.perf_counter()
        self.times_ms += [self._call() for _ in range(iterations)]
        self.wall_s += time.perf_counter() - begin
        self.frames += iterations * self.batch

    def row(self) -> dict:
        stats = latency_stats(self.times_ms, self.batch)
        if self.wall_s > 0:
            stats["frames_per_s"] = round(self.frames / self.wall_s, 2)
        return {"variant": self.name, "group": self.group, **self.label, "kind": "backend", "batch": self.batch,
                **stats, "rss_delta_mib": self.rss_delta_mib}


class StreamsVariant(Variant):
    """N threads, each with its own backend (session), each timing `iterations` calls per round;
    frames per second is all streams' frames over the round's wall time."""

    def __init__(self, name: str, label: dict, backends: list, inputs: list[np.ndarray]) -> None:
        super().__init__(name, "streams", label, backends[0].infer, inputs,
                         close=lambda: [b.close() for b in backends])
        self.backends = backends

    def warm_up(self, calls: int) -> None:
        before = current_rss_mib()
        self._run_threads(calls)
        after = current_rss_mib()
        if before is not None and after is not None:
            self.rss_delta_mib = round(after - before + (self.rss_delta_mib or 0.0), 1)

    def _run_threads(self, iterations: int) -> tuple[list[float], float]:
        barrier = threading.Barrier(len(self.backends))
        results: list[list[float]] = [[] for _ in self.backends]
        spans: list[tuple[float, float]] = [(0.0, 0.0)] * len(self.backends)
        errors: list[BaseException] = []

        def stream(index: int) -> None:
            try:
                backend, times = self.backends[index], results[index]
                barrier.wait()
                started = time.perf_counter()
                for i in range(iterations):
                    batch = self.inputs[(index + i) % len(self.inputs)]
                    begin = time.perf_counter()
                    backend.infer(batch)
                    times.append((time.perf_counter() - begin) * 1e3)
                spans[index] = (started, time.perf_counter())
            except BaseException as error:  # re-raised on the calling thread
                errors.append(error)
                barrier.abort()

        threads = [threading.Thread(target=stream, args=(i,), name=f"bench-stream-{i}") for i in range(len(self.backends))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        wall = max(end for _, end in spans) - min(start for start, _ in spans)
        return [t for times in results for t in times], wall

    def measure(self, iterations: int) -> None:
        times, wall = self._run_threads(iterations)
        self.times_ms += times
        self.wall_s += wall
        self.frames += len(times) * self.batch


def interleave(variants: list[Variant], rounds: int, iterations: int, step: Callable[[str], None] = lambda _: None) -> None:
    """Time every variant `rounds` x `iterations` calls, round-robin with a rotating start."""
    n = len(variants)
    for r in range(rounds):
        for variant in variants[r % n:] + variants[:r % n]:
            variant.measure(iterations)
            step(variant.name)
