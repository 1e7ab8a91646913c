"""Write README.md's example block from a real run: `dpiqa score examples/ --out scores.csv` with this checkout's
code and bundled model, run in a scratch folder holding a copy of `examples/`, exactly as the README shows it.
The block holds the command, the line it prints that says what was done, and the file it writes, byte for byte;
the progress and `speed:` lines, which differ from run to run, are left out (the README says so). Run by the
default model's build after it bundles a model; tests/test_readme.py checks the block against a live run.

    python -m tools.readme_example [--readme PATH]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dpiqa_cli.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
# this checkout's code and bundled file, however dpiqa is installed: an editable install of another checkout
# (or an installed wheel) would otherwise supply its own weights/, and the example would show another model
ENV = dict(os.environ, DPIQA_WEIGHTS_DIR=str(ROOT / "weights"),
           PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
BLOCK = re.compile(r"(<!-- example:begin -->\n).*?(<!-- example:end -->)", re.S)
COMMAND = ["score", "examples/", "--out", "scores.csv"]


def example_block() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "examples", Path(tmp) / "examples")
        r = subprocess.run([sys.executable, "-m", "dpiqa_cli", *COMMAND], cwd=tmp, env=ENV, capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            raise SystemExit(f"error: dpiqa {' '.join(COMMAND)} failed: {r.stderr.strip().splitlines()[-1:]}")
        done = [line for line in r.stderr.splitlines() if line.startswith("scored ")]
        table = (Path(tmp) / "scores.csv").read_text(encoding="utf-8")
    return f"```text\n$ dpiqa {' '.join(COMMAND)}\n{done[-1]}\n$ cat scores.csv\n{table}```\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the file whose block to replace")
    readme = ap.parse_args(argv).readme
    text = readme.read_text(encoding="utf-8")
    if not BLOCK.search(text):
        raise SystemExit(f"error: {readme} has no <!-- example:begin --> ... <!-- example:end --> block")
    block = example_block()
    write_text(readme, BLOCK.sub(lambda m: m.group(1) + block + m.group(2), text))
    print(block, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
