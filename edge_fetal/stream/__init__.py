"""The live engine: sources → grabber → preprocess/infer/measure → fusion → sinks (see pipeline.py).

    from edge_fetal.stream import StreamConfig, run_stream
    report = run_stream("sim", backend, StreamConfig(max_frames=100), "out/")
"""

from edge_fetal.stream.config import FusionConfig, SinkConfig, SourceConfig, StreamConfig
from edge_fetal.stream.fusion import FusedBiometry, Fusion, FusionState
from edge_fetal.stream.pipeline import StreamError, StreamReport, run_stream, status_line
from edge_fetal.stream.roi import Roi, RoiError, detect_fan, parse_roi
from edge_fetal.stream.sources import Frame, FrameSource, open_source, to_grey_u8
from edge_fetal.stream.readers import SourceError

__all__ = [
    "Frame", "FrameSource", "FusedBiometry", "Fusion", "FusionConfig", "FusionState", "Roi", "RoiError", "SinkConfig",
    "SourceConfig", "SourceError", "StreamConfig", "StreamError", "StreamReport", "detect_fan", "open_source",
    "parse_roi", "run_stream", "status_line", "to_grey_u8",
]
