"""Model runners for scoring: uint8 crops in, numpy scores out. `TorchRunner` here; the ONNX Runtime one is in
`scoring.onnx`. Both follow the model's view: an image's score combines its crops' scores."""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch

from dpiqa_cli.data.views import View
from dpiqa_cli.device import DTYPES

log = logging.getLogger(__name__)


@dataclass
class Runner(ABC):
    """What the scoring pipeline needs from any backend."""

    name: str
    view: View
    mos_scale: dict | None
    default_batch: int
    meta: dict = field(default_factory=dict)  # identifies the model in resume metadata
    precision: str = "fp32"
    chunk: int | None = None  # crops per forward pass (fixed, so a score never depends on its batch mates)

    @property
    def input_size(self) -> int:
        return self.view.size

    @abstractmethod
    def __call__(self, x: torch.Tensor) -> np.ndarray:  # N x 3 x S x S uint8 crops -> N scores
        """Each backend (torch, onnxruntime) scores a batch of crops."""

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """x with zero crops appended up to `chunk`: every forward gets the same shape, so a score never depends
        on which images share its batch (kernels pick reduction orders by shape), and resumed, sharded and
        failure-thinned runs give bit-identical scores."""
        n = len(x)
        if not self.chunk or n >= self.chunk:
            return x
        return torch.cat([x, x.new_zeros((self.chunk - n,) + tuple(x.shape[1:]))])

    def score_images(self, x: torch.Tensor, counts: list[int]) -> np.ndarray:
        """sum(counts) crops (image-major) -> one score per image, combined as the view says."""
        step = self.chunk or len(x)
        crops = np.concatenate([self(x[i:i + step]) for i in range(0, len(x), step)])
        ends = np.cumsum(counts)
        return np.array([self.view.combine(crops[e - k:e]) for k, e in zip(counts, ends)], dtype=np.float64)


class TorchRunner(Runner):
    def __init__(self, loaded, device: torch.device, precision: str, compile: bool = False, name: str = ""):
        spec, config = loaded.spec, loaded.config
        big = spec.kind == "teacher"
        # CPU: small batches measured fastest at 512 px (activations stay in cache; BENCHMARKS.md)
        default = (16 if big else 64) if device.type == "cuda" else (1 if big else 2)
        view = loaded.view
        super().__init__(name or spec.name, view, config.get("mos_scale"), default,
                         {"model": name or spec.name, "sha256": config.get("sha256"), "input_size": view.size,
                          "view": view.describe()}, precision)
        self.device = device
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
        x = self.padded(x)  # torch.compile then also sees one static shape
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
