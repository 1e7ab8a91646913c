"""Shared helpers for the scoring tests: real photos + degraded copies, subprocess CLI runs."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


def cli_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "dpiqa_cli", *map(str, args)], capture_output=True, text=True,
                          env=env or cli_env(), timeout=300, **kw)


def write_photos(folder: Path, side: int = 160) -> list[Path]:
    """scikit-image photos plus blurred, noisy and JPEG-compressed copies (small, to stay fast)."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for name in ("astronaut", "coffee", "chelsea", "camera", "rocket"):
        a = getattr(data, name)()
        img = Image.fromarray(a).convert("RGB")
        img = img.resize((side, int(side * img.height / img.width)), Image.BICUBIC)
        variants = {
            "orig.png": img,
            "blur.png": img.filter(ImageFilter.GaussianBlur(3)),
            "noise.png": Image.fromarray(np.clip(np.asarray(img) + rng.normal(0, 25, np.asarray(img).shape), 0, 255)
                                         .astype(np.uint8)),
        }
        for suffix, v in variants.items():
            p = folder / f"{name}_{suffix}"
            v.save(p)
            out.append(p)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=8)
        p = folder / f"{name}_jpeg8.jpg"
        p.write_bytes(buf.getvalue())
        out.append(p)
    return out
