"""How a model sees one image: its view (`whole`, `patches`, `native`, `multiscale`; docs/design.md, "Views").
A checkpoint records its view, and training, validation, `score`, `bench`, ONNX and Ray scoring all cut
exactly these crops (S = the model's input size); an image's crops combine by their mean or, with
`combine="q25"`, their 25th percentile."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, decode_for, load_rgb
from dpiqa_cli.errors import DpiqaError

VIEWS = ("whole", "patches", "native", "multiscale")
COMBINE = ("mean", "q25")
DEFAULT_MAX_SIDE = 1024  # native: the working scale's longest side (KonIQ's in-the-wild photos are 1024 x 768)
MULTISCALE_MAX_SIDE = 4000  # multiscale: the detail crops' finest scale (a 12 MP photo's own pixels)
DETAIL_MIN_SCALE = 1.5  # multiscale: own pixels this much finer than the look get their own crops


def _spread(length: int, crop: int, n: int | None = None) -> list[int]:
    """Start positions of n crops (default ceil(length / crop): edge to edge) over [0, length), evenly spread."""
    n = max(1, math.ceil(length / crop)) if n is None else n
    return [0] if n == 1 else [round(i * (length - crop) / (n - 1)) for i in range(n)]


def _fit(width: int, height: int, long_side: int, crop: int) -> tuple[int, int]:
    """(width, height) scaled so the long side is at most `long_side` (never enlarged), then raised until the
    short side holds one crop."""
    scale = min(1.0, long_side / max(width, height))
    scale = max(scale, crop / min(width, height))
    return max(crop, round(width * scale)), max(crop, round(height * scale))


def _grid(n: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) with columns x rows = n, shaped like the image."""
    best = None
    for cols in range(1, n + 1):
        if n % cols == 0:
            rows = n // cols
            err = abs(math.log((width / cols) / (height / rows)))  # cells as square as possible
            best = min(best or (err, cols, rows), (err, cols, rows))
    return best[1], best[2]


@dataclass(frozen=True)
class Part:
    """One working scale of a view: the size the image is brought to and the top-left corners of its crops."""

    box: tuple[int, int]
    corners: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class View:
    name: str
    size: int  # side of every crop: the model's input size
    max_side: int | None = None  # native, multiscale: the finest working scale's long side (None: the default)
    combine_rule: str = "mean"  # how crop scores become the image's score (native, multiscale)
    look_side: int = 1024  # multiscale: the display scale's long side
    look_crops: int = 4  # multiscale: crops of the look at most
    native_crops: int = 2  # multiscale: crops at the image's own pixels
    native_weight: float = 0.5  # multiscale: the detail crops' share of the score

    def __post_init__(self):
        if self.name not in VIEWS:
            raise DpiqaError(f"unknown view {self.name!r}: {', '.join(VIEWS)}")
        if self.max_side is None:
            object.__setattr__(self, "max_side", MULTISCALE_MAX_SIDE if self.name == "multiscale" else DEFAULT_MAX_SIDE)
        if self.combine_rule not in COMBINE:
            raise DpiqaError(f"unknown crop combination {self.combine_rule!r}: {', '.join(COMBINE)}")
        if self.name in ("native", "multiscale") and self.max_side < self.size:
            raise DpiqaError(f"{self.name} view: max side {self.max_side} is under the crop size {self.size}")
        if self.name == "multiscale":
            if self.look_side < self.size or self.look_crops < 1 or self.native_crops < 0:
                raise DpiqaError(f"multiscale view: look side {self.look_side} under the crop size {self.size}, "
                                 f"or a crop count under 1 (look {self.look_crops}, native {self.native_crops})")
            if not 0.0 <= self.native_weight <= 1.0:
                raise DpiqaError(f"multiscale view: native weight {self.native_weight} is outside [0, 1]")

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """native: the size an image of (width, height) is decoded to before it is cut."""
        return _fit(width, height, self.max_side, self.size)

    def parts(self, width: int, height: int) -> list[Part]:
        """The working scales of an image of this size and their crops: one part, or for multiscale the look
        and (for an image finer than the look) its detail."""
        s = self.size
        if self.name == "whole":
            return [Part((s, s), ((0, 0),))]
        if self.name == "patches":
            return [Part((2 * s, 3 * s // 2), ((0, s // 4), (s, s // 4)))]
        if self.name == "native":
            w, h = self.working_size(width, height)
            return [Part((w, h), tuple((x, y) for y in _spread(h, s) for x in _spread(w, s)))]
        w, h = _fit(width, height, self.look_side, s)
        nx, ny = math.ceil(w / s), math.ceil(h / s)
        while nx * ny > self.look_crops:  # thin the longer axis first: a panorama keeps its whole length
            nx, ny = (nx - 1, ny) if nx >= ny else (nx, ny - 1)
        parts = [Part((w, h), tuple((x, y) for y in _spread(h, s, ny) for x in _spread(w, s, nx)))]
        dw, dh = _fit(width, height, self.max_side, s)
        if self.native_crops and max(dw, dh) >= DETAIL_MIN_SCALE * max(w, h):
            cols, rows = _grid(self.native_crops, dw, dh)
            xs = [min(max(0, round((i + 0.5) * dw / cols - s / 2)), dw - s) for i in range(cols)]
            ys = [min(max(0, round((j + 0.5) * dh / rows - s / 2)), dh - s) for j in range(rows)]
            parts.append(Part((dw, dh), tuple((x, y) for y in ys for x in xs)))
        return parts

    def layout(self, width: int, height: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
        """(the resize (width, height), the top-left corners of the S x S crops) of a one-scale view."""
        parts = self.parts(width, height)
        if len(parts) != 1:
            raise ValueError(f"the {self.name} view cuts crops at {len(parts)} scales for {width} x {height}")
        return parts[0].box, list(parts[0].corners)

    def n_crops(self, width: int, height: int) -> int:
        return sum(len(p.corners) for p in self.parts(width, height))

    def crops_per_image(self) -> int | None:
        """The number of crops when it does not depend on the image (None when it does)."""
        return None if self.name in ("native", "multiscale") else self.n_crops(self.size, self.size)

    def _rule(self, scores) -> float:
        if self.combine_rule == "q25":
            return float(np.quantile(np.asarray(scores, dtype=np.float64), 0.25))
        return float(np.mean(scores))

    def combine(self, scores: np.ndarray, size: tuple[int, int] | None = None) -> float:
        """One image's score from its crops' scores (in `parts` order); multiscale needs the image's size."""
        if self.name != "multiscale":
            return self._rule(scores)
        if size is None:
            raise ValueError("a multiscale view combines crops by the image's size")
        parts = self.parts(*size)
        look = self._rule(scores[:len(parts[0].corners)])
        if len(parts) == 1:
            return look
        return (1.0 - self.native_weight) * look + self.native_weight * self._rule(scores[len(parts[0].corners):])

    def to_config(self) -> dict:
        if self.name == "native":
            return {"name": self.name, "max_side": self.max_side, "combine": self.combine_rule}
        if self.name == "multiscale":
            return {"name": self.name, "max_side": self.max_side, "combine": self.combine_rule,
                    "look_side": self.look_side, "look_crops": self.look_crops,
                    "native_crops": self.native_crops, "native_weight": self.native_weight}
        return {"name": self.name}

    def label(self) -> str:
        """A few characters, for tables: `whole`, `native ≤1024 mean`, `multiscale 4+2 w0.5`."""
        if self.name == "native":
            return f"native ≤{self.max_side} {self.combine_rule}"
        if self.name == "multiscale":
            return f"multiscale {self.look_crops}+{self.native_crops} w{self.native_weight:g}"
        return self.name

    def describe(self) -> str:
        if self.name == "native":
            return f"native (long side <= {self.max_side}, {self.combine_rule} of {self.size} px crops)"
        if self.name == "multiscale":
            return (f"multiscale (look: long side {self.look_side}, <= {self.look_crops} crops; detail: "
                    f"{self.native_crops} crops at own pixels <= {self.max_side}, weight {self.native_weight:g}; "
                    f"{self.combine_rule} of {self.size} px crops)")
        return self.name


def view_from_config(config: dict, size: int) -> View:
    """The view a checkpoint (or ONNX) config records; older configs said `patches: true` or `view: "name"`."""
    v = config.get("view")
    if isinstance(v, dict):
        extra = {k: type_(v[k]) for k, type_ in (("look_side", int), ("look_crops", int), ("native_crops", int),
                                                 ("native_weight", float)) if k in v}
        max_side = v.get("max_side")
        return View(v.get("name", "whole"), int(size), None if max_side is None else int(max_side),
                    v.get("combine", "mean"), **extra)
    if isinstance(v, str):
        return View(v, int(size))
    return View("patches" if config.get("patches") else "whole", int(size))


def _cut(img: Image.Image, part: Part, s: int) -> list[np.ndarray]:
    """The part's crops from an image decoded at or above its working scale: a part covered by its crops is
    resized whole (integer box reduction first, then bilinear), a few crops each from its own region."""
    if img.size == part.box:
        a = np.asarray(img, dtype=np.uint8)
        return [a[y:y + s, x:x + s] for x, y in part.corners]
    fx, fy = img.width / part.box[0], img.height / part.box[1]
    if len(part.corners) * s * s >= part.box[0] * part.box[1] / 4:
        a = np.asarray(img.resize(part.box, Image.BILINEAR, reducing_gap=1.0), dtype=np.uint8)
        return [a[y:y + s, x:x + s] for x, y in part.corners]
    return [np.asarray(img.resize((s, s), Image.BILINEAR, box=(x * fx, y * fy, (x + s) * fx, (y + s) * fy)),
                       dtype=np.uint8) for x, y in part.corners]


def decode_views(path: str | os.PathLike, view: View, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 draft: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
    """(K x S x S x 3 uint8 crops of the view, original (width, height)); what the scoring loader ships."""
    s = view.size
    if view.name != "multiscale":
        layout = {}

        def box(w: int, h: int) -> tuple[int, int]:
            layout["box"], layout["corners"] = view.layout(w, h)
            return layout["box"]

        img, orig = load_rgb(path, box, max_pixels, draft)
        a = np.asarray(img, dtype=np.uint8)
        return np.stack([a[y:y + s, x:x + s] for x, y in layout["corners"]]), orig  # a writable copy
    # one decode, at the smallest JPEG DCT scale that holds the finest part
    img, orig = decode_for(path, lambda w, h: max((p.box for p in view.parts(w, h)), key=lambda b: b[0] * b[1]),
                           max_pixels, draft)
    return np.stack([c for part in view.parts(*orig) for c in _cut(img, part, s)]), orig
