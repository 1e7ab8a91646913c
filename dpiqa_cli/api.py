"""The Python API: `create_scorer(model)` -> a callable that scores images in memory or on disk with the
same crops, runner and calibration as `dpiqa score`."""
from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS
from dpiqa_cli.device import device_name
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.scoring.backend import prepare_runner
from dpiqa_cli.scoring.decode import Decoded, collate, decode_item
from dpiqa_cli.scoring.options import ScoreOptions

KINDS = "a path, a PIL image, a uint8 H x W x 3 array or a float 3 x H x W tensor in [0, 1]"


class Scorer:
    """Scores one image (-> float) or a list of them (-> list of floats); higher is better.

    Accepts a path (decoded exactly as `dpiqa score` decodes it), a PIL image (its EXIF orientation
    applied, any mode), a uint8 H x W x 3 RGB numpy array, or a float 3 x H x W torch tensor in [0, 1]
    (quantised to 8 bits, as a decoded photo is). A path and the same file opened with PIL score the same,
    except a large JPEG, which `dpiqa score` decodes at a reduced DCT scale.
    """

    def __init__(self, options: ScoreOptions):
        self.resolved = options.resolve()
        self.runner, self.batch_size = prepare_runner(self.resolved, options, device_name(options.device))
        self.max_pixels = options.max_pixels

    @property
    def view(self):
        """The crops the model sees of each image (`data.views.View`)."""
        return self.runner.view

    @property
    def model_name(self) -> str:
        return self.resolved.name

    @property
    def lower_better(self) -> bool:
        return self.resolved.lower_better

    @property
    def score_range(self) -> tuple[float, float]:
        return self.resolved.score_range

    @property
    def runtime(self) -> str:
        return self.runner.runtime

    def __repr__(self) -> str:
        return f"Scorer({self.model_name!r}, view={self.view.label()!r}, runtime={self.runtime!r})"

    def __call__(self, images):
        single = not isinstance(images, Sequence) or isinstance(images, (str, bytes))
        items = [images] if single else list(images)
        scores: list[float] = []
        for start in range(0, len(items), self.batch_size):
            decoded = [self._decode(start + j, x) for j, x in enumerate(items[start:start + self.batch_size])]
            batch = collate([d._replace(index=j) for j, d in enumerate(decoded)])
            scores += [float(s) for s in self.runner.score_images(batch.x, batch.counts, batch.sizes)]
        return scores[0] if single else scores

    def _decode(self, i: int, image) -> Decoded:
        source, what = _source(image, i)
        item = decode_item(i, source, self.runner.view, self.max_pixels)
        if item.error is not None:
            raise DpiqaError(f"{what}: {item.error}")
        return item


def _source(image, i: int):
    """(what `decode_item` reads for `image`, how an error names it): a path as it is, in-memory images as
    a lossless TIFF in memory, so that they go through the very decoding a file does."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image), os.fspath(image)
    what = f"image {i}"
    if type(image).__module__.startswith("torch"):
        image = _tensor_to_array(image, what)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DpiqaError(f"{what}: a numpy image must be uint8 H x W x 3 (RGB), not {image.dtype} "
                             f"{' x '.join(map(str, image.shape))}")
        from PIL import Image

        image = Image.fromarray(np.ascontiguousarray(image), "RGB")
    if hasattr(image, "getexif") and hasattr(image, "save"):  # a PIL image
        from PIL import ImageOps

        buf = io.BytesIO()
        keyed = image.mode in ("P", "PA") or "transparency" in image.info  # PNG keeps palette transparency
        try:
            ImageOps.exif_transpose(image).save(buf, format="PNG" if keyed else "TIFF", compress_level=1)
        except (OSError, ValueError) as exc:
            raise DpiqaError(f"{what}: cannot use a {image.mode} PIL image ({exc})") from None
        return buf, what
    raise DpiqaError(f"{what}: expected {KINDS}, not {type(image).__name__}")


def _tensor_to_array(t, what: str) -> np.ndarray:
    """A float 3 x H x W tensor in [0, 1] -> uint8 H x W x 3, rounded to the nearest level."""
    if not t.is_floating_point() or t.ndim != 3 or t.shape[0] != 3:
        raise DpiqaError(f"{what}: a tensor image must be float 3 x H x W in [0, 1], not {t.dtype} "
                         f"{' x '.join(map(str, t.shape))}")
    a = t.detach().to("cpu").float().numpy()
    if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
        raise DpiqaError(f"{what}: a tensor image must hold values in [0, 1]")
    return np.rint(a * 255.0).astype(np.uint8).transpose(1, 2, 0)


def create_scorer(model: str = "student", weights=None, *, runtime: str = "auto", device: str = "auto",
                  precision: str = "auto", max_side: int | None = None, batch_size: int | None = None,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Scorer:
    """A scorer of `model`: a registry name (`student`, the bundled default), a checkpoint or an .onnx file.
    `runtime`, `device`, `precision`, `max_side` and `max_pixels` are those of `dpiqa score`, and so are
    the scores (the same view, crops and calibration). For example:

        from dpiqa_cli import create_scorer
        scorer = create_scorer("student")               # or a .safetensors checkpoint, or an .onnx graph
        print(scorer("photo.jpg"))                      # one path, PIL image, uint8 array or tensor -> float
        print(scorer(["a.jpg", "b.png"]))               # a list -> a list of floats
        print(scorer.lower_better, scorer.score_range)  # False (0.0, 1.0): higher is better
    """
    return Scorer(ScoreOptions(model=model, weights=weights, runtime=runtime, device=device, precision=precision,
                               max_side=max_side, batch_size=batch_size, max_pixels=max_pixels))
