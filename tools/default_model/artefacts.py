"""How far a source photo must be downscaled before its own JPEG artefacts vanish.

JPEG works on 8x8 blocks, so compression leaves steps at the block edges: the mean absolute difference
between neighbouring pixels is higher across an edge than inside a block. `blockiness(img, f)` reduces the
photo by an integer factor f (a box filter, so the block grid stays on whole pixels: an edge every 8/f
pixels; JPEG's grid starts at the file's top-left pixel), measures the luma's neighbour differences at
each position mod 8, and returns the ratio of the edge positions' mean to the other positions' mean. It
does this for rows and for columns and keeps the smaller of the two, so content that repeats in one
direction (planks, façades) cannot pass for blocking.
A clean photo gives about 1.00 (0.98 to 1.02 on the lossless PNG photos and renders of the sources at
their full size); the wallpapers' JPEGs give 1.1 to 3 at full size.

The rule (`artefact_free_factor`): the smallest f of (1, 2, 4) with blockiness <= MAX_BLOCKINESS; at least
2 for camera-size files (long side >= CAMERA_LONG_SIDE: sensor noise, demosaicing and sharpening sit at
1:1 there), and None (the photo is left out) when even 4 is not enough. The manifest's `downscale` column
holds the factor this gave for each file; `python -m tools.default_model.artefacts CACHE` measures the
fetched photos again and prints any disagreement.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image

FACTORS = (1, 2, 4)
MAX_BLOCKINESS = 1.04
CAMERA_LONG_SIDE = 1600


def _edge_ratio(diffs: np.ndarray, f: int) -> float:
    """diffs[i] = mean |x[i+1] - x[i]|; a source block edge lies between i and i+1 when i = -1 mod 8/f."""
    period = 8 // f
    n = len(diffs) // 8 * 8
    phase = diffs[:n].reshape(-1, 8).mean(axis=0)  # mean difference at each position mod 8
    edge = np.zeros(8, bool)
    edge[period - 1::period] = True
    return float(phase[edge].mean() / max(phase[~edge].mean(), 1e-9))


def blockiness(img: Image.Image, f: int) -> float:
    """Block-edge excess of `img` box-reduced by f (1, 2 or 4); about 1.0 when no 8x8 grid shows."""
    if f not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, not {f}")
    small = img.convert("RGB")
    if f > 1:
        small = small.reduce(f)
    y = np.asarray(small.convert("L"), dtype=np.float64)
    across_columns = np.abs(np.diff(y, axis=1)).mean(axis=0)
    across_rows = np.abs(np.diff(y, axis=0)).mean(axis=1)
    return min(_edge_ratio(across_columns, f), _edge_ratio(across_rows, f))


def artefact_free_factor(img: Image.Image) -> tuple[int | None, dict[int, float]]:
    """(factor, {f: blockiness}) by the rule above; factor None when 4 is not enough."""
    f_min = 2 if max(img.size) >= CAMERA_LONG_SIDE else 1
    measured = {}
    for f in FACTORS:
        if f < f_min:
            continue
        measured[f] = blockiness(img, f)
        if measured[f] <= MAX_BLOCKINESS:
            return f, measured
    return None, measured


def main(argv=None) -> int:
    from dpiqa_cli.errors import DpiqaError
    from tools.default_model.fetch import default_cache, fetch_photos
    from tools.default_model.manifest import load_manifest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", nargs="?", default=None, help="photo cache (default: fetch's default)")
    ap.add_argument("--all", action="store_true", help="measure the excluded photos too")
    args = ap.parse_args(argv)
    rows = load_manifest()
    splits = ("train", "val", "test", "excluded") if args.all else ("train", "val", "test")
    try:
        paths = fetch_photos(args.cache or default_cache(), splits=splits)
    except DpiqaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    bad = 0
    for photo, path in sorted(paths.items()):
        if rows[photo]["photographic"] != "yes" or path.suffix == ".npy":
            continue  # the manifest holds no factor for non-photos
        f, measured = artefact_free_factor(Image.open(path))
        listed = rows[photo]["downscale"]
        flag = "" if str(f or "") == listed else f"   <- manifest says {listed or 'none'}"
        bad += bool(flag)
        print(f"{photo:22s} factor {f or '-'}  " + " ".join(f"B({k})={v:.3f}" for k, v in measured.items()) + flag)
    print(f"{bad} disagreement(s) with the manifest")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
