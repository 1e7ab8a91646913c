"""How a model sees one image: its view. A checkpoint records its view, and training, validation, `score`,
`bench` and ONNX scoring all cut exactly these crops.

- `whole`: the image resized to S x S, aspect ratio ignored (the authors' scoring; S = the model's input size).
- `patches`: the protocol for synthetic datasets, resized to 2S x 1.5S (1024 x 768 at 512) and cut into its
  left and right S x S halves, vertically centred.
- `native`: S x S crops at the image's own pixel scale, so noise, fine blur and 8x8 JPEG blocks reach the
  model as they are (a whole-image resize averages them away). The working scale is the image's own
  pixels, downscaled only when its long side exceeds `max_side` (then to exactly `max_side`), and raised
  when its short side is under S (then to exactly S: an image smaller than a crop is upscaled to fill one).
  A grid of ceil(W / S) x ceil(H / S) crops covers the working-scale image deterministically: evenly
  spread, edge to edge, overlapping where S does not divide the side. A 1024 x 768 photo gives 2 x 2 crops,
  a 24 MP photo (6000 x 4000) is decoded at that scale (JPEG draft, a 1/4 DCT scaling) and also gives
  2 x 2, and a 512 x 512 image one crop.
An image's score combines its crops' scores: their mean, or with `combine="q25"` their 25th percentile
(a defect in part of the photo then weighs more).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, load_rgb
from dpiqa_cli.errors import DpiqaError

VIEWS = ("whole", "patches", "native")
COMBINE = ("mean", "q25")
DEFAULT_MAX_SIDE = 1024  # native: the working scale's longest side (KonIQ's in-the-wild photos are 1024 x 768)


def _spread(length: int, crop: int) -> list[int]:
    """Start positions of ceil(length / crop) crops covering [0, length), evenly spread, edge to edge."""
    n = max(1, math.ceil(length / crop))
    return [0] if n == 1 else [round(i * (length - crop) / (n - 1)) for i in range(n)]


@dataclass(frozen=True)
class View:
    name: str
    size: int  # side of every crop: the model's input size
    max_side: int = DEFAULT_MAX_SIDE  # native only
    combine_rule: str = "mean"  # how crop scores become the image's score (native only)

    def __post_init__(self):
        if self.name not in VIEWS:
            raise DpiqaError(f"unknown view {self.name!r}: {', '.join(VIEWS)}")
        if self.combine_rule not in COMBINE:
            raise DpiqaError(f"unknown crop combination {self.combine_rule!r}: {', '.join(COMBINE)}")
        if self.name == "native" and self.max_side < self.size:
            raise DpiqaError(f"native view: max side {self.max_side} is under the crop size {self.size}")

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """native: the size an image of (width, height) is decoded to before it is cut."""
        s = self.size
        scale = min(1.0, self.max_side / max(width, height))
        scale = max(scale, s / min(width, height))
        return max(s, round(width * scale)), max(s, round(height * scale))

    def layout(self, width: int, height: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
        """(the resize (width, height), the top-left corners of the S x S crops) for an image of this size."""
        s = self.size
        if self.name == "whole":
            return (s, s), [(0, 0)]
        if self.name == "patches":
            return (2 * s, 3 * s // 2), [(0, s // 4), (s, s // 4)]
        w, h = self.working_size(width, height)
        return (w, h), [(x, y) for y in _spread(h, s) for x in _spread(w, s)]

    def crops_per_image(self) -> int | None:
        """The number of crops when it does not depend on the image (None when it does)."""
        return None if self.name == "native" else len(self.layout(self.size, self.size)[1])

    def combine(self, scores: np.ndarray) -> float:
        """One image's score from its crops' scores."""
        if self.combine_rule == "q25":
            return float(np.quantile(np.asarray(scores, dtype=np.float64), 0.25))
        return float(np.mean(scores))

    def to_config(self) -> dict:
        if self.name != "native":
            return {"name": self.name}
        return {"name": self.name, "max_side": self.max_side, "combine": self.combine_rule}

    def label(self) -> str:
        """A few characters, for tables: `whole`, `patches`, `native ≤1024 mean`."""
        return f"native ≤{self.max_side} {self.combine_rule}" if self.name == "native" else self.name

    def describe(self) -> str:
        if self.name != "native":
            return self.name
        return f"native (long side <= {self.max_side}, {self.combine_rule} of {self.size} px crops)"


def view_from_config(config: dict, size: int) -> View:
    """The view a checkpoint (or ONNX) config records; older configs said `patches: true` or `view: "name"`."""
    v = config.get("view")
    if isinstance(v, dict):
        return View(v.get("name", "whole"), int(size), int(v.get("max_side", DEFAULT_MAX_SIDE)),
                    v.get("combine", "mean"))
    if isinstance(v, str):
        return View(v, int(size))
    return View("patches" if config.get("patches") else "whole", int(size))


def decode_views(path: str | os.PathLike, view: View, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 draft: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
    """(K x S x S x 3 uint8 crops of the view, original (width, height)); what the scoring loader ships."""
    s = view.size
    layout = {}

    def box(w: int, h: int) -> tuple[int, int]:
        layout["box"], layout["corners"] = view.layout(w, h)
        return layout["box"]

    img, orig = load_rgb(path, box, max_pixels, draft)
    a = np.asarray(img, dtype=np.uint8)
    return np.stack([a[y:y + s, x:x + s] for x, y in layout["corners"]]), orig  # a writable copy
