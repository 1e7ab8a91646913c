"""Write a KonIQ-10k-layout fixture: koniq10k_distributions_sets.csv + 1024x768/*.jpg (CI's bench job).

    python tools/make_koniq_fixture.py OUT_DIR

Six scikit-image photos, each pristine and at two strengths of blur, noise and JPEG (42 images). MOS
(0-100, higher better) falls with strength, with a small seeded jitter; `set` puts 3 photos in training,
1 in validation and 2 (14 images) in test, so no photo crosses the train/test border.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
SETS = ("training", "training", "training", "validation", "test", "test")
# (type, level, strength, base MOS): stronger distortion -> lower MOS
LEVELS = (("pristine", 0, None, 82.0), ("blur", 1, 2.0, 60.0), ("blur", 2, 6.0, 30.0), ("noise", 1, 12.0, 58.0),
          ("noise", 2, 45.0, 25.0), ("jpeg", 1, 25, 62.0), ("jpeg", 2, 4, 22.0))


def distort(img: Image.Image, kind: str, strength, rng: np.random.Generator) -> Image.Image:
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(strength))
    if kind == "noise":
        a = np.asarray(img, np.float32) + rng.normal(0, strength, (img.height, img.width, 3)).astype(np.float32)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(strength))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def votes(mos: float, rng: np.random.Generator, n: int = 120) -> tuple[np.ndarray, float]:
    """Rating counts c1..c5 whose mean matches the MOS on KonIQ's 1-5 -> 0-100 mapping, and their SD."""
    mu = 1 + 4 * mos / 100.0
    r = np.clip(np.rint(rng.normal(mu, 0.7, n)), 1, 5).astype(int)
    c = np.bincount(r, minlength=6)[1:]
    return c, float(np.std(r))


def main(out: Path) -> None:
    from skimage import data

    rng = np.random.default_rng(0)
    (out / "1024x768").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (name, st) in enumerate(zip(PHOTOS, SETS)):
        a = getattr(data, name)()
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        base = Image.fromarray(np.ascontiguousarray(a[..., :3])).convert("RGB").resize((1024, 768), Image.BILINEAR)
        for kind, level, strength, mos in LEVELS:
            fname = f"{1000 + k * 10 + len(rows) % 7}_{name}_{kind}{level}.jpg"
            img = distort(base, kind, strength, rng)
            img.save(out / "1024x768" / fname, "JPEG", quality=95)
            mos = float(np.clip(mos + rng.normal(0, 2.0), 0, 100))
            c, sd = votes(mos, rng)
            rows.append((fname, *c.tolist(), int(c.sum()), round(mos, 4), round(sd, 4), st))
    lines = ["image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set"] + [",".join(map(str, r)) for r in rows]
    (out / "koniq10k_distributions_sets.csv").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(rows)} images to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_koniq_fixture.py OUT_DIR")
    main(Path(sys.argv[1]))
