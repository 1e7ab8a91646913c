"""Which photos train the bundled default model, which validate it, and which are held out.

The split is fixed here, in one place, and read by `scripts/build_default_model.sh` (training and
validation side), `scripts/make_examples.py` and `tests/acceptance/test_default_model.py` (held-out side).
No held-out photo, nor any crop or copy of one, is ever written to the training folder.

    python scripts/default_model_photos.py OUT_DIR   # export training + validation photos as PNG crops

Photos come from packages that bundle them (no download): scikit-image (licences as stated in
`skimage/data/_fetchers.py`, scikit-image 0.26), matplotlib's sample data, and scikit-learn's sample
images (licences in `sklearn/datasets/images/README.txt`). A source is "package:name".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CROP = (512, 384)  # width, height: KonIQ's 512x384 aspect; the student resizes to 512x512 anyway

# name: (source, licence as stated by its package, max crops or None = full grid, downscale factor)
TRAINING: dict[str, tuple[str, str, int | None, float]] = {
    "rocket": ("skimage:rocket", "public domain (SpaceX launch photo)", None, 1.0),
    "immunohistochemistry": ("skimage:immunohistochemistry", "no known copyright restrictions (CMMI)", None, 1.0),
    # native-resolution fundus crops are smooth and soft, too close to "blurred": only the whole view
    "retina": ("skimage:retina", "CC0 1.0 (Wikimedia Commons, Häggström 2014)", 0, 1.0),
    "camera": ("skimage:camera", "CC0 (Lav Varshney)", None, 1.0),
    "brick": ("skimage:brick", "CC0 (CC0Textures, Bricks25)", None, 1.0),
    "grass": ("skimage:grass", "CC0 (DeviantArt, linolafett)", None, 1.0),
    "coins": ("skimage:coins", "no known copyright restrictions (Brooklyn Museum)", None, 1.0),
    "text": ("skimage:text", "public domain (Wikipedia, Corner.png)", None, 1.0),
    # natural scenes and a face, which the scikit-image set lacks
    # a JPEG of about quality 65: downscaled by 3/4 so its own 8x8 blocks fade below what synth adds
    "grace_hopper": ("matplotlib:grace_hopper.jpg", "public domain (U.S. Navy photo; matplotlib sample data)", None, 0.75),
    "china": ("sklearn:china.jpg", "CC BY 2.0 (danielbuechele, Flickr; scikit-learn sample image)", None, 1.0),
    "flower": ("sklearn:flower.jpg", "CC BY 2.0 (vultilion, Flickr; scikit-learn sample image)", None, 1.0),
}

# Validation (model selection by validation SRCC): every view of these, never trained on.
VALIDATION: dict[str, tuple[str, str, int | None, float]] = {
    "hubble_deep_field": ("skimage:hubble_deep_field", "public domain (NASA)", 2, 1.0),  # 2 of 4 crops
    "gravel": ("skimage:gravel", "CC0 (CC0Textures, Gravel04)", None, 1.0),
}

# Never used in training or validation: the acceptance test and examples/ use these.
HELD_OUT: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage:astronaut", "public domain (NASA, Eileen Collins)"),
    "coffee": ("skimage:coffee", "CC0 (Rachel Michetti; courtesy of Pikolo Espresso Bar)"),
    "chelsea": ("skimage:chelsea", "CC0 (Stefan van der Walt)"),
}

# Deliberately used for none of these, and why.
EXCLUDED = {
    "clock": "already motion-blurred (a real camera-shake photo; public domain): used only in examples/",
    "motorcycle_left/right": "Middlebury 2014 stereo pair: scikit-image states no licence",
    "moon, page": "scikit-image states no licence",
    "horse, chessboard, phantom, colorwheel, logo, binary_blobs": "graphics or synthetic, not photos",
    "lfw_subset": "face crops under LFW's own terms; tiny",
    "microaneurysms": "102x102: too small for 5 MS-SSIM scales",
    "cell": "an out-of-focus microscopy image: not pristine, would teach that blur is fine",
    "Minduka_Present_Blue_Pack (matplotlib)": "a product render, not a photo",
}

def _read_source(source: str) -> np.ndarray:
    package, name = source.split(":", 1)
    if package == "skimage":
        import skimage.data

        return np.asarray(getattr(skimage.data, name)())
    try:
        if package == "matplotlib":
            import matplotlib.cbook

            return np.asarray(Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)))
        if package == "sklearn":
            from sklearn.datasets import load_sample_image

            return load_sample_image(name)
    except ImportError:
        sys.exit(f"error: photo {source} needs the package {package}: pip install -e '.[model]'")
    raise ValueError(f"unknown photo source {source}")


def load_photo(name: str) -> np.ndarray:
    """An RGB uint8 array of a listed photo (grayscale ones stacked to three equal channels), at its
    listed downscale factor."""
    entry = TRAINING.get(name) or VALIDATION.get(name) or HELD_OUT.get(name) or (f"skimage:{name}",)
    img = _read_source(entry[0])
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.shape[-1] == 4:
        img = img[..., :3]
    img = np.ascontiguousarray(img.astype(np.uint8))
    scale = entry[3] if len(entry) > 3 else 1.0
    if scale != 1.0:
        h, w = img.shape[:2]
        img = np.asarray(Image.fromarray(img).resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS))
    return img


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


def export_training(out_dir: str | Path) -> dict[str, list[Path]]:
    """Write every training and validation view as PNG into out_dir; returns {"train"/"val": paths}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path]] = {"train": [], "val": []}
    for part, photos in (("train", TRAINING), ("val", VALIDATION)):
        for name, (_, _, max_crops, _) in photos.items():
            for view, arr in training_views(name, load_photo(name), max_crops).items():
                path = out / f"{view}.png"
                Image.fromarray(arr).save(path, format="PNG")
                paths[part].append(path)
    return {part: sorted(p) for part, p in paths.items()}


def part_of(view: str) -> str:
    """'train' or 'val' for a view name written by export_training (the photo name, maybe + _c<i>/_whole)."""
    for part, photos in (("val", VALIDATION), ("train", TRAINING)):
        if any(view == name or view.startswith(f"{name}_") for name in photos):
            return part
    raise KeyError(f"{view} is not a view of a training or validation photo")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder to write the training and validation photos into (PNG)")
    args = ap.parse_args(argv)
    paths = export_training(args.out_dir)
    print(f"wrote {len(paths['train'])} training views of {len(TRAINING)} photos and {len(paths['val'])} "
          f"validation views of {len(VALIDATION)} photos to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
