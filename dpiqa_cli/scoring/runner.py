"""What every model runner of scoring is: uint8 crops in, numpy scores out, an image's score combining its
crops' scores as the model's view says. The runners: `scoring.torch_runner` (torch),
`scoring.onnx_graph` (ONNX Runtime) and `scoring.openvino_runner` (OpenVINO). Crops arrive as numpy arrays (decoded in this
process) or torch tensors (from DataLoader worker processes); this base needs neither torch nor a GPU."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dpiqa_cli.data.views import View
from dpiqa_cli.errors import DpiqaError


@dataclass
class Runner(ABC):
    """What the scoring pipeline needs from any backend."""

    runtime: ClassVar[str]  # what runs the model, as the run's summary names it

    name: str
    view: View
    mos_scale: dict | None
    default_batch: int
    precision: str = "fp32"
    chunk: int | None = None  # crops per forward pass (fixed, so a score never depends on its batch mates)
    calibration: dict | None = None  # a checkpoint's monotone map of image scores into (0, 1), see `calibrate`
    export_s: float = 0.0  # seconds this runner's start spent exporting its graph (first use of a checkpoint)

    @property
    def input_size(self) -> int:
        return self.view.size

    @abstractmethod
    def __call__(self, x) -> np.ndarray:  # N x 3 x S x S uint8 crops (numpy or torch) -> N scores
        """Each backend (torch, ONNX Runtime, OpenVINO) scores a batch of crops."""

    def set_batch(self, images: int) -> None:
        """Forward passes of `images` images' crops (one crop each where their number depends on the image)."""
        self.chunk = images * (self.view.crops_per_image() or 1)

    def padding(self, n: int) -> int:
        """How many zero crops to append to n: every forward gets `chunk` crops, so a score never depends on
        which images share its batch (kernels pick reduction orders by shape), and resumed, sharded and
        failure-thinned runs give bit-identical scores."""
        return max(0, self.chunk - n) if self.chunk else 0

    @staticmethod
    def numpy_crops(x) -> np.ndarray:
        """The crops as numpy: torch tensors come from DataLoader workers (a view of the same memory)."""
        return x if isinstance(x, np.ndarray) else x.numpy()

    def crop_scores(self, x) -> np.ndarray:
        """One score per crop, in forward passes of `chunk` crops."""
        step = self.chunk or len(x)
        return np.concatenate([self(x[i:i + step]) for i in range(0, len(x), step)])

    def score_images(self, x, counts: list[int], sizes: list[tuple[int, int]]) -> np.ndarray:
        """sum(counts) crops (image-major) of images of these original sizes -> one score per image, combined
        as the view says."""
        crops = self.crop_scores(x)
        ends = np.cumsum(counts)
        return calibrate(np.array([self.view.combine(crops[e - k:e], size) for k, e, size in zip(counts, ends, sizes)],
                                  dtype=np.float64), self.calibration)


def calibrate(scores: np.ndarray, calibration: dict | None) -> np.ndarray:
    """Image scores through the checkpoint's calibration: `logistic` is 1 / (1 + exp(-(a s + b))) with a > 0,
    strictly increasing, so it keeps every ranking and tie and maps any score into (0, 1); None keeps them."""
    if not calibration:
        return scores
    if calibration.get("kind") != "logistic" or not float(calibration.get("a", 0)) > 0:
        raise DpiqaError(f"unknown score calibration {calibration!r}; expected a logistic with a > 0")
    z = float(calibration["a"]) * np.asarray(scores, dtype=np.float64) + float(calibration["b"])
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic, without overflow for any z
