"""Device and precision names, checked in one place for scoring and training.

`auto` device: CUDA, then MPS, then the CPU. `auto` precision: bf16 on CUDA (the student is insensitive to
it, and it halves memory traffic), fp32 elsewhere. fp16 needs a GPU (CUDA or MPS).
"""
from __future__ import annotations

import torch

from dpiqa_cli.errors import DpiqaError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_CHOICES = "auto, fp32, bf16 or fp16"


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(device: str = "auto") -> torch.device:
    device = (device or "auto").lower()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise DpiqaError(f"--device must be auto, cpu, cuda, cuda:N or mps, not {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DpiqaError("--device cuda: no CUDA GPU is available to this PyTorch build")
        index = dev.index if dev.index is not None else 0
        if index >= torch.cuda.device_count():
            raise DpiqaError(f"--device cuda:{index}: only {torch.cuda.device_count()} GPU(s) visible")
        return torch.device("cuda", index)
    if dev.type == "mps" and not _mps_available():
        raise DpiqaError("--device mps: MPS is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DpiqaError(f"--device must be auto, cpu, cuda[:N] or mps, not {device!r}")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    """fp32, bf16 or fp16 for this device; `auto` picks bf16 on CUDA and fp32 elsewhere."""
    precision = (precision or "auto").lower()
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision not in DTYPES:
        raise DpiqaError(f"--precision must be {PRECISION_CHOICES}, not {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise DpiqaError("--precision fp16 needs a GPU; on the CPU use fp32 or bf16")
    return precision
