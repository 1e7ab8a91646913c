"""Classic no-reference metrics beside the model in the level benchmark: PIQE (pypiqe) and BRISQUE (brisque, its
LIVE-trained SVM), each a scorer `scorer(paths) -> scores` with higher = better, at the file's full resolution,
over worker processes. Both are optional (the `levels` extra)."""
from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from dpiqa_cli.errors import DpiqaError


def _pool_map(fn: Callable[[Path], float], paths: Sequence[Path], workers: int | None) -> list[float]:
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    if workers <= 1 or len(paths) < 2:
        return [fn(p) for p in paths]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, paths, chunksize=4))


def _piqe_one(path: Path) -> float:
    from pypiqe import piqe  # optional (the `levels` extra); checked in piqe_scorer

    with Image.open(path) as im:
        bgr = np.ascontiguousarray(np.asarray(im.convert("RGB"))[..., ::-1])
    return -float(piqe(bgr)[0])


def piqe_scorer(paths: Sequence[Path], workers: int | None = None) -> list[float]:
    """-PIQE (pypiqe) of each file at full resolution, higher = better, in `workers` processes (about a second
    per 1024-px image). pypiqe expects OpenCV's BGR order, so the RGB array is handed over reversed."""
    try:
        import pypiqe  # noqa: F401
    except ImportError:
        raise DpiqaError("PIQE needs pypiqe: pip install -e '.[levels]'") from None
    return _pool_map(_piqe_one, paths, workers)


@functools.lru_cache(maxsize=None)
def _brisque_model():
    """The package's BRISQUE with its bundled LIVE-trained SVM, loaded once per process. Its feature vector
    holds 1-element arrays among the floats (from a mean taken as a sum divided by a shape), which NumPy 2
    refuses to turn into floats when the features are scaled; the subclass makes every feature a float."""
    from brisque import BRISQUE

    class _Brisque(BRISQUE):
        def calculate_brisque_features(self, image, kernel_size=7, sigma=7 / 6):
            feats = super().calculate_brisque_features(image, kernel_size=kernel_size, sigma=sigma)
            return np.array([np.asarray(f, dtype=np.float64).item() for f in feats])

    return _Brisque(url=False)


def _brisque_one(path: Path) -> float:
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    return -float(_brisque_model().score(rgb))


def brisque_scorer(paths: Sequence[Path], workers: int | None = None) -> list[float]:
    """-BRISQUE (the `brisque` package, its LIVE-trained SVM) of each file at its full resolution; higher =
    better (BRISQUE: about 0 = best, 100 = worst). Each file is read as 8-bit RGB by Pillow; the package
    takes its luma (skimage's rgb2gray) and the half-scale copy itself. `workers` processes as piqe_scorer."""
    try:
        import brisque  # noqa: F401
        import cv2  # noqa: F401  (brisque needs OpenCV but does not require it; pypiqe brings it)
        import libsvm  # noqa: F401
    except ImportError:
        raise DpiqaError("BRISQUE needs brisque, libsvm-official and OpenCV: pip install -e '.[levels]'") from None
    return _pool_map(_brisque_one, paths, workers)
