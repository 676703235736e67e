"""CUDA memory the TensorRT backend owns: device buffers, page-locked host arrays, the device identity.

Small owning classes (the pattern of TensorRT's `samples/python/common_runtime.py`): allocate in
the constructor, release in `free()`; nothing is freed by `__del__`. cuda-python is imported here
and in `tensorrt_backend.py` only, and only when called.
"""

from __future__ import annotations

import ctypes

import numpy as np

from edge_fetal.errors import BackendError
from edge_fetal.runtime.engine_manifest import GpuIdentity

NO_CUDA_PYTHON = "cuda-python is not installed here: the TensorRT backend needs it (pip install 'edge-fetal[gpu]')"


def import_cudart():
    """The CUDA runtime bindings of cuda-python (`cuda.bindings.runtime` in 12.6+, `cuda.cudart` before)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise BackendError(NO_CUDA_PYTHON) from None
    return cudart


def cuda_call(cudart, result):
    """Unpack a cuda-python `(error, *values)` tuple, raising on any error."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        raise BackendError(f"CUDA call failed: {cudart.cudaGetErrorString(error)[1].decode()}")
    return values[0] if len(values) == 1 else (tuple(values) or None)


def cuda_device() -> GpuIdentity:
    """Name and compute capability of the current CUDA device; BackendError when there is none."""
    cudart = import_cudart()
    try:
        device = cuda_call(cudart, cudart.cudaGetDevice())
        props = cuda_call(cudart, cudart.cudaGetDeviceProperties(device))
    except BackendError as error:
        raise BackendError(f"no usable CUDA GPU here ({error})") from None
    name = props.name.split(b"\0")[0].decode() if isinstance(props.name, bytes) else str(props.name)
    return GpuIdentity(name, f"{props.major}.{props.minor}")


class DeviceBuffer:
    """`nbytes` of device memory, owned: `free()` releases it."""

    def __init__(self, cudart, nbytes: int):
        self._cudart, self.nbytes = cudart, nbytes
        self.ptr = cuda_call(cudart, cudart.cudaMalloc(nbytes))

    def free(self) -> None:
        if self.ptr:
            cuda_call(self._cudart, self._cudart.cudaFree(self.ptr))
            self.ptr = 0


class PinnedArray:
    """A page-locked host array (fast, async copies), owned: `free()` releases it."""

    def __init__(self, cudart, shape: tuple[int, ...], dtype: np.dtype):
        self._cudart, dtype = cudart, np.dtype(dtype)
        count = int(np.prod(shape))
        self.ptr = cuda_call(cudart, cudart.cudaMallocHost(count * dtype.itemsize))
        pointer = ctypes.cast(self.ptr, ctypes.POINTER(np.ctypeslib.as_ctypes_type(dtype)))
        self.array = np.ctypeslib.as_array(pointer, (count,)).view(dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            self.array = None
            cuda_call(self._cudart, self._cudart.cudaFreeHost(self.ptr))
            self.ptr = 0
