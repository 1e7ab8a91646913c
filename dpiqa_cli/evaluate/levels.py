"""Level-ranking benchmark: does a scorer rank the same photo's distorted copies by strength?

Each photo gets Gaussian blur, Gaussian white noise and JPEG at 5 levels (the strengths below), plus the
pristine copy (type 'pristine', level 0). Content is held fixed and the level is the only variable, so
per photo and type the score should fall as the level rises:

- per type: SRCC and PLCC between score and -level over the 5 copies, for each photo, then the mean over
  the photos. A scorer that gives one photo's 5 copies the same score has no ranking there: its SRCC and
  PLCC count as 0 for that photo (scipy would give NaN).
- pristine > level 3: the (photo, type) cases where the undistorted photo scores strictly higher than its
  level-3 copy (a tie is lost).

A scorer is any callable `scorer(paths) -> scores`, higher = better; `piqe_scorer` is PIQE and `brisque_scorer`
BRISQUE (dpiqa_cli.evaluate.nr_metrics). The strengths are in pixels of the photo as given, so results compare
only at a stated size (the default model's level photos are about 1024 px on the long side). Noise is seeded
per photo and level (the same files every run).

    run_level_bench(photos, {"model": score_fn, "PIQE": piqe_scorer}, out_dir)  # levels.json, levels.md
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter
from scipy.stats import pearsonr, spearmanr

from dpiqa_cli import atomic
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.nr_metrics import brisque_scorer, piqe_scorer  # noqa: F401  (the scorers to compare with)

TYPES = ("blur", "noise", "jpeg")
LEVELS = (1, 2, 3, 4, 5)
BLUR_SIGMA = (1.0, 2.0, 3.0, 5.0, 8.0)  # Gaussian sigma, px
NOISE_SIGMA = (0.02, 0.04, 0.07, 0.11, 0.16)  # on [0, 1], per channel
JPEG_QUALITY = (40, 20, 12, 7, 3)  # Pillow quality
PRISTINE_LEVEL = 3

Scorer = Callable[[Sequence[Path]], Sequence[float]]
Key = tuple[str, str, int]  # (photo, type, level)


def _noise_rng(photo: str, level: int) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(photo.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, level])


def distort(img: Image.Image, dtype: str, level: int, photo: str) -> Image.Image:
    """The distorted copy (blur or noise); JPEG is made by saving, see write_level_set."""
    k = level - 1
    if dtype == "blur":
        return img.filter(ImageFilter.GaussianBlur(BLUR_SIGMA[k]))
    if dtype == "noise":
        a = np.asarray(img, dtype=np.float64) / 255.0
        a = a + _noise_rng(photo, level).normal(0.0, NOISE_SIGMA[k], a.shape)
        return Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8))
    raise ValueError(f"unknown distortion {dtype!r}")


def write_level_set(photos: dict[str, Path], out_dir: str | Path) -> dict[Key, Path]:
    """{(photo, type, level): file} for every photo: the pristine copy and 3 types x 5 levels.
    JPEG copies are the .jpg files themselves; the others are lossless PNG."""
    out = Path(out_dir)
    files: dict[Key, Path] = {}
    for photo, path in photos.items():
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (OSError, ValueError) as exc:
            raise DpiqaError(f"cannot read level photo {photo} ({path}): {exc}") from None
        files[(photo, "pristine", 0)] = out / f"{photo}_pristine_0.png"
        atomic.write_via(files[(photo, "pristine", 0)], lambda tmp: img.save(tmp, format="PNG", compress_level=1))
        for dtype in TYPES:
            for level in LEVELS:
                if dtype == "jpeg":
                    dest = out / f"{photo}_jpeg_{level}.jpg"
                    atomic.write_via(dest, lambda tmp, q=JPEG_QUALITY[level - 1]: img.save(tmp, format="JPEG", quality=q))
                else:
                    dest = out / f"{photo}_{dtype}_{level}.png"
                    copy = distort(img, dtype, level, photo)
                    atomic.write_via(dest, lambda tmp, c=copy: c.save(tmp, format="PNG", compress_level=1))
                files[(photo, dtype, level)] = dest
    return files


def _corr(scores: list[float]) -> tuple[float, float]:
    if np.ptp(scores) == 0:
        return 0.0, 0.0
    neg = [-lv for lv in LEVELS]
    return float(spearmanr(scores, neg)[0]), float(pearsonr(scores, neg)[0])


def summarise(scores: dict[Key, float], photos: Sequence[str]) -> dict:
    """Per type: per-photo and mean SRCC/PLCC of score vs -level; and pristine > level 3."""
    out: dict = {"photos": list(photos), "per_type": {}}
    for dtype in TYPES:
        rows = {}
        for photo in photos:
            srcc, plcc = _corr([scores[(photo, dtype, lv)] for lv in LEVELS])
            rows[photo] = {"srcc": srcc, "plcc": plcc}
        out["per_type"][dtype] = {"srcc": float(np.mean([r["srcc"] for r in rows.values()])),
                                  "plcc": float(np.mean([r["plcc"] for r in rows.values()])),
                                  "per_photo": rows}
    cases = [(p, t) for p in photos for t in TYPES]
    lost = [f"{p}/{t}" for p, t in cases if not scores[(p, "pristine", 0)] > scores[(p, t, PRISTINE_LEVEL)]]
    out["pristine_vs_level3"] = {"wins": len(cases) - len(lost), "cases": len(cases),
                                 "rate": (len(cases) - len(lost)) / len(cases) if cases else 0.0, "lost": lost}
    return out


def score_set(files: dict[Key, Path], scorer: Scorer) -> dict[Key, float]:
    keys = list(files)
    scores = list(scorer([files[k] for k in keys]))
    if len(scores) != len(keys):
        raise DpiqaError(f"the scorer returned {len(scores)} scores for {len(keys)} images")
    return {k: float(s) for k, s in zip(keys, scores)}


def markdown_table(summaries: dict[str, dict]) -> str:
    """Type, then SRCC and PLCC for each scorer; last row: pristine > level 3."""
    names = list(summaries)
    head = "| type | " + " | ".join(f"{n} SRCC | {n} PLCC" for n in names) + " |"
    rule = "|---|" + "---:|---:|" * len(names)
    lines = [head, rule]
    for dtype in TYPES:
        cells = [f"{summaries[n]['per_type'][dtype]['srcc']:.3f} | {summaries[n]['per_type'][dtype]['plcc']:.3f}"
                 for n in names]
        lines.append(f"| {dtype} | " + " | ".join(cells) + " |")
    wins = [summaries[n]["pristine_vs_level3"] for n in names]  # in the SRCC column; the PLCC cell stays empty
    lines.append(f"| pristine > level {PRISTINE_LEVEL} |"
                 + "".join(f" {w['wins']}/{w['cases']} ({100 * w['rate']:.0f} %) |  |" for w in wins))
    return "\n".join(lines) + "\n"


def run_level_bench(photos: dict[str, Path], scorers: dict[str, Scorer], out_dir: str | Path) -> dict[str, dict]:
    """Distort the photos into OUT/images, score them with every scorer, write OUT/levels.json (summaries
    and every score) and OUT/levels.md (the table); returns {scorer name: summary}."""
    out = Path(out_dir)
    files = write_level_set(photos, out / "images")
    names = list(photos)
    scores = {name: score_set(files, fn) for name, fn in scorers.items()}
    summaries = {name: summarise(s, names) for name, s in scores.items()}
    atomic.write_json(out / "levels.json", {
        "photos": names, "types": TYPES, "levels": LEVELS,
        "strengths": {"blur_sigma_px": BLUR_SIGMA, "noise_sigma": NOISE_SIGMA, "jpeg_quality": JPEG_QUALITY},
        "summaries": summaries,
        "scores": {name: [{"photo": k[0], "type": k[1], "level": k[2], "file": files[k].name, "score": v}
                          for k, v in s.items()] for name, s in scores.items()},
    })
    table = markdown_table(summaries)
    atomic.write_text(out / "levels.md", f"Level ranking on {len(names)} photos (mean per-photo SRCC/PLCC of "
                                         f"score vs -level)\n\n{table}")
    return summaries
