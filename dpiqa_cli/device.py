"""Device and precision names, checked in one place for scoring and training, and how many cores a run uses.

`auto`: CUDA, then MPS, then the CPU; bf16 on CUDA, fp32 elsewhere. `device_name` answers without importing
torch where the answer can only be the CPU, so that ONNX Runtime scoring and the core never load it.
"""
from __future__ import annotations

import os
import re
import sys

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.extras import installed, require

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CHOICES = "auto, fp32, bf16 or fp16"
# Where torch's CUDA (NVIDIA, or AMD's ROCm build) could find a GPU on Linux: the kernel drivers' nodes.
_GPU_DRIVER_NODES = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd")


def torch_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def device_type(device) -> str:
    """'cpu', 'cuda' or 'mps' of a torch.device or a name such as 'cuda:1'."""
    return str(device).split(":")[0]


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def _no_gpu_possible() -> bool:
    """Linux with no GPU kernel driver: torch could only say 'cpu'."""
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _GPU_DRIVER_NODES)


def device_name(device: str = "auto") -> str:
    """The device `resolve_device` picks, as a name ('cpu', 'cuda:0', 'mps'); torch is imported only when the
    answer could be a GPU."""
    name = (device or "auto").lower()
    if name == "cpu" or (name == "auto" and _no_gpu_possible()):
        return "cpu"
    if not installed("torch", ("torch",)):  # the core install: GPUs are reached through torch
        if name == "auto":
            return "cpu"
        if not re.fullmatch(r"cuda(:\d+)?|mps", name):
            raise DpiqaError(f"--device must be auto, cpu, cuda, cuda:N or mps, not {device!r}")
        require("torch", f"--device {device}", ("torch",))
    return str(resolve_device(name))


def resolve_device(device: str = "auto"):
    """The torch.device for a --device value (auto, cpu, cuda, cuda:N, mps); a clear error if it is absent."""
    import torch

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


def resolve_precision(precision: str, device) -> str:
    """fp32, bf16 or fp16 for this device (a torch.device or its name); `auto` picks bf16 on CUDA, else fp32."""
    precision = (precision or "auto").lower()
    kind = device_type(device)
    if precision == "auto":
        return "bf16" if kind == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise DpiqaError(f"--precision must be {PRECISION_CHOICES}, not {precision!r}")
    if precision == "fp16" and kind == "cpu":
        raise DpiqaError("--precision fp16 needs a GPU; on the CPU use fp32 or bf16")
    return precision


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(device) -> int:
    """Decoding processes for a run on `device` (0: a thread of this process)."""
    cpus = usable_cpus()
    if device_type(device) == "cpu":
        # Up to 4 cores, decoding in a thread of this process (`prefetch`) measured faster than a worker
        # process and needs no second copy of torch in memory (BENCHMARKS.md, "CPU runtime").
        return 0 if cpus <= 4 else min(4, cpus // 4)
    return max(1, min(8, cpus - 1))
