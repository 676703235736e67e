"""Offline conversion of the trained network: torch → ONNX (verified), INT8, TensorRT FP16."""
