"""Does a photo rank alike at any size, and is mild noise seen at every size?

Each photo at two sizes: its full-size file (the source as shipped, EXIF-oriented) and its ~1024-px level
photo (`references.prepare_eval_photos`), each clean and with Gaussian noise of sigma SIGMA (8-bit levels)
added at that size; all four copies as PNG. The questions, on a set of photos:
- size agreement: the SRCC across photos between the scores of their full-size and their 1024-px copies;
- noise seen: at each size, on how many photos the noisy copy scores strictly below the clean one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from scipy.stats import spearmanr

from dpiqa_cli.atomic import write_via

SIGMA = 6.0  # 8-bit levels
SIZES = ("full", "1024")


def _noisy(a: np.ndarray, name: str, size: str) -> np.ndarray:
    rng = np.random.default_rng([sum(name.encode()), len(size), 6])
    return np.clip(np.rint(a + rng.normal(0.0, SIGMA, a.shape)), 0, 255).astype(np.uint8)


def make_copies(source: Path, level_photo: Path, out: Path, name: str) -> dict[str, tuple[Path, Path]]:
    """{size: (clean, noisy)} PNGs in OUT for the full-size source and its 1024-px level photo."""
    out.mkdir(parents=True, exist_ok=True)
    copies = {}
    for size, path in (("full", source), ("1024", level_photo)):
        with Image.open(path) as im:
            a = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        pair = []
        for tag, arr in (("clean", a), ("noisy", _noisy(a.astype(np.float64), name, size))):
            dest = out / f"{name}_{size}_{tag}.png"
            if not dest.is_file():
                write_via(dest, lambda tmp, x=arr: Image.fromarray(x).save(tmp, format="PNG", compress_level=1))
            pair.append(dest)
        copies[size] = (pair[0], pair[1])
    return copies


def summarise(scores: dict[str, dict[str, tuple[float, float]]]) -> dict:
    """{photo: {size: (clean, noisy)}} -> the size agreement and, per size, the noisy copies ranked lower."""
    names = list(scores)
    full = [scores[n]["full"][0] for n in names]
    small = [scores[n]["1024"][0] for n in names]
    agree = float(spearmanr(full, small)[0]) if len(names) > 2 and np.ptp(full) and np.ptp(small) else 0.0
    lower = {size: sum(scores[n][size][1] < scores[n][size][0] for n in names) for size in SIZES}
    missed = {size: [n for n in names if not scores[n][size][1] < scores[n][size][0]] for size in SIZES}
    return {"photos": len(names), "size_srcc": agree, "noise_lower": lower, "noise_missed": missed,
            "mean_shift": float(np.mean(np.subtract(full, small))) if names else 0.0}


def table(results: dict[str, dict]) -> str:
    """One row per scorer (or view): size agreement, mean full - 1024 shift, noise seen at each size."""
    lines = ["| scorer | SRCC full vs 1024 px | mean shift full - 1024 | noise seen, full size | noise seen, 1024 px |",
             "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['size_srcc']:.3f} | {r['mean_shift']:+.4f} | {r['noise_lower']['full']}/{r['photos']} "
                     f"| {r['noise_lower']['1024']}/{r['photos']} |")
    return "\n".join(lines) + "\n"
