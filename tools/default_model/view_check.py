"""Does the view see mild noise on a large photo? Each photo, clean and with Gaussian noise of sigma 6 (8-bit
levels), is upscaled to 4000 x 3000 (the size of a 12 MP camera file) and scored with the same weights under the
native view and under `whole` (one 512 x 512 resize). A view that works ranks the noisy copy lower."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dpiqa_cli.atomic import write_via
from dpiqa_cli.data.views import View
from tools.default_model.scorers import checkpoint_scorer

SIZE = (4000, 3000)
SIGMA = 6.0  # 8-bit levels


def make_pair(photo: Path, out: Path, name: str) -> tuple[Path, Path]:
    """(clean, noisy) copies of `photo` upscaled to SIZE (bicubic), as PNG in OUT; the noise is seeded by the name."""
    out.mkdir(parents=True, exist_ok=True)
    with Image.open(photo) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float64)
    rng = np.random.default_rng([sum(name.encode()), 6])
    noisy = np.clip(np.rint(a + rng.normal(0.0, SIGMA, a.shape)), 0, 255).astype(np.uint8)
    paths = []
    for tag, arr in (("clean", a.astype(np.uint8)), ("noisy", noisy)):
        dest = out / f"{name}_{tag}.png"
        big = Image.fromarray(arr).resize(SIZE, Image.BICUBIC)
        write_via(dest, lambda tmp, b=big: b.save(tmp, format="PNG", compress_level=1))
        paths.append(dest)
    return paths[0], paths[1]


def noisy_lower(pairs) -> int:
    """How many (clean score, noisy score) pairs rank the noisy copy strictly lower."""
    return sum(n < c for c, n in pairs)


def view_check(weights: Path, photos: dict[str, Path], work: Path) -> dict:
    """{rows: per view {photo: (clean, noisy)}, lower: per view how often noisy < clean, table: markdown}."""
    pairs = {name: make_pair(p, work, name) for name, p in photos.items()}
    files = [f for pair in pairs.values() for f in pair]
    rows, lower = {}, {}
    for label, view in (("native", None), ("whole", View("whole", 512))):
        s = dict(zip(files, checkpoint_scorer(weights, view=view)(files)))
        rows[label] = {name: (s[c], s[n]) for name, (c, n) in pairs.items()}
        lower[label] = noisy_lower(rows[label].values())
    gap = {label: float(np.mean([c - n for c, n in r.values()])) for label, r in rows.items()}
    table = ("| view (same weights) | noisy copy ranked lower | mean score gap clean - noisy |\n|---|---:|---:|\n" +
             "".join(f"| {label} | {lower[label]}/{len(pairs)} | {gap[label]:+.4f} |\n" for label in rows))
    return {"rows": rows, "lower": lower, "gap": gap, "photos": len(pairs), "table": table}
