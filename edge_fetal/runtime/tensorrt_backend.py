"""TensorRT 10 backend: a serialized engine, page-locked host buffers, one owned CUDA stream.

The loop of TensorRT's `samples/python/common_runtime.py`: the engine's I/O tensors by name,
host and device memory allocated once for the optimisation profile's largest batch,
`set_tensor_address` once, then per call: async H2D, `execute_async_v3`, async D2H, one sync.
Batch 1 can replay a captured CUDA graph (fewer launches: it matters on a Jetson's small CPU).
tensorrt is imported inside this module only, cuda-python in `cuda_memory.py`; both only when used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_fetal.errors import BackendError
from edge_fetal.runtime.backend import Backend, ModelOutputs
from edge_fetal.runtime.cuda_memory import DeviceBuffer, PinnedArray, cuda_call, cuda_device, import_cudart
from edge_fetal.runtime.engine_manifest import check_engine_manifest, read_engine_manifest, sha256_of

NO_TENSORRT = "TensorRT is not installed here: build engines on the Jetson (JetPack ships it), see README 'Deploying on a Jetson'"


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise BackendError(NO_TENSORRT) from None
    return tensorrt


class TensorRTBackend(Backend):
    """Runs a TensorRT engine built by `edge-fetal export tensorrt` (`image` → `seg_labels`, `plane_logits`)."""

    name = "tensorrt"

    def __init__(self, engine_path: str | Path, onnx_path: str | Path | None = None, use_cuda_graph: bool = False):
        trt, cudart = import_tensorrt(), import_cudart()
        self._cudart, engine_path = cudart, Path(engine_path)
        if not engine_path.is_file():
            raise BackendError(f"no TensorRT engine at {engine_path}: build it with `edge-fetal export tensorrt`")
        gpu = cuda_device()
        check_engine_manifest(read_engine_manifest(engine_path), trt_version=trt.__version__, gpu_name=gpu.name,
                              compute_capability=gpu.compute_capability, engine_sha256=sha256_of(engine_path),
                              onnx_sha256=sha256_of(onnx_path) if onnx_path else None)
        self._buffers: dict[str, tuple[PinnedArray, DeviceBuffer]] = {}
        self._stream = self._graph = None
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise BackendError(f"TensorRT could not deserialise {engine_path}: rebuild it with `edge-fetal export tensorrt`")
        try:
            self._context = self._engine.create_execution_context()
            self._stream = cuda_call(cudart, cudart.cudaStreamCreate())
            names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
            self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            missing = {"image", "seg_labels", "plane_logits"} - set(names)
            if missing:
                raise BackendError(f"{engine_path} lacks the tensors {sorted(missing)} of the model contract")
            max_shape = tuple(self._engine.get_tensor_profile_shape("image", 0)[2])
            self.max_batch, self._input_size = int(max_shape[0]), int(max_shape[-1])
            self._context.set_input_shape("image", max_shape)  # outputs now have their largest shapes
            for name in names:
                shape = tuple(self._context.get_tensor_shape(name))
                host = PinnedArray(cudart, shape, trt.nptype(self._engine.get_tensor_dtype(name)))
                self._buffers[name] = (host, DeviceBuffer(cudart, host.array.nbytes))
                self._context.set_tensor_address(name, self._buffers[name][1].ptr)
            self._batch = int(max_shape[0])
            if use_cuda_graph:
                self._graph = self._capture_batch_one()
        except BaseException:
            self.close()
            raise

    @property
    def input_size(self) -> int:
        return self._input_size

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        size = self._input_size
        if batch.ndim != 4 or batch.shape[1:] != (1, size, size) or batch.shape[0] < 1:
            raise BackendError(f"expected a float32 [N, 1, {size}, {size}] batch with N >= 1, got {batch.shape}")
        n = batch.shape[0]
        if n > self.max_batch:  # the engine's profile caps the batch: run it in slices
            parts = [self.infer(batch[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
            return ModelOutputs(np.concatenate([p.seg_labels for p in parts]), np.concatenate([p.plane_logits for p in parts]))
        np.copyto(self._buffers["image"][0].array[:n], batch, casting="same_kind")
        # The graph replays batch-1 kernels: only valid while the context's last run was batch 1 too.
        if n == 1 and self._graph is not None and self._batch == 1:
            cuda_call(self._cudart, self._cudart.cudaGraphLaunch(self._graph, self._stream))
        else:
            self._enqueue(n)
        cuda_call(self._cudart, self._cudart.cudaStreamSynchronize(self._stream))
        seg = self._buffers["seg_labels"][0].array[:n]
        logits = self._buffers["plane_logits"][0].array[:n]
        # Copies: the pinned buffers are overwritten by the next call.
        return ModelOutputs(seg.astype(np.uint8, copy=True), logits.astype(np.float32, copy=True))

    def _enqueue(self, n: int) -> None:
        """H2D, execute, D2H of the first `n` frames, queued on the stream (no sync)."""
        cudart = self._cudart
        if n != self._batch:
            self._context.set_input_shape("image", (n, *self._buffers["image"][0].array.shape[1:]))
            self._batch = n
        host, device = self._buffers["image"]
        cuda_call(cudart, cudart.cudaMemcpyAsync(device.ptr, host.ptr, host.array[:n].nbytes,
                                                 cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream))
        if not self._context.execute_async_v3(int(self._stream)):
            raise BackendError("TensorRT failed to run the engine (see its log above)")
        for name in self._outputs:
            host, device = self._buffers[name]
            cuda_call(cudart, cudart.cudaMemcpyAsync(host.ptr, device.ptr, host.array[:n].nbytes,
                                                     cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream))

    def _capture_batch_one(self):
        """Capture copies + execution of one frame as a CUDA graph (after one warm-up run, as TensorRT asks)."""
        cudart = self._cudart
        self._enqueue(1)
        cuda_call(cudart, cudart.cudaStreamSynchronize(self._stream))
        cuda_call(cudart, cudart.cudaStreamBeginCapture(self._stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
        try:
            self._enqueue(1)
        finally:
            graph = cuda_call(cudart, cudart.cudaStreamEndCapture(self._stream))
        try:
            return cuda_call(cudart, cudart.cudaGraphInstantiate(graph, 0))
        finally:
            cuda_call(cudart, cudart.cudaGraphDestroy(graph))

    def close(self) -> None:
        """Free the graph, buffers, stream, context and engine; safe to call twice."""
        cudart = self._cudart
        if self._graph is not None:
            cuda_call(cudart, cudart.cudaGraphExecDestroy(self._graph))
            self._graph = None
        for host, device in self._buffers.values():
            host.free()
            device.free()
        self._buffers = {}
        if self._stream is not None:
            cuda_call(cudart, cudart.cudaStreamDestroy(self._stream))
            self._stream = None
        self._context = self._engine = self._runtime = None
