"""Which photos train the bundled default model, which validate it, and which are held out.

The split is fixed here, in one place, and read by `scripts/build_default_model.sh` (training and validation
side), `scripts/make_examples.py` and `tests/acceptance/test_default_model.py` (held-out side). No held-out
photo, nor any crop or copy of one, is ever written to the training folder.

    python scripts/default_model_photos.py OUT_DIR   # export training crops + whole validation photos as PNG

Training photos are scikit-image's (licences as stated in `skimage/data/_fetchers.py`, scikit-image 0.26).
Validation photos are natural photos bundled with matplotlib and scikit-learn (licences in
`matplotlib/mpl-data/sample_data` and `sklearn/datasets/images/README.txt`); they only choose the epoch and
are never trained on. They are read from the installed packages at build time, not copied into this repository.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CROP = (512, 512)  # width, height: the student's own square input, so a 512-px view is seen at 1:1 and JPEG's
# 8x8 blocks arrive as 8x8 (512x384 crops, stretched to 512x512, showed them at one 8x10.7 shape only; training's
# --crop-jitter adds magnified, re-shaped views on top)

# name: (skimage.data function, licence as stated by scikit-image, max crops or None = full grid)
TRAINING: dict[str, tuple[str, str, int | None]] = {
    "rocket": ("rocket", "public domain (SpaceX launch photo)", None),
    "hubble_deep_field": ("hubble_deep_field", "public domain (NASA)", 1),  # 1 of 2: not a fifth of the set
    "immunohistochemistry": ("immunohistochemistry", "no known copyright restrictions (CMMI)", None),
    # native-resolution fundus crops are smooth and soft, too close to "blurred": only the whole view
    "retina": ("retina", "CC0 1.0 (Wikimedia Commons, Häggström 2014)", 0),
    "camera": ("camera", "CC0 (Lav Varshney)", None),
    "brick": ("brick", "CC0 (CC0Textures, Bricks25)", None),
    "grass": ("grass", "CC0 (DeviantArt, linolafett)", None),
    "gravel": ("gravel", "CC0 (CC0Textures, Gravel04)", None),
    "coins": ("coins", "no known copyright restrictions (Brooklyn Museum)", None),
    "text": ("text", "public domain (Wikipedia, Corner.png)", None),
}

# Model selection only (validation SRCC picks the epoch), never trained on: natural photos like the ones users
# score, which scikit-image lacks outside the held-out set. name: (package:file, licence). Whole photos.
VALIDATION: dict[str, tuple[str, str]] = {
    "grace_hopper": ("matplotlib:grace_hopper.jpg", "public domain (U.S. Navy photo; matplotlib sample data)"),
    "china": ("sklearn:china.jpg", "CC BY 2.0 (danielbuechele, Flickr; scikit-learn sample image)"),
    "flower": ("sklearn:flower.jpg", "CC BY 2.0 (vultilion, Flickr; scikit-learn sample image)"),
}

# Never used in training or validation: the acceptance test and examples/ use these.
HELD_OUT: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut", "public domain (NASA, Eileen Collins)"),
    "coffee": ("coffee", "CC0 (Rachel Michetti; courtesy of Pikolo Espresso Bar)"),
    "chelsea": ("chelsea", "CC0 (Stefan van der Walt)"),
}

# Deliberately used for neither, and why.
EXCLUDED = {
    "clock": "already motion-blurred (a real camera-shake photo; public domain): used only in examples/",
    "motorcycle_left/right": "Middlebury 2014 stereo pair: scikit-image states no licence",
    "moon, page": "scikit-image states no licence",
    "horse, chessboard, phantom, colorwheel, logo, binary_blobs": "graphics or synthetic, not photos",
    "lfw_subset": "face crops under LFW's own terms; tiny",
    "microaneurysms": "102x102: too small for 5 MS-SSIM scales",
    "cell": "an out-of-focus microscopy image: not pristine, would teach that blur is fine",
}


def _read_validation(source: str) -> np.ndarray:
    package, name = source.split(":", 1)
    try:
        if package == "matplotlib":
            import matplotlib.cbook

            return np.asarray(Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)).convert("RGB"))
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)
    except ImportError:
        sys.exit(f"error: validation photo {source} needs {package}: pip install -e '.[model]'")


def load_photo(name: str) -> np.ndarray:
    """An RGB uint8 array of a listed photo (grayscale ones stacked to three equal channels)."""
    if name in VALIDATION:
        img = _read_validation(VALIDATION[name][0])
    else:
        import skimage.data

        fn = (TRAINING.get(name) or HELD_OUT.get(name) or (name,))[0]
        img = np.asarray(getattr(skimage.data, fn)())
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.shape[-1] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img.astype(np.uint8))


def _positions(length: int, crop: int) -> list[int]:
    # evenly spread, about one crop per crop-length of image; a single crop is centred
    n = max(1, round(length / crop))
    return [(length - crop) // 2] if n == 1 else [round(p) for p in np.linspace(0, length - crop, n)]


def training_views(name: str, img: np.ndarray, max_crops: int | None = None) -> dict[str, np.ndarray]:
    """Native-resolution crops of CROP (portrait for portrait photos), plus a whole downscaled view
    when the photo is at least twice the crop (a second scale); photos smaller than a crop stay whole."""
    h, w = img.shape[:2]
    cw, ch = CROP if w >= h else CROP[::-1]
    if w < cw or h < ch:
        return {name: img}
    crops = [(y, x) for y in _positions(h, ch) for x in _positions(w, cw)]
    if max_crops is not None:  # keep the most central ones (borders of scans and fundus photos are empty)
        crops = sorted(crops, key=lambda p: (p[0] + ch / 2 - h / 2) ** 2 + (p[1] + cw / 2 - w / 2) ** 2)[:max_crops]
    views = {f"{name}_c{i}": img[y:y + ch, x:x + cw] for i, (y, x) in enumerate(sorted(crops))}
    if min(h / ch, w / cw) >= 2:
        scale = max(cw / w, ch / h)
        small = Image.fromarray(img).resize((max(cw, round(w * scale)), max(ch, round(h * scale))), Image.Resampling.LANCZOS)
        sw, sh = small.size
        x, y = (sw - cw) // 2, (sh - ch) // 2
        views[f"{name}_whole"] = np.asarray(small)[y:y + ch, x:x + cw]
    return views


def export_photos(out_dir: str | Path) -> dict[str, list[Path]]:
    """Write every training view and every whole validation photo as PNG into out_dir;
    returns {"train": paths, "val": paths}, sorted."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = {"train": {}, "val": {name: load_photo(name) for name in VALIDATION}}
    for name, (_, _, max_crops) in TRAINING.items():
        views["train"].update(training_views(name, load_photo(name), max_crops))
    paths: dict[str, list[Path]] = {}
    for part, arrays in views.items():
        for view, arr in arrays.items():
            Image.fromarray(arr).save(out / f"{view}.png", format="PNG")
        paths[part] = sorted(out / f"{view}.png" for view in arrays)
    return paths


def part_of(view: str) -> str:
    """'train' or 'val' for a view name written by export_photos (the photo name, maybe + _c<i>/_whole)."""
    if view in VALIDATION:
        return "val"
    if any(view == name or view.startswith(f"{name}_") for name in TRAINING):
        return "train"
    raise KeyError(f"{view} is not a view of a training or validation photo")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder to write the training and validation photos into (PNG)")
    args = ap.parse_args(argv)
    paths = export_photos(args.out_dir)
    print(f"wrote {len(paths['train'])} training views of {len(TRAINING)} photos and {len(paths['val'])} "
          f"whole validation photos to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
