"""Level-ranking benchmark: does a scorer rank the same photo's distorted copies by strength?

Gaussian blur, white noise and JPEG at 5 levels plus the pristine copy, per photo; the content is fixed, so
the score should fall as the level rises (docs/design.md, "The level benchmark"). A scorer is any callable
`scorer(paths) -> scores`, higher = better; `families=("classic", "camera")` adds the camera defects.

    run_level_bench(photos, {"model": score_fn, "PIQE": piqe_scorer}, out_dir)  # levels.json, levels.md
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter

from dpiqa_cli import atomic
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate import camera_levels as camera
from dpiqa_cli.evaluate.level_stats import Key, Scorer, combine_wins, per_type, photo_seed, pristine_wins, write_set
from dpiqa_cli.evaluate.nr_metrics import brisque_scorer, piqe_scorer  # noqa: F401  (the scorers to compare with)

TYPES = ("blur", "noise", "jpeg")
LEVELS = (1, 2, 3, 4, 5)
BLUR_SIGMA = (1.0, 2.0, 3.0, 5.0, 8.0)  # Gaussian sigma, px
NOISE_SIGMA = (0.02, 0.04, 0.07, 0.11, 0.16)  # on [0, 1], per channel
JPEG_QUALITY = (40, 20, 12, 7, 3)  # Pillow quality
PRISTINE_LEVEL = 3
FAMILIES = ("classic", "camera")  # TYPES at LEVELS; camera.CAMERA_TYPES at camera.CAMERA_LEVELS


def _noise_rng(photo: str, level: int) -> np.random.Generator:
    return np.random.default_rng([photo_seed(photo), level])


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
    def copy_of(img, photo, dtype, level):
        if dtype == "jpeg":
            return img, JPEG_QUALITY[level - 1]
        return distort(img, dtype, level, photo), None

    return write_set(photos, out_dir, TYPES, LEVELS, copy_of)


def summarise(scores: dict[Key, float], photos: Sequence[str]) -> dict:
    """Per type: per-photo and mean SRCC/PLCC of score vs -level; and pristine > level 3."""
    return {"photos": list(photos), "per_type": {t: per_type(scores, photos, t, LEVELS) for t in TYPES},
            "pristine_vs_level3": pristine_wins(scores, photos, TYPES, PRISTINE_LEVEL)}


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


def level_tables(summaries: dict[str, dict]) -> str:
    """Every table for run_level_bench's summaries: the classic one (markdown_table) if they hold it; the
    camera types' SRCC and PLCC (camera_markdown_table) if they hold those, the SRCC one with the pristine
    rate over all types when both families are there."""
    first = next(iter(summaries.values()), {})
    parts = []
    if "per_type" in first:
        parts.append(markdown_table(summaries))
    if "camera" in first:
        cams = {n: s["camera"] for n, s in summaries.items()}
        both = {n: s["pristine_all"] for n, s in summaries.items()} if "pristine_all" in first else None
        parts.append(camera.camera_markdown_table(cams, "srcc", pristine_all=both))
        parts.append(camera.camera_markdown_table(cams, "plcc"))
    return "\n".join(parts)


def run_level_bench(photos: dict[str, Path], scorers: dict[str, Scorer], out_dir: str | Path,
                    families: Sequence[str] = ("classic",)) -> dict[str, dict]:
    """Distort the photos into OUT/images, score them with every scorer (one call per scorer), write
    OUT/levels.json and OUT/levels.md; returns {scorer: summary}. With both families, "pristine_all" is the
    pristine rate over every type."""
    families = tuple(families)
    if not families or any(f not in FAMILIES for f in families):
        raise DpiqaError(f"level families must be among {', '.join(FAMILIES)}, not {', '.join(families) or 'none'}")
    out = Path(out_dir)
    files: dict[Key, Path] = {}
    if "classic" in families:
        files.update(write_level_set(photos, out / "images"))
    if "camera" in families:
        files.update(camera.write_camera_set(photos, out / "images"))
    names = list(photos)
    scores = {name: score_set(files, fn) for name, fn in scorers.items()}
    summaries: dict[str, dict] = {}
    for name, s in scores.items():
        summaries[name] = summarise(s, names) if "classic" in families else {"photos": names}
        if "camera" in families:
            summaries[name]["camera"] = camera.summarise_camera(s, names)
        if len(families) == 2:
            summaries[name]["pristine_all"] = combine_wins(
                summaries[name][f"pristine_vs_level{PRISTINE_LEVEL}"],
                summaries[name]["camera"][f"pristine_vs_level{camera.CAMERA_PRISTINE_LEVEL}"])
    info: dict = {"photos": names}
    if "classic" in families:
        info.update({"types": TYPES, "levels": LEVELS, "strengths": {
            "blur_sigma_px": BLUR_SIGMA, "noise_sigma": NOISE_SIGMA, "jpeg_quality": JPEG_QUALITY}})
    if "camera" in families:
        info.update({"camera_types": camera.CAMERA_TYPES, "camera_levels": camera.CAMERA_LEVELS,
                     "camera_strengths": camera.CAMERA_STRENGTHS})
    atomic.write_json(out / "levels.json", {
        **info, "summaries": summaries,
        "scores": {name: [{"photo": k[0], "type": k[1], "level": k[2], "file": files[k].name, "score": v}
                          for k, v in s.items()] for name, s in scores.items()},
    })
    atomic.write_text(out / "levels.md", f"Level ranking on {len(names)} photos (mean per-photo SRCC/PLCC of "
                                         f"score vs -level)\n\n{level_tables(summaries)}")
    return summaries
