"""The capture thread: reads a `FrameSource` and hands the newest frame to the inference loop.

Back-pressure is a one-slot mailbox, never a queue that grows:
- latest mode (live sources, and files with `--realtime`): a new frame overwrites one not yet
  taken, which is counted as dropped; the consumer always gets the newest frame, so latency stays
  bounded when inference is slower than the source. Files are paced at their own frame rate.
- offline mode (files otherwise): the grabber waits until the slot is empty, so every frame is
  processed and nothing is dropped; the file is read as fast as the slowest stage allows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from edge_fetal.stream.sources import Frame, FrameSource


class LatestFrameSlot:
    """A one-item mailbox with a condition variable. `put` overwrites (counting a drop) or waits for
    the slot to empty; `take` waits for an item; `close` wakes everyone, after which `take` returns
    what is left and then None."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Frame | None = None
        self._closed = False
        self.dropped = 0
        self.put_count = 0

    def put(self, item: Frame, overwrite: bool) -> bool:
        """Place `item`; False when the slot is closed (the item is discarded)."""
        with self._cond:
            if not overwrite:
                while self._item is not None and not self._closed:
                    self._cond.wait()
            if self._closed:
                self.dropped += 1  # read from the source but never to be processed
                return False
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_count += 1
            self._cond.notify_all()
            return True

    def take(self, timeout: float | None = None) -> Frame | None:
        """The newest item, waiting up to `timeout` s; None on timeout or when closed and empty."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def discard(self) -> None:
        """Drop a frame nobody will take any more (the stream stopped), counting it."""
        with self._cond:
            if self._item is not None:
                self._item = None
                self.dropped += 1

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def empty(self) -> bool:
        return self._item is None


class Grabber:
    """Runs `source.frames()` on a daemon thread into a `LatestFrameSlot`.

    `latest=True` overwrites stale frames (live sources, `--realtime`); with `pace=True` a file is
    read no faster than its frame rate (`source.fps`, or 25 when unknown). `take()` returns the
    next frame or None at the end; `finished` says the source is exhausted; `error` holds what
    stopped the thread (re-raised by `raise_if_failed`). Use as a context manager or call `stop()`.
    """

    def __init__(self, source: FrameSource, latest: bool, pace: bool = False) -> None:
        self.source, self.latest, self.pace = source, latest, pace
        self.slot = LatestFrameSlot()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-fetal-grabber", daemon=True)

    def start(self) -> "Grabber":
        self._thread.start()
        return self

    def _run(self) -> None:
        period = 1.0 / (self.source.fps or 25.0) if self.pace else 0.0
        started = time.monotonic()
        frames = self.source.frames(self._stop)
        try:
            for count, frame in enumerate(frames):
                if period:
                    delay = started + count * period - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    frame = replace(frame, capture_time=time.monotonic())  # it arrives now
                if not self.slot.put(frame, overwrite=self.latest):
                    break
        except BaseException as error:  # handed to the consumer thread, which re-raises it
            self.error = error
        finally:
            frames.close()  # releases the device or file now, not at garbage collection
            self.slot.close()

    def take(self, timeout: float | None = None) -> Frame | None:
        return self.slot.take(timeout)

    @property
    def finished(self) -> bool:
        """The source has ended (or failed, or was stopped) and the slot is empty."""
        return self.slot.closed and self.slot.empty

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end, wake it, and wait for it (a blocked device read may take a moment)."""
        self._stop.set()
        self.slot.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.slot.discard()  # every frame read is either processed or counted as dropped

    def __enter__(self) -> "Grabber":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
