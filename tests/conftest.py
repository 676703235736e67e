"""Shared fixtures: the real HC18 data (skipped with the reason when absent), and a tiny model with
non-trivial weights saved as a checkpoint and exported to ONNX once per session (each fixture skips
cleanly when its library is missing, so GPU tests that do not need it still run there)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

HC18_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hc18"
HC18_CSV = HC18_DIR / "training_set_pixel_size_and_HC.csv"
HC18_IMAGES = HC18_DIR / "training_set"


@pytest.fixture(scope="session")
def hc18_dir() -> Path:
    """The real HC18 folder (../shared/data/hc18); tests needing it skip when it is not there."""
    if not HC18_CSV.is_file():
        pytest.skip(f"real HC18 data not found at {HC18_DIR} (present in CI, absent on a fresh user machine)")
    return HC18_DIR


TINY_SIZE = 64
TINY_ARCHITECTURE = {"widths": [4, 8, 16, 32, 64]}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(MultiTaskUNet at 64x64, the path of its checkpoint) — random weights, sharpened so outputs vary."""
    torch = pytest.importorskip("torch")
    from edge_fetal.model.unet import MultiTaskUNet

    torch.manual_seed(0)
    model = MultiTaskUNet(**TINY_ARCHITECTURE).eval()
    with torch.no_grad():  # sharper statistics and head than at init, so outputs vary with the frame
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d) and module.affine:
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.05, 0.2)
        model.input_norm.running_mean.fill_(0.5)
        model.input_norm.running_var.fill_(0.05)
        model.seg_head.weight.normal_(0.0, 1.0)
        model.seg_head.bias.zero_()
    checkpoint = tmp_path_factory.mktemp("tiny_model") / "tiny.pt"
    torch.save({"config": {"model": TINY_ARCHITECTURE, "data": {"image_size": TINY_SIZE}},
                "model": model.state_dict(), "epoch": 0}, checkpoint)
    return model, checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model) -> Path:
    return tiny_model[1]


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model) -> Path:
    """The tiny model exported per the contract (`image` → `seg_labels` uint8, `plane_logits`)."""
    pytest.importorskip("onnx")
    from export.onnx_export import export_onnx

    return export_onnx(tiny_model[0], tiny_model[1].with_name("tiny.onnx"), TINY_SIZE)


@pytest.fixture(scope="session")
def frames() -> np.ndarray:
    """Four different float32 [4, 1, 64, 64] frames in [0, 1] (stripes of varied pitch + noise)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:TINY_SIZE, 0:TINY_SIZE] / (TINY_SIZE - 1.0)
    stack = [0.5 + 0.5 * rng.random() * np.sin(2 * np.pi * (xx * (i + 1) + yy * (2 - i % 2))) + 0.2 * rng.random(xx.shape)
             for i in range(4)]
    return np.clip(np.array(stack, dtype=np.float32), 0.0, 1.0)[:, None]


def _write_cine(path, frames, photometric: str = "MONOCHROME2", delta_cm: float = 0.02, box=None):
    """An ultrasound DICOM (multi-frame) with one calibrated Ultrasound Region, as a scanner writes it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    n, rows, cols = frames.shape[:3]
    ds.NumberOfFrames, ds.Rows, ds.Columns = n, rows, cols
    ds.SamplesPerPixel = 1 if frames.ndim == 3 else 3
    if frames.ndim == 4:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = 8 * frames.itemsize
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.FrameTime = 40.0
    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
    x0, y0, x1, y1 = box or (0, 0, cols - 1, rows - 1)
    region.RegionLocationMinX0, region.RegionLocationMinY0 = x0, y0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = x1, y1
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = region.PhysicalDeltaY = delta_cm
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


@pytest.fixture
def write_cine():
    """`write_cine(path, frames[N,H,W(,3)], photometric, delta_cm, box)` → path of a DICOM cine."""
    return _write_cine


def _read_video(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


@pytest.fixture
def read_video():
    """`read_video(path)` → every frame OpenCV decodes from a video file, as BGR arrays."""
    return _read_video
