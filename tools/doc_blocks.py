"""Generated blocks in the docs: text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, replaced by the
script that measured it, so a number in a doc has one source."""
from __future__ import annotations

import re
from pathlib import Path

from dpiqa_cli.atomic import write_text


def replace_block(path: Path, name: str, text: str) -> None:
    """Put `text` between the markers of block `name` in `path`; an error if the file lacks them."""
    block = re.compile(rf"(<!-- {re.escape(name)}:begin -->\n).*?(<!-- {re.escape(name)}:end -->)", re.S)
    doc = Path(path).read_text()
    if not block.search(doc):
        raise SystemExit(f"error: {Path(path).name} has no <!-- {name}:begin/end --> markers")
    write_text(path, block.sub(lambda m: m.group(1) + text + m.group(2), doc))


def publish(text: str, name: str, write: bool = True, path: Path | None = None) -> None:
    """Print a measured table, and (unless `write` is off) put it into its block of BENCHMARKS.md."""
    print(text)
    if write:
        replace_block(path or Path(__file__).resolve().parents[1] / "BENCHMARKS.md", name, text)
