"""The inference thread(s) of the stream: frames from the grabber through preprocess and the model,
handed on in frame order.

Offline, with a backend that takes parallel calls, several threads infer frames side by side; their
results are handed on in frame order, so measuring and fusing still see frames in order. Live, one
thread infers each frame and also finishes it (measure, fuse) before handing it on: no next frame
waits to overlap with, and a hand-off would add a thread wake-up to every frame's capture→result
(benchmarks/results/PROFILE.md).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from edge_fetal.stream.grabber import Grabber
from edge_fetal.stream.record import FrameRecord
from edge_fetal.stream.stages import FrameProcessor, Inferred


class FailedFrame:
    """A frame the inference thread could not preprocess or infer: the consumer counts it."""

    def __init__(self, error: Exception) -> None:
        self.error = error


END_OF_FRAMES = object()  # the inference thread has no more frames to hand on


class InferenceThread:
    """Takes frames from the grabber, runs `process.infer` on each, and hands the results on in
    frame order. With `finish` (one worker only), each result is finished here too and a
    `FrameRecord` is handed on instead.

    With `workers` > 1 (offline runs, a backend that takes parallel calls) that many threads take
    frames in turn and infer side by side. A worker leaves its result in a reorder buffer and
    takes the next frame at once, so no worker idles while an earlier frame is still in the model
    (benchmarks/results/PROFILE.md, seventeenth session). Back-pressure: at most `workers`
    results wait ahead of the consumer; only the frame the consumer needs next may go beyond that.
    `take()` gives an `Inferred` (a `FrameRecord` with `finish`), a `FailedFrame`, `END_OF_FRAMES`,
    or None on timeout. `stop()` ends the threads; frames taken but never handed on are counted in
    `abandoned`.
    """

    def __init__(self, grabber: Grabber, process: FrameProcessor, stop: threading.Event, workers: int = 1,
                 finish: Callable[[Inferred], FrameRecord] | None = None) -> None:
        if finish is not None and workers != 1:
            raise ValueError("frames can be finished on the inference thread only with one worker (frame order)")
        self.grabber, self.process, self.stop_requested, self.finish = grabber, process, stop, finish
        self.abandoned = 0
        self._halt = threading.Event()
        self._taking = threading.Lock()  # one worker at a time takes a frame and its turn number
        self._results = threading.Condition()  # guards the buffer and the counters below
        self._waiting: dict[int, object] = {}  # turn -> result, until the consumer takes it
        self._next_turn = self._turn_to_take = 0
        self._most_waiting = workers
        self._running = workers
        self._threads = [threading.Thread(target=self._run, name=f"edge-fetal-inference-{i}", daemon=True)
                         for i in range(workers)]

    def __enter__(self) -> "InferenceThread":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _halted(self) -> bool:
        return self._halt.is_set() or self.stop_requested.is_set()

    def _run(self) -> None:
        waiting_since = time.monotonic()
        while not self._halted():
            with self._taking:
                frame = self.grabber.take(timeout=0.1)
                turn = self._next_turn
                self._next_turn += frame is not None
            if frame is None:
                if self.grabber.finished:
                    break
                continue
            try:
                grab_wait_ms = (time.monotonic() - waiting_since) * 1e3
                item: Inferred | FrameRecord | FailedFrame = self.process.infer(frame, grab_wait_ms)
                if self.finish is not None:
                    item = self.finish(item)
            except Exception as error:  # counted by the consumer, like a failure in any stage
                item = FailedFrame(error)
            if not self._leave(turn, item):
                break
            waiting_since = time.monotonic()
        with self._results:
            self._running -= 1  # the last one out: every turn given out was left (or abandoned)
            self._results.notify_all()

    def _leave(self, turn: int, item) -> bool:
        """Put a result in the buffer, waiting while it is full unless the consumer needs this one
        next; False (the result abandoned) once the threads are told to stop."""
        with self._results:
            while (len(self._waiting) >= self._most_waiting and turn != self._turn_to_take
                   and not self._halt.is_set()):
                self._results.wait(0.1)
            if self._halt.is_set():
                self.abandoned += 1
                return False
            self._waiting[turn] = item
            self._results.notify_all()
            return True

    def take(self, timeout: float) -> Inferred | FrameRecord | FailedFrame | object | None:
        with self._results:
            if self._turn_to_take not in self._waiting and self._running:
                self._results.wait(timeout)
            if self._turn_to_take in self._waiting:
                item = self._waiting.pop(self._turn_to_take)
                self._turn_to_take += 1
                self._results.notify_all()  # a worker may be waiting for room, or for this turn
                return item
            return None if self._running else END_OF_FRAMES

    def stop(self) -> None:
        """End the threads and count what they inferred but never handed over (idempotent)."""
        self._halt.set()
        with self._results:
            self._results.notify_all()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join()
        with self._results:
            self.abandoned += len(self._waiting)
            self._waiting.clear()
