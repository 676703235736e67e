"""GStreamer through OpenCV: whether this build has it, and the Jetson's hardware encoder for the recording.

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
