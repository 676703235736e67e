"""The inference thread(s) of the stream: frames from the grabber through preprocess and the model,
handed on in frame order.

Offline, with a backend that takes parallel calls, several threads infer frames side by side and
each hands its result on only after the frame before, so measuring and fusing still see frames in
order. Live, one thread infers each frame and also finishes it (measure, fuse) before handing it
on: no next frame waits to overlap with, and a hand-off would add a thread wake-up to every
frame's capture→result (benchmarks/results/PROFILE.md).
"""

from __future__ import annotations

import queue
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
    frame order through a one-item queue (back-pressure: it waits while the consumer is behind).
    With `finish` (one worker only), each result is finished here too and a `FrameRecord` is
    handed on instead.

    With `workers` > 1 (offline runs, a backend that takes parallel calls) that many threads take
    frames in turn and infer side by side; each hands its result on only after the frame before.
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
        self._handoff: queue.Queue = queue.Queue(maxsize=1)
        self._halt = threading.Event()
        self._taking = threading.Lock()  # one worker at a time takes a frame and its turn number
        self._turns = threading.Condition()  # guards the counters below
        self._next_turn = self._turn_to_hand = 0
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
            if not self._hand_on_in_turn(turn, item):
                break
            waiting_since = time.monotonic()
        with self._turns:
            self._running -= 1
            last = self._running == 0
        if last:  # every turn given out has been handed on (or abandoned)
            self._hand_on(END_OF_FRAMES)

    def _hand_on_in_turn(self, turn: int, item) -> bool:
        with self._turns:
            while self._turn_to_hand != turn and not self._halt.is_set():
                self._turns.wait(0.1)
        handed = not self._halt.is_set() and self._hand_on(item)
        with self._turns:
            self._turn_to_hand += 1
            self.abandoned += not handed
            self._turns.notify_all()
        return handed

    def _hand_on(self, item) -> bool:
        while not self._halt.is_set():
            try:
                self._handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, timeout: float) -> Inferred | FrameRecord | FailedFrame | object | None:
        try:
            return self._handoff.get(timeout=timeout)
        except queue.Empty:
            alive = any(thread.is_alive() for thread in self._threads)
            return None if alive or not self._handoff.empty() else END_OF_FRAMES

    def stop(self) -> None:
        """End the threads and count what they inferred but never handed over (idempotent)."""
        self._halt.set()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join()
        while True:
            try:
                item = self._handoff.get_nowait()
            except queue.Empty:
                return
            if item is not END_OF_FRAMES:
                self.abandoned += 1
