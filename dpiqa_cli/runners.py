"""Model runners for scoring: uint8 batch in, numpy scores out (torch or onnxruntime).

Device and precision policy lives here: `--device auto` prefers CUDA, then MPS, then the CPU;
`--precision auto` is bf16 on CUDA (the student is insensitive to it, and it halves memory traffic)
and fp32 elsewhere (bf16 on the CPU is slower than fp32 on most CPUs without AMX).
"""
from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dpiqa_cli.errors import DpiqaError

log = logging.getLogger(__name__)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str = "auto", local_rank: int | None = None) -> torch.device:
    device = (device or "auto").lower()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank or 0)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise DpiqaError(f"--device must be auto, cpu, cuda, cuda:N or mps, not {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DpiqaError("--device cuda: no CUDA GPU is available to this PyTorch build")
        index = dev.index if dev.index is not None else (local_rank or 0)
        if index >= torch.cuda.device_count():
            raise DpiqaError(f"--device cuda:{index}: only {torch.cuda.device_count()} GPU(s) visible")
        return torch.device("cuda", index)
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DpiqaError("--device mps: MPS is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DpiqaError(f"--device must be auto, cpu, cuda[:N] or mps, not {device!r}")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    precision = (precision or "auto").lower()
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision not in DTYPES:
        raise DpiqaError(f"--precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise DpiqaError("--precision fp16 needs a GPU; on the CPU use fp32 (or bf16)")
    return precision


@dataclass
class Runner(ABC):
    """What score_paths needs from any backend."""

    name: str
    input_size: int
    mos_scale: dict | None
    default_batch: int
    meta: dict = field(default_factory=dict)  # identifies the model in resume metadata
    view: str = "whole"  # how the model sees an image (data.images.view_layout): whole or patches

    @property
    def views(self) -> int:
        """Crops per image in this runner's view."""
        from dpiqa_cli.data.images import view_layout

        return len(view_layout(self.input_size, self.view)[1])

    @abstractmethod
    def __call__(self, x: torch.Tensor) -> np.ndarray:  # N x 3 x S x S uint8 crops -> N scores
        """Each backend (torch, onnxruntime) scores a batch of crops."""

    def score_images(self, x: torch.Tensor) -> np.ndarray:
        """B*K crops (image-major) -> B image scores, the mean over each image's K crops."""
        return self(x).reshape(-1, self.views).mean(axis=1)


class TorchRunner(Runner):
    def __init__(self, loaded, device: torch.device, precision: str, compile: bool = False, name: str = ""):
        spec, config = loaded.spec, loaded.config
        big = spec.kind == "teacher"
        # CPU: small batches measured fastest at 512 px (activations stay in cache; BENCHMARKS.md)
        default = (16 if big else 64) if device.type == "cuda" else (1 if big else 2)
        size, view = int(config.get("input_size") or spec.input_size), "patches" if config.get("patches") else "whole"
        super().__init__(name or spec.name, size, config.get("mos_scale"), default,
                         {"model": name or spec.name, "sha256": config.get("sha256"), "input_size": size, "view": view},
                         view)
        self.device, self.precision, self.pad_to = device, precision, None
        # channels_last: faster with cuDNN, and measured 1.6-2x faster with oneDNN on the CPU too (BENCHMARKS.md)
        self.channels_last = device.type in ("cuda", "cpu")
        model = loaded.model.to(device).eval()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.eager = model
        self.model = torch.compile(model) if compile else model
        self.compiled = compile

    def _forward(self, model, x):
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=DTYPES[self.precision],
                                                    enabled=self.precision != "fp32"):
            score, _ = model(x)
        return score

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        n = len(x)
        if self.pad_to and n < self.pad_to:
            # Every batch gets the same shape, so a score never depends on which images share its batch
            # (kernels pick reduction orders by shape): resumed, sharded and failure-thinned runs then
            # give bit-identical scores, and torch.compile sees one static shape.
            x = torch.cat([x, x.new_zeros((self.pad_to - n,) + tuple(x.shape[1:]))])
        x = x.to(self.device, non_blocking=True)
        x = x.float().div_(255.0)  # keeps the channels_last strides the collate produced
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        try:
            score = self._forward(self.model, x)
        except Exception as exc:
            if not self.compiled:
                raise
            log.warning("torch.compile failed (%s); falling back to eager mode", str(exc).splitlines()[0][:200])
            self.model, self.compiled = self.eager, False
            score = self._forward(self.model, x)
        return score.float().reshape(len(x), -1)[:n, 0].cpu().numpy()


def make_runner(model, weights=None, device: torch.device | None = None, precision: str = "fp32",
                compile: bool = False) -> Runner:
    """A registry name, checkpoint, .onnx file or an already loaded `LoadedModel` -> Runner."""
    device = device or torch.device("cpu")
    if isinstance(model, (str, os.PathLike)) and Path(model).suffix.lower() == ".onnx":
        if weights is not None:
            raise DpiqaError("--weights cannot be used with an .onnx model (the weights are inside it)")
        from dpiqa_cli.onnx_export import OnnxRunner

        return OnnxRunner(Path(model), device)
    if hasattr(model, "model") and hasattr(model, "spec"):  # a LoadedModel (benchmarks reuse one)
        return TorchRunner(model, device, precision, compile)
    from dpiqa_cli.checkpoint import load_model

    loaded = load_model(str(model), weights, device="cpu")
    name = str(model) if weights is None else f"{model}:{weights}"
    return TorchRunner(loaded, device, precision, compile, name=name)
