"""TensorRT 10 backend: a serialized engine, page-locked host buffers, one owned CUDA stream.

The loop of TensorRT's `samples/python/common_runtime.py`: the engine's I/O tensors by name,
host and device memory allocated once for the optimisation profile's largest batch,
`set_tensor_address` once, then per call: async H2D, `execute_async_v3`, async D2H, one sync.
Batch 1 can replay a captured CUDA graph (fewer launches: it matters on a Jetson's small CPU).
An engine built from a fitted-box model (profile from stride² to S², manifest naming the stride)
takes each source's fitted box; its buffers are sized for the largest shape and used flat.
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
        manifest = read_engine_manifest(engine_path)
        check_engine_manifest(manifest, trt_version=trt.__version__, gpu_name=gpu.name,
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
            min_shape, opt_shape, max_shape = (tuple(int(v) for v in s) for s in self._engine.get_tensor_profile_shape("image", 0))
            self.max_batch, self._input_size = max_shape[0], max(max_shape[-2:])
            if min_shape[-2:] != max_shape[-2:]:
                self.input_stride = (manifest.get("profile") or {}).get("stride")
                if not self.input_stride:
                    raise BackendError(f"{engine_path} takes several input sizes but its manifest names no stride: "
                                       "rebuild it with `edge-fetal export tensorrt`")
            self._context.set_input_shape("image", max_shape)  # outputs now have their largest shapes
            for name in names:
                shape = tuple(self._context.get_tensor_shape(name))
                host = PinnedArray(cudart, shape, trt.nptype(self._engine.get_tensor_dtype(name)))
                self._buffers[name] = (host, DeviceBuffer(cudart, host.array.nbytes))
                self._context.set_tensor_address(name, self._buffers[name][1].ptr)
            self._shape = max_shape
            self._graph_shape = (1, 1, *opt_shape[-2:])
            self.warm_up()
            if use_cuda_graph:
                self._graph = self._capture(self._graph_shape)
        except BaseException:
            self.close()
            raise

    @property
    def input_size(self) -> int:
        return self._input_size

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        self.check_input(batch)
        n = batch.shape[0]
        if n > self.max_batch:  # the engine's profile caps the batch: run it in slices
            parts = [self.infer(batch[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
            return ModelOutputs(np.concatenate([p.seg_labels for p in parts]), np.concatenate([p.plane_logits for p in parts]))
        shape = tuple(batch.shape)
        np.copyto(self._host_view("image", shape), batch, casting="same_kind")
        # The graph replays the kernels of one shape: only valid while the context still runs that shape.
        if self._graph is not None and shape == self._graph_shape == self._shape:
            cuda_call(self._cudart, self._cudart.cudaGraphLaunch(self._graph, self._stream))
        else:
            self._enqueue(shape)
        cuda_call(self._cudart, self._cudart.cudaStreamSynchronize(self._stream))
        seg = self._host_view("seg_labels", (n, *shape[2:]))
        logits = self._buffers["plane_logits"][0].array[:n]
        # Copies: the pinned buffers are overwritten by the next call.
        return ModelOutputs(seg.astype(np.uint8, copy=True), logits.astype(np.float32, copy=True))

    def _host_view(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The first prod(shape) elements of a tensor's pinned buffer (sized for the largest shape), as `shape`."""
        return self._buffers[name][0].array.reshape(-1)[: int(np.prod(shape))].reshape(shape)

    def _enqueue(self, shape: tuple[int, ...]) -> None:
        """H2D, execute, D2H of an input of `shape`, queued on the stream (no sync)."""
        cudart = self._cudart
        if shape != self._shape:
            self._context.set_input_shape("image", shape)
            self._shape = shape
        host, device = self._buffers["image"]
        cuda_call(cudart, cudart.cudaMemcpyAsync(device.ptr, host.ptr, self._host_view("image", shape).nbytes,
                                                 cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream))
        if not self._context.execute_async_v3(int(self._stream)):
            raise BackendError("TensorRT failed to run the engine (see its log above)")
        for name in self._outputs:
            host, device = self._buffers[name]
            nbytes = self._host_view(name, tuple(self._context.get_tensor_shape(name))).nbytes
            cuda_call(cudart, cudart.cudaMemcpyAsync(host.ptr, device.ptr, nbytes,
                                                     cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream))

    def _capture(self, shape: tuple[int, ...]):
        """Capture copies + execution of one input shape as a CUDA graph (after one warm-up run, as TensorRT asks)."""
        cudart = self._cudart
        self._enqueue(shape)
        cuda_call(cudart, cudart.cudaStreamSynchronize(self._stream))
        cuda_call(cudart, cudart.cudaStreamBeginCapture(self._stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
        try:
            self._enqueue(shape)
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
