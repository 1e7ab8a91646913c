"""Held-out evaluation of a student checkpoint (default: the bundled one) on photos it never saw.

The held-out photos (`default_model_photos.HELD_OUT`) are distorted here, by this file's own code (Pillow
blur, numpy noise, Pillow JPEG), with parameter values that differ from those of `dpiqa synth`, so the
numbers measure generalisation to new content and new strengths, not recall. Used by the acceptance test
(tests/acceptance/test_default_model.py), by scripts/build_default_model.sh and for the model card.

Per photo and type, SRCC and PLCC are taken between the model's score and -level over the 5 distorted
copies (content held fixed, level the only variable), then averaged over the photos. "Pristine wins" counts
the (photo, type) cases where the undistorted photo outscores its level-3 copy.

    python scripts/heldout_eval.py [--weights CKPT] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from default_model_photos import HELD_OUT, load_photo  # noqa: E402

TYPES = ("blur", "noise", "jpeg")
LEVELS = (1, 2, 3, 4, 5)
BLUR_SIGMA = (1.0, 2.0, 3.0, 5.0, 8.0)  # px at the photos' native size (<= 600 px)
NOISE_SIGMA = (0.02, 0.04, 0.07, 0.11, 0.16)  # on [0, 1]
JPEG_QUALITY = (40, 20, 12, 7, 3)


def distort(img: Image.Image, dtype: str, level: int, path: Path) -> Path:
    """Write the distorted copy; JPEG is written as the JPEG itself, the others as lossless PNG."""
    k = level - 1
    if dtype == "jpeg":
        path = path.with_suffix(".jpg")
        img.save(path, format="JPEG", quality=JPEG_QUALITY[k])
        return path
    if dtype == "blur":
        out = img.filter(ImageFilter.GaussianBlur(BLUR_SIGMA[k]))
    else:  # white noise, a fixed seed per photo and level
        rng = np.random.default_rng([sum(map(ord, path.stem)), level])
        a = np.asarray(img, dtype=np.float64) / 255.0 + rng.normal(0.0, NOISE_SIGMA[k], (img.height, img.width, 3))
        out = Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8))
    out.save(path, format="PNG")
    return path


def write_heldout_set(root: Path, photos=HELD_OUT) -> dict[tuple[str, str, int], Path]:
    """(photo, type, level) -> file; level 0 (type 'pristine') is the undistorted photo."""
    files = {}
    for photo in photos:
        img = Image.fromarray(load_photo(photo))
        files[(photo, "pristine", 0)] = root / f"{photo}.png"
        img.save(files[(photo, "pristine", 0)], format="PNG")
        for dtype in TYPES:
            for level in LEVELS:
                files[(photo, dtype, level)] = distort(img, dtype, level, root / f"{photo}_{dtype}_{level}.png")
    return files


def score_files(files: dict, weights: str | Path | None = None) -> dict:
    """{key: file} -> {key: score} with the `student` entry (bundled weights unless `weights`)."""
    from dpiqa_cli.scoring.pipeline import score_paths

    df = score_paths([str(p) for p in files.values()], model="student", weights=weights, device="cpu",
                     workers=0, progress=False)
    if df.attrs.get("errors"):
        raise RuntimeError(f"images failed to score: {df.attrs['errors']}")
    by_name = {Path(p).name: s for p, s in zip(df["path"], df["score"])}
    return {key: float(by_name[Path(path).name]) for key, path in files.items()}


def score_heldout(weights: str | Path | None = None, photos=HELD_OUT) -> dict[tuple[str, str, int], float]:
    """Score the held-out set (or these photos, distorted the same way) with the `student` entry (bundled
    weights unless `weights`)."""
    with tempfile.TemporaryDirectory() as tmp:
        return score_files(write_heldout_set(Path(tmp), photos), weights)


def summarise(scores: dict[tuple[str, str, int], float], photos=HELD_OUT) -> dict:
    from scipy.stats import pearsonr, spearmanr

    out = {"per_type": {}, "pristine_vs_level3": {}}
    for dtype in TYPES:
        rows = {}
        for photo in photos:
            s = [scores[(photo, dtype, lv)] for lv in LEVELS]
            neg = [-lv for lv in LEVELS]
            rows[photo] = {"srcc": float(spearmanr(s, neg)[0]), "plcc": float(pearsonr(s, neg)[0])}
        out["per_type"][dtype] = {"per_photo": rows,
                                  "srcc": float(np.mean([r["srcc"] for r in rows.values()])),
                                  "plcc": float(np.mean([r["plcc"] for r in rows.values()]))}
    cases = [(p, t) for p in photos for t in TYPES]
    lost = [f"{p}/{t}" for p, t in cases if not scores[(p, "pristine", 0)] > scores[(p, t, 3)]]
    out["pristine_vs_level3"] = {"wins": len(cases) - len(lost), "cases": len(cases),
                                 "rate": (len(cases) - len(lost)) / len(cases), "lost": lost}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="student checkpoint (.safetensors); default: the bundled one")
    ap.add_argument("--json", help="also write the summary here")
    args = ap.parse_args(argv)
    summary = summarise(score_heldout(args.weights))
    for dtype, r in summary["per_type"].items():
        per = ", ".join(f"{p} {v['srcc']:.2f}" for p, v in r["per_photo"].items())
        print(f"{dtype:6s} SRCC {r['srcc']:.3f}  PLCC {r['plcc']:.3f}   (per photo: {per})")
    w = summary["pristine_vs_level3"]
    print(f"pristine > level 3: {w['wins']}/{w['cases']} ({100 * w['rate']:.0f} %)" +
          (f"; lost: {', '.join(w['lost'])}" if w["lost"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
