"""The README's gallery screenshot: score examples/ with the bundled model, make the gallery, photograph it
in headless Chromium (the browser test's setup), and store it as a 256-colour PNG (~120 KB).

    python tools/gallery_screenshot.py --out docs/gallery.png
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser_fixtures import Browser  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery.png")
    ap.add_argument("--window", default="1280x1100", help="browser window, WxH (the page gets ~140 px less)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "gallery.html"
        subprocess.run([sys.executable, "-m", "dpiqa_cli", "--quiet", "score", str(ROOT / "examples"),
                        "--out", str(Path(tmp) / "scores.csv"), "--gallery", str(page)], check=True,
                       env=dict(os.environ, DPIQA_WEIGHTS_DIR=str(ROOT / "weights")))  # this checkout's model
        with Browser(tuple(int(v) for v in a.window.split("x"))) as b:
            b.open(page)
            shot = Path(tmp) / "shot.png"
            b.driver.save_screenshot(str(shot))
            errors = b.console_errors()
        if errors:
            raise SystemExit(f"the page logged errors: {errors}")
        img = Image.open(shot).convert("RGB")
        img.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(a.out, optimize=True)
    print(f"wrote {a.out} ({img.width}x{img.height}, {a.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
