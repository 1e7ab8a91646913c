"""Generated photos and scores files for the gallery tests (no third-party images)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

HOSTILE = "<img src=x onerror=alert(1)>.jpg"
HOSTILE_FAILED = "<script>window.__pwned=1</script>&amp;.png"


def photo(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth colour field with a few discs and some noise: thumbnails look like something."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3)
    slope = rng.uniform(-0.6, 0.6, (2, 3))
    img = base + x[..., None] * slope[0] + y[..., None] * slope[1]
    for _ in range(3):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.3) * min(w, h)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img += rng.normal(0, rng.uniform(0, 25), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n photos in `folder`, in several formats and colour modes, one of them with the hostile name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = int(rng.integers(160, 420)), int(rng.integers(120, 320))
        a = photo(rng, w, h)
        kind = i % 6
        name = HOSTILE if i == 3 else f"photo_{i:03d}.{'png' if kind in (1, 4) else 'jpg'}"
        p = folder / name
        if kind == 1:  # RGBA PNG: composited onto white
            Image.fromarray(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]), "RGBA").save(p)
        elif kind == 2:  # CMYK JPEG
            Image.fromarray(a).convert("CMYK").save(p, quality=90)
        elif kind == 4:  # 16-bit greyscale PNG
            Image.fromarray(a[..., 0].astype(np.uint16) * 257).save(p)
        elif kind == 5:  # EXIF orientation 6: stored landscape, shown portrait
            exif = Image.Exif()
            exif[0x0112] = 6
            Image.fromarray(a).save(p, quality=90, exif=exif)
        else:
            Image.fromarray(a).save(p, quality=90)
        paths.append(p)
    return paths


def write_scores(paths: list[Path], out: Path, seed: int = 0, mos: bool = True,
                 failed: dict[str, str] | None = None) -> pd.DataFrame:
    """A ranked table as `dpiqa score` writes it (scores drawn at random), plus `<stem>.errors.csv`."""
    rng = np.random.default_rng(seed + 1)
    scores = rng.uniform(0.05, 0.98, len(paths))
    rows = []
    for p, s in zip(paths, scores):
        with Image.open(p) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
        rows.append((str(p.resolve()), float(s), w, h))
    df = pd.DataFrame(rows, columns=["path", "score", "width", "height"])
    df = df.sort_values(["score", "path"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    if mos:
        df["mos"] = 1 + 4 * df["score"]
    suffix = out.suffix.lower()
    if suffix == ".csv":
        df.to_csv(out, index=False)
    elif suffix == ".jsonl":
        df.to_json(out, orient="records", lines=True, double_precision=15)
    else:
        df.to_parquet(out, index=False)
    if failed:
        pd.DataFrame(sorted(failed.items()), columns=["path", "reason"]).to_csv(
            out.with_name(out.stem + ".errors.csv"), index=False)
    return df


def three_failures(folder: Path) -> dict[str, str]:
    return {str(folder / "broken.jpg"): "truncated or corrupt image data (image file is truncated)",
            str(folder / "notes.txt"): "not an image (unrecognised format)",
            str(folder / HOSTILE_FAILED): "empty file (0 bytes)"}
