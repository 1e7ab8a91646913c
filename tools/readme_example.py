"""Write README.md's example block from a real run: `dpiqa score examples/ --out scores.csv` with the bundled
model, its summary line (without the speed) and the ranked CSV (paths shortened to the repository), between the markers
`<!-- example:begin -->` and `<!-- example:end -->`. Run by the default model's build after it bundles a model.

    python -m tools.readme_example
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from dpiqa_cli.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
# this checkout's bundled file, however dpiqa is installed: an editable install of another checkout (or an
# installed wheel) would otherwise supply its own weights/, and the example would show another model's scores
ENV = dict(os.environ, DPIQA_WEIGHTS_DIR=str(ROOT / "weights"))
BLOCK = re.compile(r"(<!-- example:begin -->\n).*?(<!-- example:end -->)", re.S)


def example_block() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.csv"
        r = subprocess.run([sys.executable, "-m", "dpiqa_cli", "score", "examples/", "--out", str(out)], cwd=ROOT,
                           env=ENV, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise SystemExit(f"error: dpiqa score examples/ failed: {r.stderr.strip().splitlines()[-1:]}")
        # "scored 7, failed 0, 9.1 img/s, wall 2.1 s": speed belongs in BENCHMARKS.md, not in an example
        summary = ", ".join(r.stderr.strip().splitlines()[-1].split(", ")[:2])
        table = pd.read_csv(out)
    table["path"] = [str(Path(p).relative_to(ROOT)) for p in table["path"]]
    for col in ("score", "mos"):
        if col in table:
            table[col] = table[col].map(lambda v: f"{v:.3f}")
    return f"```text\n{summary}\n{table.to_csv(index=False)}```\n"


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    if not BLOCK.search(text):
        raise SystemExit("error: README.md has no <!-- example:begin --> ... <!-- example:end --> block")
    block = example_block()
    write_text(readme, BLOCK.sub(lambda m: m.group(1) + block + m.group(2), text))
    print(block, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
