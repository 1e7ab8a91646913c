"""Write examples/: a few small public-domain / CC0 photos for the README's first command.

    python -m tools.make_examples [OUT_DIR]   # default: examples/

The photos are scikit-image's astronaut, coffee, chelsea and clock, which the bundled model's manifest
(tools/default_model/manifest.csv) excludes from training and validation, so the model has seen none of them. Three copies are degraded on purpose so that the
ranking printed by `dpiqa score examples/` has something to show. Deterministic: fixed seed, fixed
JPEG settings, no metadata.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageFilter

from tools.default_model.manifest import load_manifest, photos_in

QUALITY = 90  # high enough that the clean copies carry no visible JPEG artefacts

LICENCES = {
    "astronaut": "public domain: NASA Great Images database (https://flic.kr/p/r9qvLn)",
    "coffee": "CC0: photo by Rachel Michetti, courtesy of Pikolo Espresso Bar",
    "chelsea": "CC0: photo by Stefan van der Walt",
    "clock": "public domain: photo by Stefan van der Walt, released into the public domain",
}

# file name: (source photo, what was done, how)
EXAMPLES = {
    "astronaut.jpg": ("astronaut", "none", None),
    "coffee.jpg": ("coffee", "none", None),
    "chelsea.jpg": ("chelsea", "none", None),
    "clock_motion_blur.jpg": ("clock", "none: a real camera-shake photo (grayscale)", None),
    "coffee_blurred.jpg": ("coffee", "Gaussian blur, radius 4 px (Pillow GaussianBlur)", "blur"),
    "chelsea_jpeg_q5.jpg": ("chelsea", "saved as JPEG at quality 5", "jpeg"),
    "astronaut_noisy.jpg": ("astronaut", "Gaussian white noise, sigma 20/255, seed 0", "noise"),
}


def _degrade(img: Image.Image, how: str | None) -> tuple[Image.Image, int]:
    if how == "blur":
        return img.filter(ImageFilter.GaussianBlur(4)), QUALITY
    if how == "jpeg":
        return img, 5
    if how == "noise":
        a = np.asarray(img, dtype=np.float32)
        a = a + np.random.default_rng(0).normal(0.0, 20.0, a.shape)
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8)), QUALITY
    return img, QUALITY


def make_examples(out_dir: str | Path = "examples") -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    used = set(photos_in(load_manifest(), "train", "val"))
    assert not {src for src, _, _ in EXAMPLES.values()} & used, "an example comes from a training or validation photo"
    paths = []
    for name, (src, _, how) in EXAMPLES.items():
        img = Image.fromarray(getattr(skimage.data, src)())  # clock stays grayscale, as taken
        img.thumbnail((640, 640), Image.Resampling.LANCZOS)  # longest side at most 640 px
        img, quality = _degrade(img, how)
        path = out / name
        img.save(path, format="JPEG", quality=quality, optimize=True)
        paths.append(path)
    _write_licences(out)
    return paths


def _write_licences(out: Path) -> None:
    lines = ["# examples/: sources and licences", "",
             "Made by `python -m tools.make_examples` from images bundled with scikit-image "
             "(licences as stated in `skimage/data/_fetchers.py`). None of these photos was used to "
             "train or choose the bundled model (see `tools/default_model/manifest.csv`).", "",
             "| file | source (scikit-image) | licence | modification |", "|---|---|---|---|"]
    for name, (src, what, _) in EXAMPLES.items():
        lines.append(f"| `{name}` | `skimage.data.{src}()` (never trained on) | {LICENCES[src]} | {what} |")
    lines += ["", "All modified copies remain in the public domain / under CC0, like their sources."]
    (out / "LICENSES.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default="examples")
    paths = make_examples(ap.parse_args(argv).out_dir)
    for p in paths:
        print(f"{p}  {p.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
