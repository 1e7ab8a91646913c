"""Scoring: paths -> decode -> runner (torch, ONNX Runtime) -> writer (sidecar, ranked file, errors) -> report."""
