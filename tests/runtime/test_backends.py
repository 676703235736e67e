"""Every backend keeps the same contract: same frames → same names, dtypes, shapes and (nearly) values.

`BackendConformance` holds the tests; each backend subclasses it with a `backend` fixture and its
tolerances against ONNX Runtime on the CPU (the reference). GPU subclasses skip cleanly here.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_fetal.errors import BackendError
from edge_fetal.runtime.backend import ModelOutputs
from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend, physical_cores
from edge_fetal.runtime.torch_backend import TorchBackend

SIZE = 64


@pytest.fixture(scope="module")
def reference(request, frames) -> ModelOutputs:
    """ONNX Runtime on the CPU; eager torch on the CPU where onnx/onnxruntime are not installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        with TorchBackend(request.getfixturevalue("tiny_checkpoint")) as backend:
            return backend.infer(frames)
    with OnnxRuntimeBackend(request.getfixturevalue("tiny_onnx"), providers=["CPUExecutionProvider"], threads=1) as backend:
        return backend.infer(frames)


@pytest.fixture
def ort_cpu(tiny_onnx):
    pytest.importorskip("onnxruntime")
    return tiny_onnx


class BackendConformance:
    """Subclasses provide a `backend` fixture (yield an open backend) and their tolerances."""

    label_agreement = 0.999  # fraction of equal labels vs the reference
    logits_atol = 1e-4

    def test_outputs_follow_the_contract(self, backend, frames):
        outputs = backend.infer(frames)
        assert isinstance(outputs, ModelOutputs)
        assert outputs.seg_labels.dtype == np.uint8 and outputs.seg_labels.shape == (4, SIZE, SIZE)
        assert outputs.plane_logits.dtype == np.float32 and outputs.plane_logits.shape == (4, 4)
        assert outputs.seg_labels.max() <= 3
        assert np.isfinite(outputs.plane_logits).all()
        assert backend.input_size == SIZE

    def test_agrees_with_onnxruntime_on_the_cpu(self, backend, frames, reference):
        outputs = backend.infer(frames)
        assert (outputs.seg_labels == reference.seg_labels).mean() >= self.label_agreement
        np.testing.assert_allclose(outputs.plane_logits, reference.plane_logits, atol=self.logits_atol, rtol=0)

    def test_one_frame_alone_matches_it_in_a_batch(self, backend, frames):
        whole = backend.infer(frames)
        alone = backend.infer(frames[2:3])
        assert (alone.seg_labels[0] == whole.seg_labels[2]).mean() >= self.label_agreement
        np.testing.assert_allclose(alone.plane_logits[0], whole.plane_logits[2], atol=self.logits_atol, rtol=0)

    def test_outputs_are_not_overwritten_by_the_next_call(self, backend, frames):
        first = backend.infer(frames[:1])
        kept = (first.seg_labels.copy(), first.plane_logits.copy())
        backend.infer(frames[3:4])
        again = backend.infer(frames[:1])
        np.testing.assert_array_equal(first.seg_labels, kept[0])
        np.testing.assert_array_equal(first.plane_logits, kept[1])
        np.testing.assert_array_equal(again.seg_labels, kept[0])

    def test_close_twice_is_harmless(self, backend):
        backend.close()
        backend.close()


class TestOnnxRuntimeCPU(BackendConformance):
    label_agreement, logits_atol = 1.0, 0.0

    @pytest.fixture
    def backend(self, ort_cpu):
        with OnnxRuntimeBackend(ort_cpu, providers=["CPUExecutionProvider"], threads=1) as backend:
            yield backend


class TestTorchCPU(BackendConformance):
    """Eager torch against the exported graph: the ONNX export is faithful."""

    @pytest.fixture
    def backend(self, tiny_checkpoint):
        with TorchBackend(tiny_checkpoint, device="cpu") as backend:
            yield backend


# --- GPU: skipped cleanly without CUDA ------------------------------------------------------------

def _require_torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU")


def _require_tensorrt():
    pytest.importorskip("tensorrt")
    from edge_fetal.runtime.cuda_memory import cuda_device

    try:
        cuda_device()
    except BackendError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def tiny_engine(tiny_onnx, tmp_path_factory):
    _require_tensorrt()
    from export.tensorrt_build import build_engine

    return build_engine(tiny_onnx, tmp_path_factory.mktemp("engine") / "tiny.engine", fp16=True, max_batch=4,
                        workspace_mb=256, log=lambda _line: None)


@pytest.mark.gpu
class TestTorchCUDA(BackendConformance):
    label_agreement, logits_atol = 0.99, 5e-2  # FP16

    @pytest.fixture
    def backend(self, tiny_checkpoint):
        _require_torch_cuda()
        with TorchBackend(tiny_checkpoint, device="cuda") as backend:
            yield backend


@pytest.mark.gpu
class TestOnnxRuntimeCUDA(BackendConformance):
    label_agreement, logits_atol = 0.995, 1e-2  # TF32 convolutions

    @pytest.fixture
    def backend(self, tiny_onnx):
        onnxruntime = pytest.importorskip("onnxruntime")
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            pytest.skip("onnxruntime-gpu (CUDAExecutionProvider) is not installed")
        with OnnxRuntimeBackend(tiny_onnx, providers=["CUDAExecutionProvider", "CPUExecutionProvider"]) as backend:
            yield backend


@pytest.mark.gpu
class TestTensorRT(BackendConformance):
    label_agreement, logits_atol = 0.99, 5e-2  # FP16 body, FP32 plane head
    use_cuda_graph = False

    @pytest.fixture
    def backend(self, tiny_engine, tiny_onnx):
        from edge_fetal.runtime.tensorrt_backend import TensorRTBackend

        with TensorRTBackend(tiny_engine, onnx_path=tiny_onnx, use_cuda_graph=self.use_cuda_graph) as backend:
            yield backend

    def test_more_frames_than_the_profile_run_in_slices(self, backend, frames):
        many = np.concatenate([frames, frames[:2]])  # 6 > max batch 4
        outputs = backend.infer(many)
        assert outputs.seg_labels.shape == (6, SIZE, SIZE)
        np.testing.assert_array_equal(outputs.seg_labels[4:], outputs.seg_labels[:2])


@pytest.mark.gpu
class TestTensorRTCudaGraph(TestTensorRT):
    use_cuda_graph = True


# --- backend-specific behaviour ---------------------------------------------------------------------

def test_onnxruntime_refuses_a_provider_it_lacks_instead_of_falling_back(ort_cpu):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    with pytest.raises(BackendError, match="CUDAExecutionProvider"):
        OnnxRuntimeBackend(ort_cpu, providers=["CUDAExecutionProvider"])


def test_onnxruntime_says_which_provider_it_chose(ort_cpu):
    lines = []
    with OnnxRuntimeBackend(ort_cpu, log=lines.append) as backend:
        assert backend.providers[0] in lines[0]
    assert len(lines) == 1 and "best of the available" in lines[0]


def test_onnxruntime_uses_one_thread_per_physical_core():
    assert 1 <= physical_cores() <= (__import__("os").cpu_count() or 1)


def test_torch_backend_refuses_an_onnx_file(tiny_onnx):
    with pytest.raises(BackendError, match="checkpoint"):
        TorchBackend(tiny_onnx)


def test_torch_backend_refuses_fp16_on_the_cpu(tiny_checkpoint):
    with pytest.raises(BackendError, match="CUDA"):
        TorchBackend(tiny_checkpoint, device="cpu", fp16=True)


def _count_warm_ups(monkeypatch) -> list[tuple[int, int]]:
    """Record the source size of every `Backend.warm_up` call (and still run it)."""
    from edge_fetal.runtime.backend import Backend

    calls, original = [], Backend.warm_up
    monkeypatch.setattr(Backend, "warm_up", lambda self, *args: calls.append(args) or original(self, *args))
    return calls


def test_torch_warms_up_on_cuda_only(tiny_checkpoint, monkeypatch):
    """The CPU has no start-up cost worth a call; a GPU's first call would stall the first live frame."""
    calls = _count_warm_ups(monkeypatch)
    with TorchBackend(tiny_checkpoint, device="cpu"):
        assert calls == []


@pytest.mark.gpu
def test_torch_on_cuda_has_run_the_model_once_when_it_opens(tiny_checkpoint, monkeypatch):
    _require_torch_cuda()
    calls = _count_warm_ups(monkeypatch)
    with TorchBackend(tiny_checkpoint, device="cuda"):
        assert calls == [()]


@pytest.mark.gpu
def test_torch_on_cuda_runs_every_call_on_its_own_thread(tiny_checkpoint, frames):
    """torch plans cuDNN per thread: a call from a new caller thread must not plan again."""
    import threading

    _require_torch_cuda()
    with TorchBackend(tiny_checkpoint, device="cuda") as backend:
        seen, run = [], backend._run
        backend._run = lambda batch: seen.append(threading.current_thread().name) or run(batch)
        caller = threading.Thread(target=backend.infer, args=(frames[:1],))
        caller.start()
        caller.join()
        backend.infer(frames[:1])
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0].startswith("edge-fetal-torch-cuda")


def test_onnxruntime_threads_sleep_between_calls(ort_cpu):
    """Spinning intra-op threads would take the cores that measuring and rendering need."""
    from edge_fetal.runtime.onnxruntime_backend import SPINNING_KEY

    with OnnxRuntimeBackend(ort_cpu, providers=["CPUExecutionProvider"]) as backend:
        assert backend._session.get_session_options().get_session_config_entry(SPINNING_KEY) == "0"


# --- Fitted boxes: a model exported with symbolic H, W takes each source's smallest input ----

@pytest.fixture(scope="module")
def fitted_onnx(tiny_model, tmp_path_factory):
    pytest.importorskip("onnx")
    from export.onnx_export import export_onnx

    return export_onnx(tiny_model[0], tmp_path_factory.mktemp("fitted") / "fitted.onnx", SIZE, input_stride=16)


def test_a_fitted_box_model_runs_the_box_of_each_source(fitted_onnx, tiny_model):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    with OnnxRuntimeBackend(fitted_onnx, providers=["CPUExecutionProvider"], threads=1) as backend:
        assert (backend.input_size, backend.input_stride) == (SIZE, 16)
        assert backend.letterbox_for((540, 800)).model_hw == (48, 64)  # not 64x64: no padding rows
        assert backend.letterbox_for((800, 540)).model_hw == (64, 48)
        batch = np.random.default_rng(1).random((2, 1, 48, 64), dtype=np.float32)
        outputs = backend.infer(batch)
        with torch.no_grad():
            expected = tiny_model[0](torch.from_numpy(batch))[0].argmax(dim=1).numpy()
        assert outputs.seg_labels.shape == (2, 48, 64)
        assert (outputs.seg_labels == expected).mean() >= 0.999
        with pytest.raises(BackendError, match="multiples of 16"):
            backend.infer(np.zeros((1, 1, 40, 64), np.float32))
        with pytest.raises(BackendError, match="up to 64"):
            backend.infer(np.zeros((1, 1, 48, 80), np.float32))


def test_warm_up_runs_the_box_that_a_typical_frame_will_use(fitted_onnx, ort_cpu):
    """Warming up another shape would leave a GPU's per-shape start-up to the first live frame."""
    shapes = []
    for path in (fitted_onnx, ort_cpu):
        with OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"], threads=1) as backend:
            backend.infer = lambda batch: shapes.append(batch.shape)
            backend.warm_up()
            backend.warm_up((800, 540))
    assert shapes == [(1, 1, 48, 64), (1, 1, 64, 48), (1, 1, SIZE, SIZE), (1, 1, SIZE, SIZE)]


def test_a_square_model_refuses_a_fitted_box(ort_cpu):
    with OnnxRuntimeBackend(ort_cpu, providers=["CPUExecutionProvider"], threads=1) as backend:
        assert backend.input_stride is None and backend.letterbox_for((540, 800)).model_hw == (SIZE, SIZE)
        with pytest.raises(BackendError, match=r"\[N, 1, 64, 64\]"):
            backend.infer(np.zeros((1, 1, 48, 64), np.float32))


def test_symbolic_input_without_its_geometry_is_refused(fitted_onnx, tmp_path):
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(fitted_onnx))
    kept = [p for p in graph.metadata_props if not p.key.startswith("input_")]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    stripped = tmp_path / "stripped.onnx"
    onnx.save(graph, str(stripped))
    with pytest.raises(BackendError, match="input_size / input_stride"):
        OnnxRuntimeBackend(stripped, providers=["CPUExecutionProvider"], threads=1)


def test_torch_backend_takes_fitted_boxes_only_when_told(tiny_model):
    pytest.importorskip("torch")
    batch = np.zeros((1, 1, 48, 64), np.float32)
    assert TorchBackend.from_model(tiny_model[0], SIZE, input_stride=16).infer(batch).seg_labels.shape == (1, 48, 64)
    with pytest.raises(BackendError, match=r"\[N, 1, 64, 64\]"):
        TorchBackend.from_model(tiny_model[0], SIZE).infer(batch)
