"""The model card's numbers, written by the build that measured them.

The card's text is `tools/default_model/card.md`, with blocks `<!-- build:NAME -->` ... `<!-- /build:NAME -->`;
`write` fills each block with what this build produced, keeps the hand-written text around them, and writes
the result as the bundled model's card (weights/README.md), so the card's numbers change only with the model.
`python -m tools.default_model.card` (`refresh`) carries an edit of card.md's text into the card without a
rebuild: every block keeps what the build that made the bundled file wrote there.
"""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from dpiqa_cli.atomic import write_text
from dpiqa_cli.models.config import read_config


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


TEMPLATE = Path(__file__).with_name("card.md")
CARD = Path(__file__).resolve().parents[2] / "weights" / "README.md"
_BLOCK = re.compile(r"<!-- build:([\w-]+) -->\n(.*?)<!-- /build:\1 -->", re.S)


def write(card: Path, blocks: dict[str, str], template: Path | None = None) -> None:
    """`template` (default: card.md here) with its blocks filled, written to `card`."""
    text = Path(template or TEMPLATE).read_text(encoding="utf-8")
    present = {name for name, _ in _BLOCK.findall(text)}
    for name in blocks:
        if name not in present:
            raise SystemExit(f"error: {card} has no build:{name} block")

    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name not in blocks:
            return m.group(0)
        body = blocks[name].rstrip("\n")
        return f"<!-- build:{name} -->\n{body}\n<!-- /build:{name} -->"
    write_text(card, _BLOCK.sub(fill, text))


def refresh(card: Path = CARD, template: Path | None = None) -> None:
    """Rewrite `card` from the template's current text, each block kept as the card holds it."""
    blocks = dict(_BLOCK.findall(Path(card).read_text(encoding="utf-8")))
    names = [name for name, _ in _BLOCK.findall(Path(template or TEMPLATE).read_text(encoding="utf-8"))]
    missing = [name for name in names if name not in blocks]
    if missing:
        raise SystemExit(f"error: {card} lacks the build blocks {missing}: rebuild the model")
    write(card, {name: blocks[name] for name in names}, template)


def file_facts(path: Path) -> str:
    _, config = read_config(path)
    env = ", ".join(f"{k} {v}" for k, v in config.get("environment", {}).items())
    return (f"- file: `weights/{Path(path).name}` ({Path(path).stat().st_size / 2**20:.1f} MB, fp16), "
            f"sha256 `{config['sha256']}`\n"
            f"- architecture: `{config['model']}`, view `{config['view']}`\n"
            f"- chosen: `{config['chosen_by']['checkpoint']}` with working-scale limit "
            f"{config['view']['max_side']} px and crop combination "
            f"`{config['chosen_by']['combine']}`\n"
            f"- built with: {env}\n")


def choice_table(choice: dict) -> str:
    """One line per candidate and crop combination; the view check and the score per working-scale limit."""
    limits = list(dict.fromkeys(r["max_side"] for r in choice["rows"]))
    lines = ["| candidate | combine | blur SRCC | noise SRCC | JPEG SRCC | pristine > level 3 | " +
             " | ".join(f"view check, score ≤{m}" for m in limits) + " |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * len(limits)]
    chosen = (choice["chosen"], choice["max_side"], choice["combine"])
    groups: dict = {}
    for r in choice["rows"]:
        groups.setdefault((r["checkpoint"], r["combine"]), {})[r["max_side"]] = r
    for (ckpt, combine), by_limit in groups.items():
        r = next(iter(by_limit.values()))  # the level questions do not depend on the limit
        cells = []
        for m in limits:
            v = by_limit[m]
            mark = " **(chosen)**" if (ckpt, m, combine) == chosen else ""
            cells.append(f"{v['view_lower']}/{v['view_pairs']}, {v['score']:.3f}{mark}")
        lines.append(f"| {candidate_label(ckpt)} | {combine} | {r['blur']:.3f} | {r['noise']:.3f} | {r['jpeg']:.3f} | "
                     f"{r['wins']}/{r['cases']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def candidate_label(checkpoint: str | Path) -> str:
    """`run-1/epoch-1.safetensors` for a run's epoch, else the file's name."""
    p = Path(checkpoint)
    return f"{p.parent.name}/{p.name}" if p.parent.name.startswith("run-") else p.name


def timing(times: dict[str, int], total_s: float) -> str:
    steps = ", ".join(f"{k} from {v // 60} min" for k, v in times.items())
    return f"Build time on this machine: {total_s / 60:.0f} min in all ({steps}).\n"


if __name__ == "__main__":
    refresh(*map(Path, sys.argv[1:3]))
    print(f"refreshed {sys.argv[1] if len(sys.argv) > 1 else CARD}")
