"""README.md against what dpiqa does: its example block is a live run's output, byte for byte."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_block_is_what_the_command_prints_and_writes(tmp_path):
    """`python -m tools.readme_example` reruns `dpiqa score examples/ --out scores.csv` with this checkout's
    bundled model and writes the block into a copy of README.md: the copy must not change."""
    copy = tmp_path / "README.md"
    shutil.copyfile(ROOT / "README.md", copy)
    r = subprocess.run([sys.executable, "-m", "tools.readme_example", "--readme", str(copy)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert copy.read_bytes() == (ROOT / "README.md").read_bytes(), \
        "README.md's example block differs from a real run: python -m tools.readme_example"


def test_the_readme_makes_no_mos_claim_for_the_bundled_model():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "normalised MOS in [0, 1]" not in text
    first_screen = text.split("## ")[0]
    assert "dpiqa score examples/ --out scores.csv" in first_screen and "<!-- example:begin -->" in first_screen
    assert "apt-get" not in first_screen and "constraints.txt" not in first_screen  # setup: DEVELOPERS.md
