#!/usr/bin/env bash
# One check for a CUDA machine (a Jetson, or any NVIDIA GPU with PyTorch+CUDA): the GPU tests,
# then a model latency table (torch FP32/FP16; TensorRT and ONNX Runtime GPU where installed),
# then the bundled real frames measured on the GPU (torch, with the shipped torch weights or the
# checkpoint given) and on the CPU (the shipped ONNX) side by side, and the demo through torch on the GPU.
# Finishes in 10 minutes at most (each step has its own timeout); writes only inside the repository:
#   benchmarks/results/gpu_<gpu-name>_<date>.json   (kept)
#   benchmarks/results/_scratch_*                    (removed at the end)
# Usage: benchmarks/gpu_check.sh [--checkpoint runs/NAME/best.pt]   (PYTHON=... to pick the interpreter;
#        without --checkpoint, torch runs the shipped torch weights)
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON="$(command -v python3 || command -v python)"; fi
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
SCRATCH="$REPO/benchmarks/results/_scratch_check_$$"
mkdir -p "$SCRATCH"
trap 'rm -rf "$SCRATCH"' EXIT

echo "== machine"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
"$PYTHON" -c 'import cv2; from edge_fetal.stream.gstreamer import on_jetson, opencv_has_gstreamer; print("opencv", cv2.__version__, "gstreamer", opencv_has_gstreamer(), "jetson", on_jetson())'

echo "== GPU tests (pytest -m gpu)"
timeout 150 "$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider --continue-on-collection-errors --basetemp "$SCRATCH/pytest" tests/
tests_status=$?

echo "== latency"
timeout 150 "$PYTHON" benchmarks/gpu_latency.py --budget-s 100 "$@"
bench_status=$?

checkpoint=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [[ "${args[i]}" == "--checkpoint" ]] && checkpoint="${args[i + 1]:-}"
done
agreement_status=0
torch_model=()  # default: the shipped ONNX, whose manifest names its torch weights (engines/fetal_mtl.pt)
[[ -n "$checkpoint" ]] && torch_model=(--model "$checkpoint")
echo "== the bundled real HC18 frames: torch (the GPU when there is one) against the shipped ONNX on the CPU"
frames=edge_fetal/assets/hc18
for backend in torch onnxruntime; do
    model=()
    [[ "$backend" == torch ]] && model=("${torch_model[@]}")
    timeout 90 "$PYTHON" -m edge_fetal.cli eval --csv "$frames/hc18_examples.csv" --images "$frames" --per-image \
        --backend "$backend" "${model[@]}" --json "$SCRATCH/eval_$backend.json" || agreement_status=1
done
echo "== the demo through torch (the GPU when there is one)"
timeout 120 "$PYTHON" -m edge_fetal.cli demo --backend torch "${torch_model[@]}" --out "$SCRATCH/demo" || agreement_status=1
"$PYTHON" -c 'import json, sys; print("the demo recording was encoded by", json.load(open(sys.argv[1]))["stream"]["video_encoder"])' \
    "$SCRATCH/demo/report.json" || agreement_status=1

echo "== done: tests exit $tests_status, latency exit $bench_status, agreement and demo exit $agreement_status"
exit $(( tests_status != 0 || bench_status != 0 || agreement_status != 0 ))
