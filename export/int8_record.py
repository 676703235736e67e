"""Whether the INT8 model ships, decided by measurements made here, recorded in the manifest.

    python -m export.int8_record --onnx engines/fetal_mtl.onnx --int8 engines/fetal_mtl_int8.onnx \\
        --hc18 ../shared/data/hc18 --sim-csv runs/simtest/biometry.csv

Times fp32 and INT8 in turns (ONNX Runtime CPU, batch 1, one thread per physical core), evaluates
both on the HC18 validation split and a simulated test set, applies `int8.int8_verdict`, and
writes the verdict with its figures as `int8` in the fp32 model's manifest.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from edge_fetal.bench.variants import Variant, interleave
from edge_fetal.calibration import TYPICAL_SOURCE_HW
from edge_fetal.engines import load_manifest, manifest_path, validation_subjects
from edge_fetal.evaluation.model_eval import evaluate_rows, summarise
from edge_fetal.evaluation.report import write_json_atomic
from edge_fetal.evaluation.samples import biometry_samples, hc18_samples
from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend, physical_cores
from export.int8 import int8_verdict


def interleaved_p50_ms(backends: dict, batch: np.ndarray, runs: int) -> dict[str, float]:
    """Median latency of each backend on `batch`, timed round-robin as `edge-fetal bench` does
    (`bench.variants.interleave`), so machine drift hits all alike."""
    variants = [Variant(name, "model", {}, backend.infer, [batch]) for name, backend in backends.items()]
    for variant in variants:
        variant.warm_up(5)
    interleave(variants, rounds=runs, iterations=1)
    return {variant.name: float(np.median(variant.times_ms)) for variant in variants}


def _figures(samples, backend) -> dict:
    evaluation = summarise(list(evaluate_rows(samples, backend)))
    return {"hc_mae_mm": evaluation.errors_shown["hc"].mae_mm, "plane_accuracy": evaluation.plane_accuracy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", default="engines/fetal_mtl.onnx")
    parser.add_argument("--int8", default="engines/fetal_mtl_int8.onnx")
    parser.add_argument("--hc18", default="../shared/data/hc18")
    parser.add_argument("--sim-csv", required=True, help="biometry.csv of a simulated test set (edge-fetal sim)")
    parser.add_argument("--runs", type=int, default=120)
    args = parser.parse_args(argv)

    hc18 = Path(args.hc18)
    real = hc18_samples(hc18 / "training_set_pixel_size_and_HC.csv", hc18 / "training_set",
                        validation_subjects(load_manifest(Path(args.onnx))))
    simulated = biometry_samples(args.sim_csv, Path(args.sim_csv).parent)
    with OnnxRuntimeBackend(args.onnx) as fp32, OnnxRuntimeBackend(args.int8) as int8:
        backends = {"fp32": fp32, "int8": int8}
        box = fp32.letterbox_for(TYPICAL_SOURCE_HW).model_hw  # what an 800x540 frame is fed as
        batch = np.random.default_rng(0).random((1, 1, *box), dtype=np.float32)
        p50 = interleaved_p50_ms(backends, batch, args.runs)
        real_figures = {name: _figures(real, b) for name, b in backends.items()}
        sim_figures = {name: _figures(simulated, b) for name, b in backends.items()}
    ship, reason = int8_verdict(real_figures["fp32"], real_figures["int8"], p50["fp32"], p50["int8"])
    record = {
        "shipped": ship, "date": datetime.date.today().isoformat(), "reason": reason,
        "timing": {"runtime": "ONNX Runtime CPU", "threads": physical_cores(), "batch": 1, "input_hw": list(box),
                   "interleaved_runs": args.runs, "p50_ms": {k: round(v, 2) for k, v in p50.items()}},
        "accuracy": {"hc18_validation": real_figures, "simulated_test": sim_figures,
                     "simulated_test_csv": args.sim_csv},
        "command": "python -m export.int8_record " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    path = manifest_path(Path(args.onnx))
    manifest = json.loads(path.read_text())
    manifest["int8"] = record
    write_json_atomic(path, manifest)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
