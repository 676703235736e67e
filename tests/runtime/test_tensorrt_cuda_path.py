"""The CUDA half of the TensorRT backend, run for real on a GPU that has cuda-python but no TensorRT.

`TensorRTBackend` is TensorRT (engine, context) plus cuda-python (pinned and device buffers, a
stream, async copies, a CUDA graph). Here TensorRT is replaced by a stand-in engine whose
"network" is two CUDA copies queued on the backend's stream, so that every cuda-python call of the
backend runs on the GPU and its outputs can be predicted exactly from the input:
  seg_labels[i]   = the first H*W bytes of frame i (its float32 bytes, read as uint8)
  plane_logits[i] = the first four pixels of frame i
Skipped cleanly where there is no cuda-python or no CUDA GPU (so everywhere in CI).
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from edge_fetal.errors import BackendError
from edge_fetal.runtime.engine_manifest import MANIFEST_VERSION, engine_manifest_path, sha256_of

SIZE, MAX_BATCH = 32, 4
FAKE_TRT_VERSION = "0.0-stand-in"
SHAPES = {"image": (-1, 1, SIZE, SIZE), "seg_labels": (-1, SIZE, SIZE), "plane_logits": (-1, 4)}
DTYPES = {"image": np.float32, "seg_labels": np.uint8, "plane_logits": np.float32}


def _cudart_and_gpu():
    from edge_fetal.runtime.cuda_memory import cuda_device, import_cudart

    try:
        return import_cudart(), cuda_device()
    except BackendError as error:
        pytest.skip(str(error))


class StandInContext:
    """An execution context whose `execute_async_v3` queues D2D copies instead of a network."""

    def __init__(self, cudart):
        self._cudart, self._batch, self._addresses = cudart, MAX_BATCH, {}
        self.executions = 0

    def set_input_shape(self, name: str, shape) -> bool:
        assert name == "image" and 1 <= shape[0] <= MAX_BATCH and tuple(shape[1:]) == SHAPES["image"][1:]
        self._batch = int(shape[0])
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return (self._batch, *SHAPES[name][1:])

    def set_tensor_address(self, name: str, pointer: int) -> bool:
        self._addresses[name] = int(pointer)
        return True

    def execute_async_v3(self, stream: int) -> bool:
        self.executions += 1
        cudart, frame_bytes = self._cudart, SIZE * SIZE * 4
        device_to_device = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        for i in range(self._batch):
            source = self._addresses["image"] + i * frame_bytes
            for name, nbytes in (("seg_labels", SIZE * SIZE), ("plane_logits", 16)):
                target = self._addresses[name] + i * nbytes
                error, = cudart.cudaMemcpyAsync(target, source, nbytes, device_to_device, stream)
                if error != cudart.cudaError_t.cudaSuccess:
                    return False
        return True


class StandInEngine:
    num_io_tensors = 3

    def __init__(self, cudart):
        self._cudart = cudart

    def get_tensor_name(self, index: int) -> str:
        return list(SHAPES)[index]

    def get_tensor_mode(self, name: str):
        return "input" if name == "image" else "output"

    def get_tensor_profile_shape(self, name: str, profile: int):
        assert (name, profile) == ("image", 0)
        return [(1, 1, SIZE, SIZE), (1, 1, SIZE, SIZE), (MAX_BATCH, 1, SIZE, SIZE)]

    def get_tensor_dtype(self, name: str):
        return DTYPES[name]

    def create_execution_context(self) -> StandInContext:
        return StandInContext(self._cudart)


def _stand_in_tensorrt(cudart) -> types.ModuleType:
    """A module with the few names of `tensorrt` that the backend uses."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = FAKE_TRT_VERSION
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.TensorIOMode = types.SimpleNamespace(INPUT="input", OUTPUT="output")
    trt.nptype = np.dtype
    trt.Runtime = lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda blob: StandInEngine(cudart))
    return trt


@pytest.fixture
def engine_path(tmp_path, monkeypatch):
    """An engine file with a manifest that matches this GPU and the stand-in TensorRT."""
    cudart, gpu = _cudart_and_gpu()
    monkeypatch.setitem(sys.modules, "tensorrt", _stand_in_tensorrt(cudart))
    path = tmp_path / "stand_in.engine"
    path.write_bytes(b"stand-in engine")
    engine_manifest_path(path).write_text(json.dumps({
        "manifest_version": MANIFEST_VERSION, "tensorrt_version": FAKE_TRT_VERSION,
        "gpu": {"name": gpu.name, "compute_capability": gpu.compute_capability},
        "engine": {"sha256": sha256_of(path)}, "onnx": {}}))
    return path


def _expected(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = frames.reshape(len(frames), -1)
    seg = np.ascontiguousarray(flat).view(np.uint8)[:, : SIZE * SIZE].reshape(-1, SIZE, SIZE)
    return seg, flat[:, :4]


def _frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, SIZE, SIZE), dtype=np.float32)


@pytest.mark.gpu
@pytest.mark.parametrize("use_cuda_graph", [False, True])
def test_every_frame_goes_to_the_gpu_and_back(engine_path, use_cuda_graph):
    from edge_fetal.runtime.tensorrt_backend import TensorRTBackend

    with TensorRTBackend(engine_path, use_cuda_graph=use_cuda_graph) as backend:
        for frames in (_frames(1, 0), _frames(1, 1), _frames(3, 2), _frames(6, 3), _frames(1, 4)):
            outputs = backend.infer(frames)  # 6 > MAX_BATCH: run in two slices
            seg, logits = _expected(frames)
            np.testing.assert_array_equal(outputs.seg_labels, seg)
            np.testing.assert_array_equal(outputs.plane_logits, logits)


@pytest.mark.gpu
def test_the_engine_has_run_once_when_it_opens(engine_path):
    """The first execution's start-up cost is paid at open, not by the first live frame."""
    from edge_fetal.runtime.tensorrt_backend import TensorRTBackend

    with TensorRTBackend(engine_path) as backend:
        assert backend._context.executions == 1
        backend.infer(_frames(1, 5))
        assert backend._context.executions == 2


@pytest.mark.gpu
def test_outputs_stay_the_callers_after_the_next_call(engine_path):
    from edge_fetal.runtime.tensorrt_backend import TensorRTBackend

    with TensorRTBackend(engine_path, use_cuda_graph=True) as backend:
        first_frames = _frames(1, 10)
        first = backend.infer(first_frames)
        backend.infer(_frames(1, 11))
        np.testing.assert_array_equal(first.seg_labels, _expected(first_frames)[0])
        backend.close()
        backend.close()  # twice: harmless


@pytest.mark.gpu
def test_device_and_pinned_buffers_round_trip():
    from edge_fetal.runtime.cuda_memory import DeviceBuffer, PinnedArray, cuda_call

    cudart, _gpu = _cudart_and_gpu()
    source, target = PinnedArray(cudart, (7, 5), np.float32), PinnedArray(cudart, (7, 5), np.float32)
    device = DeviceBuffer(cudart, source.array.nbytes)
    try:
        source.array[:] = np.arange(35, dtype=np.float32).reshape(7, 5)
        kinds = cudart.cudaMemcpyKind
        cuda_call(cudart, cudart.cudaMemcpy(device.ptr, source.ptr, device.nbytes, kinds.cudaMemcpyHostToDevice))
        cuda_call(cudart, cudart.cudaMemcpy(target.ptr, device.ptr, device.nbytes, kinds.cudaMemcpyDeviceToHost))
        np.testing.assert_array_equal(target.array, source.array)
    finally:
        for owned in (source, target, device):
            owned.free()
            owned.free()  # twice: harmless
