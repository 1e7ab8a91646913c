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
from dpiqa_cli.models.checkpoint_config import read_config


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
    cal = config["calibration"]
    return (f"- file: `weights/{Path(path).name}` ({Path(path).stat().st_size / 2**20:.1f} MB, fp16), "
            f"sha256 `{config['sha256']}`\n"
            f"- architecture: `{config['model']}`; view `{config['view']}`\n"
            f"- chosen: `{config['chosen_by']['checkpoint']}` of recipe `{config['recipe']['name']}`; scores through "
            f"1 / (1 + exp(-({cal['a']:.4g} s {cal['b']:+.4g})))\n"
            f"- built with: {env}\n")


def recipe_table(choice: dict) -> str:
    """Each recipe's runs on the val photos: their scores, mean and spread, and their weight average's."""
    lines = ["| recipe | its runs' scores, by data seed | mean | spread | average of the runs |",
             "|---|---|---:|---:|---:|"]
    for name, r in choice["recipes"].items():
        mark = " **(chosen)**" if name == choice["recipe"] else ""
        lines.append(f"| {name}{mark} | " + ", ".join(f"{v:.3f}" for v in r["runs"]) +
                     f" | {r['mean']:.3f} | {r['spread']:.3f} | " +
                     ("n/a (one run)" if r["average"] is None else f"{r['average']:.3f}") + " |")
    return "\n".join(lines) + "\n"


def choice_table(choice: dict) -> str:
    """One line per candidate: every val question and the score."""
    lines = ["| candidate | score | blur | noise | JPEG | camera types (mean) | pristine > middle | noise seen, full | "
             "noise seen, 1024 | SRCC full vs 1024 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in choice["rows"]:
        mark = " **(chosen)**" if r["checkpoint"] == choice["chosen"] else ""
        z, n = r["sizes"], r["sizes"]["photos"]
        lines.append(f"| {candidate_label(r['checkpoint'])}{mark} | {r['score']:.3f} | {r['blur']:.3f} | "
                     f"{r['noise']:.3f} | {r['jpeg']:.3f} | {r['camera_mean']:.3f} | "
                     f"{r['pristine']['wins']}/{r['pristine']['cases']} | {z['noise_lower']['full']}/{n} | "
                     f"{z['noise_lower']['1024']}/{n} | {z['size_srcc']:.3f} |")
    return "\n".join(lines) + "\n"


def view_table(choice: dict) -> str:
    """The detail crops K and their weight w, asked the size check."""
    v = choice["view"]
    lines = ["| detail crops K | weight w | score | noise seen, full | noise seen, 1024 | SRCC full vs 1024 |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in v["rows"]:
        mark = " **(chosen)**" if (r["native_crops"], r["native_weight"]) == (v["native_crops"], v["native_weight"]) else ""
        n = r["photos"]
        lines.append(f"| {r['native_crops']} | {r['native_weight']:g}{mark} | {r['score']:.3f} | "
                     f"{r['noise_lower']['full']}/{n} | {r['noise_lower']['1024']}/{n} | {r['size_srcc']:.3f} |")
    return "\n".join(lines) + "\n"


def calibration_text(cal: dict) -> str:
    return (f"a = {cal['a']:.4g}, b = {cal['b']:+.4g}, fitted on {cal['images']} val synth images: RMSE against their "
            f"labels {cal['rmse_raw']:.4f} raw, {cal['rmse']:.4f} calibrated.\n")


def below_nr_metrics(tests: dict) -> str:
    """The types on which the bundled file is below the better of PIQE and BRISQUE on the test photos."""
    out = []
    for family in ("classic", "camera"):
        ours = tests[family]["dpiqa"]["per_type"]
        for t, v in ours.items():
            best = max(tests[family][m]["per_type"][t]["srcc"] for m in ("PIQE", "BRISQUE"))
            if v["srcc"] < best:
                out.append(f"{t} ({v['srcc']:.3f} against {best:.3f})")
    return ("Below the better of PIQE and BRISQUE on: " + ", ".join(out) + ".\n") if out else \
        "At least the better of PIQE and BRISQUE on every type.\n"


def blocks(bundled: Path, choice: dict, calibration: dict, tests: dict, times: dict, total_s: float) -> dict[str, str]:
    """Every build block of the card, from what this build measured."""
    from dpiqa_cli.evaluate.camera_levels import camera_markdown_table
    from dpiqa_cli.evaluate.levels import markdown_table
    from tools.default_model import size_check

    return {"file": file_facts(bundled), "recipes": recipe_table(choice), "choice": choice_table(choice),
            "view": view_table(choice), "calibration": calibration_text(calibration),
            "test": markdown_table(tests["classic"]) + "\n" +
                    camera_markdown_table(tests["camera"], pristine_all=tests["pristine"]) + "\n" +
                    below_nr_metrics(tests),
            "sizes": size_check.table(tests["sizes"]), "timing": timing(times, total_s)}


def candidate_label(checkpoint: str | Path) -> str:
    """`tone-1/epoch-1.safetensors` for a run's epoch (its folder names its recipe and data order), else the
    file's name."""
    p = Path(checkpoint)
    return f"{p.parent.name}/{p.name}" if p.name.startswith("epoch-") else p.name


def timing(times: dict[str, int], total_s: float) -> str:
    steps = ", ".join(f"{k} from {v // 60} min" for k, v in times.items())
    return f"Build time on this machine: {total_s / 60:.0f} min in all ({steps}).\n"


if __name__ == "__main__":
    refresh(*map(Path, sys.argv[1:3]))
    print(f"refreshed {sys.argv[1] if len(sys.argv) > 1 else CARD}")
