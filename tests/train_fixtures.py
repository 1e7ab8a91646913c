"""The training tests' fixture: 10 scikit-image photos resized to 256 px, the 8 most textured 64 px cells of each
(80 references at the tiny models' input size, so no resize hides the blur; on flat cells blur is invisible yet
labelled), Gaussian blur at 3 levels: 320 images, MOS from `dpiqa synth`, falling with blur."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "brick", "grass", "gravel",
          "immunohistochemistry"]


@pytest.fixture(scope="module")
def blur_csv(tmp_path_factory) -> Path:
    import skimage.data

    from dpiqa_cli.data.synth import synthesize

    base = tmp_path_factory.mktemp("fixture")
    src = base / "photos"
    src.mkdir()
    for name in PHOTOS:
        a = getattr(skimage.data, name)()
        a = np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3]
        im = Image.fromarray(a).resize((256, 256), Image.BILINEAR)
        g = np.asarray(im.convert("L"), dtype=np.float32)
        lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])
        texture = [lap[64 * (k // 4):64 * (k // 4) + 62, 64 * (k % 4):64 * (k % 4) + 62].mean() for k in range(16)]
        for k in np.argsort(texture)[::-1][:8]:  # the 8 most textured of the 4 x 4 grid of 64 px cells
            k = int(k)
            x, y = 64 * (k % 4), 64 * (k // 4)
            im.crop((x, y, x + 64, y + 64)).save(src / f"{name}_{k}.png")
    synthesize(src, base / "synth", seed=0, levels=3, types="gaussian_blur", workers=0)
    return base / "synth"


def short_run(run_cli, root: Path, run: Path, *opts) -> dict:
    """Two steps of a tiny no-teacher student with `opts`; returns the train_config it recorded."""
    code, _, err = run_cli("-q", "distill", "--no-teacher", "-m", "tiny-student", "--dataset", "csv", "--root", root,
                           *opts, "--epochs", "1", "--max-steps", "2", "--batch-size", "8", "--out", run)
    assert code == 0, err
    return json.loads((run / "last.json").read_text())["train_config"]
