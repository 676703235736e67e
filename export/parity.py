"""Does the exported ONNX compute what the torch model computes? Checked on real and simulated frames.

Thresholds (the export contract): segmentation labels agree on ≥ 99.9 % of pixels, plane logits
within 1e-4, and the same plane on every frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_fetal.runtime.analyse import preprocess

MIN_LABEL_AGREEMENT = 0.999
MAX_LOGIT_DIFFERENCE = 1e-4


@dataclass(frozen=True)
class ParityReport:
    frames_real: int
    frames_simulated: int
    label_agreement_min: float
    label_agreement_mean: float
    logit_max_abs_difference: float
    plane_disagreements: int

    @property
    def passed(self) -> bool:
        return (self.label_agreement_min >= MIN_LABEL_AGREEMENT and self.logit_max_abs_difference <= MAX_LOGIT_DIFFERENCE
                and self.plane_disagreements == 0)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed,
                "thresholds": {"label_agreement_min": MIN_LABEL_AGREEMENT, "logit_max_abs_difference": MAX_LOGIT_DIFFERENCE}}

    def describe(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        return (f"parity torch vs ONNX Runtime on {self.frames_real} real HC18 + {self.frames_simulated} simulated frames: "
                f"labels agree on {self.label_agreement_min * 100:.3f} % of pixels at worst "
                f"(mean {self.label_agreement_mean * 100:.4f} %), plane logits within {self.logit_max_abs_difference:.2e}, "
                f"{self.plane_disagreements} plane disagreements -> {verdict}")


def parity_real_images(count: int) -> list[Path]:
    """Real frames for the parity check and INT8 calibration: the benchmark's real-frame folder."""
    from edge_fetal.bench.frames import real_frame_folder

    folder, _ = real_frame_folder()
    return sorted(folder.glob("*HC.png"))[:count]


def parity_frames(hc18_images: list[Path], simulated_per_plane: int = 4, seed: int = 99) -> tuple[list[np.ndarray], int]:
    """Real frames from the given paths plus simulated frames of every plane; returns (frames, real count)."""
    from edge_fetal.data.hc18 import load_image
    from edge_fetal.data.simulator import PLANES, render_frame

    real = [load_image(path) for path in hc18_images]
    simulated = [render_frame(plane, seed + index).image for plane in PLANES for index in range(simulated_per_plane)]
    return real + simulated, len(real)


def check_parity(model, onnx_path: str | Path, frames: list[np.ndarray], real_count: int) -> ParityReport:
    """Run every frame through the torch model and the ONNX file; compare labels, logits and plane."""
    import torch

    from edge_fetal.model.unet import ExportWrapper
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend

    wrapper = ExportWrapper(model.eval()).eval()
    agreements, logit_differences, plane_disagreements = [], [], 0
    with OnnxRuntimeBackend(onnx_path, providers=["CPUExecutionProvider"]) as backend:
        for frame in frames:
            batch = preprocess(frame, backend.letterbox_for(frame.shape))
            with torch.no_grad():
                torch_labels, torch_logits = (t.numpy() for t in wrapper(torch.from_numpy(batch)))
            outputs = backend.infer(batch)
            agreements.append(float(np.mean(torch_labels == outputs.seg_labels)))
            logit_differences.append(float(np.max(np.abs(torch_logits - outputs.plane_logits))))
            plane_disagreements += int(np.argmax(torch_logits) != np.argmax(outputs.plane_logits))
    return ParityReport(real_count, len(frames) - real_count, min(agreements), float(np.mean(agreements)),
                        max(logit_differences), plane_disagreements)
