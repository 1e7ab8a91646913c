"""How a model sees one image: its view. A checkpoint records its view, and training, validation, `score`,
`bench` and ONNX scoring all cut exactly these crops.

- `whole`: the image resized to S x S, aspect ratio ignored (the authors' scoring; S = the model's input size).
- `patches`: the protocol for synthetic datasets, resized to 2S x 1.5S (1024 x 768 at 512) and cut into its
  left and right S x S halves, vertically centred.
An image's score is the mean of its crops' scores.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, load_rgb
from dpiqa_cli.errors import DpiqaError

VIEWS = ("whole", "patches")


@dataclass(frozen=True)
class View:
    name: str
    size: int  # side of every crop: the model's input size

    def __post_init__(self):
        if self.name not in VIEWS:
            raise DpiqaError(f"unknown view {self.name!r}: {' or '.join(VIEWS)}")

    def layout(self, width: int, height: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
        """(the resize (width, height), the top-left corners of the S x S crops) for an image of this size."""
        s = self.size
        if self.name == "whole":
            return (s, s), [(0, 0)]
        return (2 * s, 3 * s // 2), [(0, s // 4), (s, s // 4)]

    def crops_per_image(self) -> int | None:
        """The number of crops when it does not depend on the image (None when it does)."""
        return len(self.layout(self.size, self.size)[1])

    def combine(self, scores: np.ndarray) -> float:
        """One image's score from its crops' scores."""
        return float(np.mean(scores))

    def to_config(self) -> dict:
        return {"name": self.name}

    def describe(self) -> str:
        return self.name


def view_from_config(config: dict, size: int) -> View:
    """The view a checkpoint (or ONNX) config records; older configs said `patches: true` or `view: "name"`."""
    v = config.get("view")
    if isinstance(v, dict):
        return View(v.get("name", "whole"), int(size))
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
