"""Acceptance test of the bundled default model (issue #6) on photos it never saw.

The held-out photos (`scripts/default_model_photos.py: HELD_OUT`) are distorted here, by the test's
own code (Pillow blur, numpy noise, Pillow JPEG), with parameter values that differ from those of
`dpiqa synth`, so the test checks generalisation to new content and new strengths, not recall.

Criteria (issue #6):
- SRCC: for each photo and type, the Spearman correlation between the model's score and -level over
  the 5 distorted copies; its mean over the held-out photos must be >= 0.85 for each of the three
  types. Per photo, so that content (which the labels of synth never vary within a condition) is held
  fixed and level is the only variable.
- Pristine vs level 3: the undistorted photo outscores its level-3 copy in >= 90 % of the
  (photo, type) cases.

It fails until `weights/` holds the bundled checkpoint (scripts/build_default_model.sh builds it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from default_model_photos import HELD_OUT, TRAINING, load_photo  # noqa: E402

LEVELS = (1, 2, 3, 4, 5)
BLUR_SIGMA = (1.0, 2.0, 3.0, 5.0, 8.0)  # px at the photos' native size (<= 600 px)
NOISE_SIGMA = (0.02, 0.04, 0.07, 0.11, 0.16)  # on [0, 1]
JPEG_QUALITY = (40, 20, 12, 7, 3)
MIN_SRCC, MIN_PRISTINE_WINS = 0.85, 0.90


def _distort(img: Image.Image, dtype: str, level: int, path: Path) -> Path:
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


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    from dpiqa_cli.score import score_paths

    root = tmp_path_factory.mktemp("heldout")
    files = {}  # (photo, type, level) -> path; level 0 = pristine
    for photo in HELD_OUT:
        img = Image.fromarray(load_photo(photo))
        files[(photo, "pristine", 0)] = root / f"{photo}.png"
        img.save(files[(photo, "pristine", 0)], format="PNG")
        for dtype in ("blur", "noise", "jpeg"):
            for level in LEVELS:
                files[(photo, dtype, level)] = _distort(img, dtype, level, root / f"{photo}_{dtype}_{level}.png")
    df = score_paths([str(p) for p in files.values()], model="student", device="cpu", workers=0, progress=False)
    by_name = {Path(p).name: s for p, s in zip(df["path"], df["score"])}
    assert not df.attrs.get("errors"), df.attrs.get("errors")
    return {key: by_name[path.name] for key, path in files.items()}


def test_held_out_photos_are_not_training_photos():
    assert len(HELD_OUT) >= 3 and not set(HELD_OUT) & set(TRAINING)
    assert not {fn for fn, *_ in HELD_OUT.values()} & {fn for fn, *_ in TRAINING.values()}


@pytest.mark.parametrize("dtype", ["blur", "noise", "jpeg"])
def test_srcc_against_level(scored, dtype):
    per_photo = {}
    for photo in HELD_OUT:
        scores = [scored[(photo, dtype, level)] for level in LEVELS]
        per_photo[photo] = spearmanr(scores, [-lv for lv in LEVELS])[0]
    mean = float(np.mean(list(per_photo.values())))
    assert mean >= MIN_SRCC, f"{dtype}: mean SRCC {mean:.3f} < {MIN_SRCC} (per photo: {per_photo})"


def test_pristine_beats_level_3(scored):
    cases = [(photo, dtype) for photo in HELD_OUT for dtype in ("blur", "noise", "jpeg")]
    wins = [scored[(p, "pristine", 0)] > scored[(p, t, 3)] for p, t in cases]
    lost = [c for c, w in zip(cases, wins) if not w]
    assert np.mean(wins) >= MIN_PRISTINE_WINS, f"pristine lost to its level-3 copy in {lost}"
