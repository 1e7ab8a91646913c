"""Choose the bundled model among a build's candidates, on the VALIDATION photos only.

Candidates: each training run's last epoch, and the uniform average of their weights (the runs share initial
weights and differ in data order, so their average is one model of the same size), each under the native view
with the working-scale limits of MAX_SIDES and the two ways it can combine an image's crops (`mean`, `q25`).
Each is asked the acceptance test's own questions on the val photos: their level set
(`dpiqa_cli.evaluate.levels`: blur, noise and JPEG levels in order, pristine above level 3) and the view check
(a copy with mild noise ranked below the clean photo, both at 4000 x 3000; `view_check.py`). The level photos
are at most 1024 px, so every limit sees them alike; the limit decides how much of a 12 MP file's own pixels
the view keeps. The rule: the highest mean of the three per-type SRCCs, the pristine win rate and the view
check's win rate wins; ties go to the earlier candidate in the order above (runs, then the average; the lower
limit, which scores a large photo faster; mean before q25). Test photos are never touched here.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from dpiqa_cli.atomic import write_json
from dpiqa_cli.data.views import COMBINE, View
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.levels import TYPES, summarise, write_level_set
from dpiqa_cli.models.checkpoint import average_checkpoints, save_checkpoint
from tools.default_model.card import candidate_label
from tools.default_model.scorers import crop_scores
from tools.default_model.view_check import make_pair, noisy_lower

AVERAGE_LAST = (2, 3)
# The native view's working-scale limit: 1024 px (a KonIQ photo's size), 2048, and 4000 (a 12 MP camera file
# at its own pixels); each step up costs about four times the crops on a 12 MP photo.
MAX_SIDES = (1024, 2048, 4000)
_COMBINE = {rule: View("native", 1, combine_rule=rule).combine for rule in COMBINE}  # as scoring combines crops
RULE = ("the highest mean of the blur, noise and JPEG SRCCs, the pristine win rate and the view check's win rate "
        "on the val photos; ties to the earlier candidate (runs, then their average; the lower limit; mean before q25)")


def selection_score(summary: dict, view_rate: float | None = None) -> float:
    """Mean of the per-type SRCCs, the pristine win rate and (when given) the view check's win rate: each
    acceptance criterion counts the same."""
    parts = [summary["per_type"][t]["srcc"] for t in TYPES] + [summary["pristine_vs_level3"]["rate"]]
    return float(np.mean(parts + ([] if view_rate is None else [view_rate])))


def epoch_files(run: Path) -> list[Path]:
    """RUN/epoch-N.safetensors in epoch order."""
    files = [p for p in run.glob("epoch-*.safetensors") if re.fullmatch(r"epoch-\d+", p.stem)]
    return sorted(files, key=lambda p: int(p.stem.split("-")[1]))


def write_averages(run: Path, epochs: list[Path]) -> list[Path]:
    """RUN/avg-last-K.safetensors for each K of AVERAGE_LAST that the run has enough epochs for."""
    return [write_average(epochs[-k:], run / f"avg-last-{k}.safetensors") for k in AVERAGE_LAST if len(epochs) >= k]


def write_average(checkpoints: list[Path], dest: Path) -> Path:
    """DEST: the uniform average of the checkpoints' weights (the last epochs of a run, or several runs)."""
    model, config = average_checkpoints(checkpoints)
    return save_checkpoint(model, dest, spec_name=config["model"], info=config)


def choose(candidates: list[Path], val_photos: dict[str, Path], work: Path, log=print,
           max_sides: tuple[int, ...] = MAX_SIDES) -> dict:
    """Score every candidate x limit x combine rule on the val questions; returns {chosen, max_side, combine, rows}."""
    files = write_level_set(val_photos, work / "val-levels")
    keys = list(files)
    too_big = [k for k, f in files.items() if max(_size(f)) > min(max_sides)]
    if too_big:  # the level crops are scored once, which holds only where no limit shrinks them
        raise DpiqaError(f"val level photos larger than the lowest limit {min(max_sides)} px: {too_big[:3]}")
    pairs = [make_pair(p, work / "val-view-check", name) for name, p in val_photos.items()]
    pair_files = [f for pair in pairs for f in pair]
    rows = []
    for ckpt in candidates:
        crops = crop_scores(ckpt, [files[k] for k in keys])
        levels = {rule: summarise({k: _COMBINE[rule](c) for k, c in zip(keys, crops)}, list(val_photos))
                  for rule in COMBINE}  # the level photos are under every limit: one summary per rule
        for max_side in max_sides:
            pair_crops = crop_scores(ckpt, pair_files, max_side=max_side)
            for rule, s in levels.items():
                scores = [_COMBINE[rule](c) for c in pair_crops]
                lower = noisy_lower(zip(scores[0::2], scores[1::2]))
                row = {"checkpoint": str(ckpt), "max_side": max_side, "combine": rule,
                       "score": selection_score(s, lower / len(pairs)), **{t: s["per_type"][t]["srcc"] for t in TYPES},
                       "wins": s["pristine_vs_level3"]["wins"], "cases": s["pristine_vs_level3"]["cases"],
                       "view_lower": lower, "view_pairs": len(pairs)}
                rows.append(row)
                log(f"  {candidate_label(ckpt)} <={max_side} {rule:4s}: score {row['score']:.3f}  " +
                    "  ".join(f"{t} {row[t]:.3f}" for t in TYPES) +
                    f"  pristine > level 3 {row['wins']}/{row['cases']}  view check {lower}/{len(pairs)}")
    best = max(rows, key=lambda r: r["score"])  # max keeps the first of equal scores
    result = {"photos": list(val_photos), "rule": RULE, "chosen": best["checkpoint"], "max_side": best["max_side"],
              "combine": best["combine"], "rows": rows}
    write_json(work / "choose.json", result)
    return result


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size
