"""GStreamer through OpenCV: whether this build has it, what a `--source` pipeline's text says (a
file or live; settings that cost latency or accuracy), and the Jetson's hardware encoder for the
recording.

On a Jetson, JetPack's own OpenCV is built with GStreamer, which reaches the hardware decoder
(`nvv4l2decoder`) and encoder (`nvv4l2h264enc`). The opencv-python wheels from PyPI are built
without it, and installed in a virtual environment they hide JetPack's OpenCV. Then a GStreamer
`--source` cannot open and the recording is encoded on the CPU: the README's Jetson steps remove
the wheel, and the messages here say so where it matters.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2

from edge_fetal.stream.stats import log

JETSON_RELEASE_FILE = Path("/etc/nv_tegra_release")  # written by L4T, the Jetson's Linux
# The kernel's device tree names the SoC; it is there in a container too, where the release file
# may not be.
DEVICE_TREE_COMPATIBLE = Path("/proc/device-tree/compatible")

# The annotated frames (BGR from OpenCV's appsrc) to the Jetson's hardware H.264 encoder, muxed to
# mp4. nvvidconv takes BGRx, not BGR, so videoconvert pads each pixel on the CPU first.
JETSON_H264_PIPELINE = ("appsrc ! videoconvert ! video/x-raw,format=BGRx ! nvvidconv ! "
                        "video/x-raw(memory:NVMM),format=NV12 ! nvv4l2h264enc ! h264parse ! qtmux ! "
                        "filesink location={location}")

WHEEL_HIDES_JETPACK = ("this is a Jetson, but the OpenCV in use has no GStreamer: the opencv-python-headless wheel "
                       "hides JetPack's OpenCV. Remove it from the environment (pip uninstall opencv-python-headless; "
                       "README, 'Deploying on a Jetson')")


def opencv_has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines."""
    return cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER)


def on_jetson() -> bool:
    """Whether this machine is a Jetson: L4T's release file, or a Tegra SoC in the device tree."""
    if JETSON_RELEASE_FILE.exists():
        return True
    try:
        return b"nvidia,tegra" in DEVICE_TREE_COMPATIBLE.read_bytes()
    except OSError:
        return False


def missing_gstreamer_hint() -> str:
    """What to do about an OpenCV without GStreamer: on a Jetson, remove the wheel that hides JetPack's."""
    if on_jetson():
        return WHEEL_HIDES_JETPACK
    return "this OpenCV build has no GStreamer support"


def pipeline_reads_file(pipeline: str) -> bool:
    """Whether a GStreamer pipeline starts from a file (filesrc, multifilesrc), e.g. a recording
    decoded on the Jetson's hardware: it then ends at the file's end, as a video file does, where a
    live pipeline that stops is reconnected."""
    return re.search(r"(^|!)\s*(filesrc|multifilesrc)\b", pipeline) is not None


RTSPSRC_DEFAULT_LATENCY_MS = 2000  # GStreamer's rtspsrc `latency` property, when it is not set


def warn_if_rtsp_buffers(pipeline: str) -> bool:
    """Warn (and return True) when a GStreamer pipeline's rtspsrc keeps its default jitter buffer.

    rtspsrc's jitter buffer may hold every packet for up to its `latency` before passing it on:
    with the default, the overlay could trail the probe by up to two seconds, and no
    capture→result figure would show it (a frame is stamped when the engine reads it).
    """
    if re.search(r"\brtspsrc\b", pipeline) is None or re.search(r"\blatency\s*=", pipeline) is not None:
        return False
    log.warning("the pipeline's rtspsrc may hold every frame back up to %d ms (its default latency): add latency=0 "
                "after its location for a scanner on the local network", RTSPSRC_DEFAULT_LATENCY_MS)
    return True


def warn_if_video_range_grey(pipeline: str) -> bool:
    """Warn (and return True) when a GStreamer pipeline hands over GRAY8 frames.

    From a video decoder (nvv4l2decoder, avdec_h264...) GRAY8 is the picture's luma as it is
    stored, in video range: black 16, white 235 (GStreamer's videoconvert passes it through so;
    measured). The model was trained on full-range grey. On the real HC18 validation frames put
    in video range it read heads worse: Dice 0.9701 -> 0.9666, HC MAE 2.13 -> 2.30 mm, the
    largest error 13.0 -> 20.9 mm. BGRx is converted to full range on the way, and the engine
    turns it into grey itself.
    """
    if re.search(r"format\s*=\s*(\(string\))?\s*GRAY8\b", pipeline) is None:
        return False
    log.warning("the pipeline hands over GRAY8: from a video decoder that is video-range luma (16-235), which the "
                "model reads worse than full-range grey; end it with video/x-raw,format=BGRx ! appsink instead")
    return True


def recording_pipelines(encoder: str) -> dict[str, str]:
    """GStreamer pipelines (encoder element → template with `{location}`) to try for the recording
    before mp4v on the CPU. `encoder`: "auto" (the Jetson's hardware encoder where this OpenCV can
    reach it) or "cpu" (none)."""
    if encoder == "cpu" or not (on_jetson() and opencv_has_gstreamer()):
        return {}
    return {"nvv4l2h264enc": JETSON_H264_PIPELINE}


def quoted_location(path: Path) -> str:
    """A file path as a GStreamer property value: in double quotes, so spaces and '!' stay in it."""
    text = str(path)
    if '"' in text:
        raise ValueError(f"a GStreamer pipeline cannot write to a path with a double quote: {text}")
    return f'"{text}"'
