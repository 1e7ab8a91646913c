"""Diagnostic: does a student rank JPEG levels as well when the photo's size and aspect differ from training?

The bundled model trains on 512x384 views, which the student stretches to 512x512, so JPEG's 8x8 blocks reach
it as 8x10.7 px; photos of other sizes bring other block shapes and scales. This script takes views of
photos the bundled model trained or validated on (never the held-out ones), resizes each to several
geometries, JPEG-compresses it at quality 40/20/12/7/3 (heldout_eval.py's levels), and prints per view the
SRCC between score and level, plus how often the uncompressed copy beats quality 12.

    python scripts/jpeg_geometry_probe.py [--weights CKPT]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from default_model_photos import TRAINING, load_photo, training_views  # noqa: E402
from heldout_eval import JPEG_QUALITY, score_files  # noqa: E402

# (photo, view): the two validation views of the bundled model's split, then three training views
VIEWS = [("gravel", "gravel_c0"), ("hubble_deep_field", "hubble_deep_field_c1"), ("brick", "brick_c0"),
         ("camera", "camera_c0"), ("rocket", "rocket_c0")]
GEOMETRIES = {"512x384 (as trained)": None, "512x512": (512, 512), "451x300 (chelsea's)": (451, 300),
              "600x400 (coffee's)": (600, 400), "384x512 (portrait)": (384, 512)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="student checkpoint; default: the bundled one")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for photo, view in VIEWS:
            img = Image.fromarray(training_views(photo, load_photo(photo), TRAINING[photo][2])[view])  # as exported
            for g, size in GEOMETRIES.items():
                im = img if size is None else img.resize(size, Image.Resampling.LANCZOS)
                files[(view, g, 0)] = Path(tmp, f"{len(files)}.png")
                im.save(files[(view, g, 0)])
                for level, q in enumerate(JPEG_QUALITY, 1):
                    files[(view, g, level)] = Path(tmp, f"{len(files)}.jpg")
                    im.save(files[(view, g, level)], quality=q)
        score = score_files(files, args.weights)
    print(f"{'geometry':22s} " + " ".join(f"{v[:12]:>12s}" for _, v in VIEWS) + "    mean  pristine>q12")
    for g in GEOMETRIES:
        srcc = [spearmanr([score[(v, g, lv)] for lv in range(1, 6)], [-lv for lv in range(1, 6)])[0] for _, v in VIEWS]
        wins = sum(score[(v, g, 0)] > score[(v, g, 3)] for _, v in VIEWS)
        print(f"{g:22s} " + " ".join(f"{x:12.2f}" for x in srcc) + f"  {np.mean(srcc):6.2f}  {wins}/{len(VIEWS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
