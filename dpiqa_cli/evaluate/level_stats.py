"""What the level-ranking benchmarks share: reading a photo, per-photo seeds, and the two questions asked of a
scorer's scores (does the score fall with the level; does the pristine copy beat a given level)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from scipy.stats import pearsonr, spearmanr

from dpiqa_cli import atomic
from dpiqa_cli.errors import DpiqaError

Scorer = Callable[[Sequence[Path]], Sequence[float]]
Key = tuple[str, str, int]  # (photo, type, level); the pristine copy is (photo, 'pristine', 0)


def photo_seed(photo: str) -> int:
    """A seed from the photo's name alone, so a photo gets the same random draws on every run and machine."""
    return int.from_bytes(hashlib.sha256(photo.encode("utf-8")).digest()[:8], "little")


def read_photo(photo: str, path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise DpiqaError(f"cannot read level photo {photo} ({path}): {exc}") from None


def save_copy(dest: Path, img: Image.Image, quality: int | None = None) -> Path:
    """Write one copy of a level set atomically: a JPEG at `quality`, else a lossless PNG."""
    if quality is None:
        atomic.write_via(dest, lambda tmp: img.save(tmp, format="PNG", compress_level=1))
    else:
        atomic.write_via(dest, lambda tmp: img.save(tmp, format="JPEG", quality=quality))
    return dest


def write_set(photos: dict[str, Path], out_dir: str | Path, types, levels, copy_of: Callable) -> dict[Key, Path]:
    """{(photo, type, level): file}: each photo's pristine copy (level 0, PNG) and, per type and level, the copy
    `copy_of(img, photo, type, level)` returns as (image, JPEG quality or None for a PNG)."""
    out = Path(out_dir)
    files: dict[Key, Path] = {}
    for photo, path in photos.items():
        img = read_photo(photo, path)
        files[(photo, "pristine", 0)] = save_copy(out / f"{photo}_pristine_0.png", img)
        for dtype in types:
            for level in levels:
                copy, quality = copy_of(img, photo, dtype, level)
                ext = "png" if quality is None else "jpg"
                files[(photo, dtype, level)] = save_copy(out / f"{photo}_{dtype}_{level}.{ext}", copy, quality)
    return files


def rank_corr(scores: Sequence[float], levels: Sequence[int]) -> tuple[float, float]:
    """SRCC and PLCC of the scores against -level. Equal scores for every level rank nothing: (0, 0), where
    scipy would give NaN."""
    if np.ptp(scores) == 0:
        return 0.0, 0.0
    neg = [-lv for lv in levels]
    return float(spearmanr(scores, neg)[0]), float(pearsonr(scores, neg)[0])


def per_type(scores: dict[Key, float], photos: Sequence[str], dtype: str, keys: Sequence[int]) -> dict:
    """Mean over the photos of rank_corr over the levels in `keys` (0: the pristine copy), and each photo's."""
    rows = {}
    for photo in photos:
        vals = [scores[(photo, "pristine", 0) if lv == 0 else (photo, dtype, lv)] for lv in keys]
        srcc, plcc = rank_corr(vals, keys)
        rows[photo] = {"srcc": srcc, "plcc": plcc}
    return {"srcc": float(np.mean([r["srcc"] for r in rows.values()])),
            "plcc": float(np.mean([r["plcc"] for r in rows.values()])), "per_photo": rows}


def pristine_wins(scores: dict[Key, float], photos: Sequence[str], types: Sequence[str], level: int) -> dict:
    """The (photo, type) cases where the pristine copy scores strictly above the level's copy (a tie is lost)."""
    cases = [(p, t) for p in photos for t in types]
    lost = [f"{p}/{t}" for p, t in cases if not scores[(p, "pristine", 0)] > scores[(p, t, level)]]
    wins = len(cases) - len(lost)
    return {"wins": wins, "cases": len(cases), "rate": wins / len(cases) if cases else 0.0, "lost": lost}


def combine_wins(*parts: dict) -> dict:
    """Several pristine_wins results counted as one."""
    wins, cases = sum(p["wins"] for p in parts), sum(p["cases"] for p in parts)
    return {"wins": wins, "cases": cases, "rate": wins / cases if cases else 0.0,
            "lost": [c for p in parts for c in p["lost"]]}
