"""The one-slot mailbox: newest frame wins under a fast producer; offline mode loses nothing."""

from __future__ import annotations

import threading
import time

import numpy as np

from edge_fetal.stream.config import SourceConfig
from edge_fetal.stream.grabber import Grabber, LatestFrameSlot
from edge_fetal.stream.readers import ArrayReader, Reader, RawFrame
from edge_fetal.stream.sources import Frame, FrameSource

IMAGE = np.zeros((16, 16), np.uint8)


class EndlessCamera(Reader):
    """A live source that never ends: a new frame every `period_s`."""

    live = True
    description = "endless camera"

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s

    def read(self) -> RawFrame:
        time.sleep(self.period_s)
        return RawFrame(IMAGE)


def test_latest_slot_keeps_the_newest_frame_and_counts_drops():
    slot = LatestFrameSlot()
    stop = threading.Event()

    def produce():
        i = 0
        while not stop.is_set():
            slot.put(Frame(i, IMAGE, time.monotonic(), None, None), overwrite=True)
            i += 1
            time.sleep(0.0002)
        slot.close()

    producer = threading.Thread(target=produce)
    producer.start()
    taken, ages = [], []
    try:
        for _ in range(40):
            frame = slot.take(timeout=1.0)
            ages.append(time.monotonic() - frame.capture_time)
            taken.append(frame.index)
            time.sleep(0.005)  # a consumer ~20x slower than the producer
    finally:
        stop.set()
        producer.join()
    while slot.take(timeout=0.01) is not None:
        pass
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert slot.dropped > 100  # most frames were overwritten, and counted
    assert slot.dropped + len(taken) <= slot.put_count <= slot.dropped + len(taken) + 1
    assert float(np.median(ages)) < 0.005  # the consumer gets a fresh frame, not a backlog


def test_live_grabber_drops_stale_frames_and_latency_stays_bounded():
    source = FrameSource(EndlessCamera(0.001))
    with Grabber(source, latest=True) as grabber:
        ages = []
        for _ in range(15):
            frame = grabber.take(timeout=1.0)
            ages.append(time.monotonic() - frame.capture_time)
            time.sleep(0.02)  # slow inference
    assert grabber.dropped > 50
    assert max(ages) < 0.05  # a queue would have aged 20 ms per frame taken: 0.3 s by the end
    assert grabber.slot.closed and not grabber._thread.is_alive()


def test_offline_file_mode_drops_nothing():
    images = [np.full((16, 16), i, np.uint8) for i in range(40)]
    source = FrameSource(ArrayReader(images))
    taken = []
    with Grabber(source, latest=False) as grabber:
        while True:
            frame = grabber.take(timeout=1.0)
            if frame is None:
                if grabber.finished:
                    break
                continue
            taken.append(frame.index)
            if len(taken) % 10 == 0:
                time.sleep(0.01)  # a slow consumer now and then
    assert taken == list(range(40)) and grabber.dropped == 0 and source.frames_read == 40


def test_realtime_file_mode_is_paced_at_the_source_rate():
    source = FrameSource(ArrayReader([IMAGE] * 6, fps=50.0))
    started = time.monotonic()
    with Grabber(source, latest=True, pace=True) as grabber:
        count = 0
        while not grabber.finished or not grabber.slot.empty:
            if grabber.take(timeout=0.2) is not None:
                count += 1
    assert time.monotonic() - started >= 5 / 50.0 - 0.01
    assert count + grabber.dropped == 6


def test_stop_wakes_a_grabber_blocked_on_a_full_slot():
    source = FrameSource(ArrayReader([IMAGE] * 100), SourceConfig())
    grabber = Grabber(source, latest=False).start()
    time.sleep(0.05)  # the grabber has filled the slot and waits
    started = time.monotonic()
    grabber.stop()
    assert time.monotonic() - started < 1.0 and not grabber._thread.is_alive()


def test_every_frame_read_is_processed_or_counted_as_dropped_when_stopped_mid_stream():
    """A stop leaves one frame in the slot and one in the grabber's hands: both count as dropped."""
    from edge_fetal.stream.grabber import LatestFrameSlot

    slot = LatestFrameSlot()
    assert slot.put("frame 0", overwrite=True)
    slot.close()
    assert not slot.put("frame 1", overwrite=True)  # read, but the stream has stopped
    slot.discard()  # frame 0 was never taken
    assert slot.dropped == 2 and slot.empty
