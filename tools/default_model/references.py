"""Synth references (512x512 pristine crops) from the train and val photos, and whole level photos.

References (`make_references`), per photo:
1. Artefact-free first: the photo's scales are all at most its long side / `downscale` (the manifest's
   factor from artefacts.py: at least 2 for camera-size files, more where 8x8 blocking survives 2x).
2. Several scales: long side SCALES = 2048, 1536, 1024, 768 px, each capped at the artefact-free long side
   and never upscaled; raised where needed so the short side holds one crop; a scale over MIN_STEP (0.8x)
   of the previous kept one is dropped, as it would add the same content again. Each scale is one Lanczos
   resize of the source file.
3. Evenly spread positions: crops from edge to edge, at most `stride` px apart (default STRIDE = 256, half
   a crop: the train photos are few, so each gives many overlapping views).
4. Near-featureless crops are skipped: split the crop's luma into 32x32 blocks, take each block's mean
   absolute difference between neighbouring pixels (rows and columns, 0-255 scale); the crop is kept when
   the 90th percentile of the blocks reaches MIN_DETAIL = 1.5, i.e. at least a tenth of it has structure.
   Pure bokeh, blank walls, fog and clear sky fall below (checked by eye on the train and val crops);
   a smooth crop and its blurred copy look alike, so they may teach that blur costs nothing: one run that
   kept them (the card's history) ranked blur far worse on the val photos.
5. At most `max_per_photo` crops per photo (None: all), kept evenly over the photo's crop list.
Everything is deterministic: same photos and arguments, same files.

Level photos (`prepare_eval_photos`): the whole val or test photo, one Lanczos resize of the source to
`long_side` (default 1024) or to its artefact-free long side if that is smaller, as PNG.

    python -m tools.default_model.references OUT [--cache DIR] [--stride PX] [--train-max N] [--val-max N]

writes OUT/train/ and OUT/val/, each with its PNGs and references.csv.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dpiqa_cli.atomic import write_stream, write_via
from dpiqa_cli.errors import DpiqaError
from tools.default_model.manifest import load_manifest

CROP = 512
SCALES = (2048, 1536, 1024, 768)
MIN_STEP = 0.8
STRIDE = 256
DETAIL_BLOCK, DETAIL_PERCENTILE, MIN_DETAIL = 32, 90, 1.5
TRAIN_MAX_PER_PHOTO, VAL_MAX_PER_PHOTO = 4, 2  # no photo dominates; ~400 train references from 102 photos
REF_COLUMNS = ("ref", "photo", "split", "scale", "x", "y", "detail")
# PNGs are written with compress_level=1: lossless all the same, and several times faster to encode


def load_rgb(path: str | Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")  # greyscale to three equal channels; the RGBA sources are fully opaque


def detail(img: Image.Image, block: int = DETAIL_BLOCK, percentile: float = DETAIL_PERCENTILE) -> float:
    """The `percentile` of the per-block mean absolute neighbour difference of the luma (0-255)."""
    y = np.asarray(img.convert("L"), dtype=np.float32)
    g = (np.abs(np.diff(y, axis=1))[:-1, :] + np.abs(np.diff(y, axis=0))[:, :-1]) / 2
    ny, nx = g.shape[0] // block, g.shape[1] // block
    blocks = g[:ny * block, :nx * block].reshape(ny, block, nx, block).mean(axis=(1, 3))
    return float(np.percentile(blocks, percentile))


def scale_sizes(width: int, height: int, downscale: int, scales=SCALES, crop: int = CROP) -> list[tuple[int, int]]:
    """(w, h) of each scale of a width x height source whose artefact-free factor is `downscale`."""
    long0, short0 = max(width, height), min(width, height)
    cap = long0 // downscale
    sizes: list[tuple[int, int]] = []
    for target in scales:
        long = min(target, cap)
        if round(long * short0 / long0) < crop:
            long = math.ceil(crop * long0 / short0)
            if long > cap:
                continue
        if sizes and long > MIN_STEP * max(sizes[-1]):
            continue
        short = max(crop, round(long * short0 / long0))
        sizes.append((long, short) if width >= height else (short, long))
    return sizes


def positions(length: int, stride: int = STRIDE, crop: int = CROP) -> list[int]:
    """Crop offsets from edge to edge, at most `stride` apart; one crop is centred."""
    n = 1 + max(0, math.ceil((length - crop) / stride))
    return [(length - crop) // 2] if n == 1 else [round(p) for p in np.linspace(0, length - crop, n)]


def _evenly(items: list, k: int | None) -> list:
    if k is None or len(items) <= k:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def photo_crops(photo: str, src: Image.Image, downscale: int, scales=SCALES, stride: int = STRIDE,
                min_detail: float = MIN_DETAIL, max_per_photo: int | None = None) -> list[tuple[dict, Image.Image]]:
    """[(row, crop)] for one photo, by steps 2-5 of the module docstring."""
    kept = []
    for w, h in scale_sizes(src.width, src.height, downscale, scales):
        img = src.resize((w, h), Image.Resampling.LANCZOS)
        for y in positions(h, stride):
            for x in positions(w, stride):
                crop = img.crop((x, y, x + CROP, y + CROP))
                d = detail(crop)
                if d >= min_detail:
                    kept.append(({"photo": photo, "scale": max(w, h), "x": x, "y": y, "detail": round(d, 3)}, crop))
    return _evenly(kept, max_per_photo)


def make_references(photos: dict[str, Path], out_dir: str | Path, rows: dict | None = None, scales=SCALES,
                    stride: int = STRIDE, min_detail: float = MIN_DETAIL,
                    max_per_photo: int | None = None) -> list[dict]:
    """Write OUT/<photo>_s<scale>_x<x>_y<y>.png for every kept crop and OUT/references.csv; returns the
    CSV's rows. Only train and val photos are accepted (one split per call keeps the folders apart)."""
    rows = load_manifest() if rows is None else rows
    out = Path(out_dir)
    written = []
    for photo, path in photos.items():
        split = rows[photo]["split"]
        if split not in ("train", "val"):
            raise DpiqaError(f"photo {photo} is a {split} photo: references come from train and val photos only")
        for ref, crop in photo_crops(photo, load_rgb(path), int(rows[photo]["downscale"]), scales, stride,
                                     min_detail, max_per_photo):
            name = f"{photo}_s{ref['scale']}_x{ref['x']}_y{ref['y']}.png"
            write_via(out / name, lambda tmp, c=crop: c.save(tmp, format="PNG", compress_level=1))
            written.append({"ref": name, "split": split, **ref})
    write_stream(out / "references.csv", lambda f: _write_csv(f, written))
    return written


def _write_csv(f, refs: list[dict]) -> None:
    w = csv.DictWriter(f, fieldnames=REF_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(refs)


def prepare_eval_photos(photos: dict[str, Path], out_dir: str | Path, long_side: int = 1024,
                        rows: dict | None = None) -> dict[str, Path]:
    """{photo: OUT/<photo>.png}: each whole photo at `long_side` (or its artefact-free long side if
    smaller), one Lanczos resize of the source. For val and test photos (the level benchmark's input)."""
    rows = load_manifest() if rows is None else rows
    out = Path(out_dir)
    written = {}
    for photo, path in photos.items():
        row = rows[photo]
        if not row["downscale"]:
            raise DpiqaError(f"photo {photo} has no artefact-free scale in the manifest")
        src = load_rgb(path)
        long = min(long_side, max(src.size) // int(row["downscale"]))
        k = long / max(src.size)
        img = src.resize((max(1, round(src.width * k)), max(1, round(src.height * k))), Image.Resampling.LANCZOS)
        written[photo] = out / f"{photo}.png"
        write_via(written[photo], lambda tmp, im=img: im.save(tmp, format="PNG", compress_level=1))
    return written


def main(argv=None) -> int:
    from tools.default_model.fetch import fetch_photos

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder for train/ and val/")
    ap.add_argument("--cache", help="photo cache (default: fetch's default)")
    ap.add_argument("--stride", type=int, default=STRIDE, help="crop spacing in px (default: %(default)s)")
    ap.add_argument("--train-max", type=int, default=TRAIN_MAX_PER_PHOTO,
                    help="crops per train photo at most (default: %(default)s)")
    ap.add_argument("--val-max", type=int, default=VAL_MAX_PER_PHOTO,
                    help="crops per val photo at most (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        for split, cap in (("train", args.train_max), ("val", args.val_max)):
            t0 = time.perf_counter()
            refs = make_references(fetch_photos(args.cache, splits=(split,)), Path(args.out_dir) / split,
                                   stride=args.stride, max_per_photo=cap)
            print(f"{split}: {len(refs)} references from {len({r['photo'] for r in refs})} photos in "
                  f"{Path(args.out_dir) / split} ({time.perf_counter() - t0:.0f} s)")
    except DpiqaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
