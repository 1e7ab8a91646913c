"""Choose the bundled model among a build's candidates, on the VALIDATION photos only.

Candidates: each training run's last epoch, and the uniform average of their weights (the runs share initial
weights and differ in data order, so their average is one model of the same size), each with the two ways the
native view can combine an image's crops (`mean`, `q25`). Each is asked the acceptance test's own questions on
the val photos: their level set (`dpiqa_cli.evaluate.levels`: blur, noise and JPEG levels in order, pristine
above level 3) and the view check (a copy with mild noise ranked below the clean photo, both at 4000 x 3000;
`view_check.py`). The rule: the highest mean of the three per-type SRCCs, the pristine win rate and the view
check's win rate wins; ties go to the earlier candidate in the order above (runs, then the average; mean
before q25). Test photos are never touched here.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dpiqa_cli.atomic import write_json
from dpiqa_cli.data.views import COMBINE
from dpiqa_cli.evaluate.levels import TYPES, summarise, write_level_set
from dpiqa_cli.models.checkpoint import average_checkpoints, save_checkpoint
from tools.default_model.card import candidate_label
from tools.default_model.scorers import crop_scores
from tools.default_model.view_check import make_pair, noisy_lower

AVERAGE_LAST = (2, 3)
RULE = ("the highest mean of the blur, noise and JPEG SRCCs, the pristine win rate and the view check's win rate "
        "on the val photos; ties to the earlier candidate (runs, then their average; mean before q25)")


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


def choose(candidates: list[Path], val_photos: dict[str, Path], work: Path, log=print) -> dict:
    """Score every candidate x combine rule on the val level set; returns {chosen, combine, rows}."""
    files = write_level_set(val_photos, work / "val-levels")
    keys = list(files)
    pairs = [make_pair(p, work / "val-view-check", name) for name, p in val_photos.items()]
    rows = []
    for ckpt in candidates:
        crops = crop_scores(ckpt, [files[k] for k in keys])
        pair_crops = crop_scores(ckpt, [f for pair in pairs for f in pair])
        for rule in COMBINE:
            combine = np.mean if rule == "mean" else (lambda c: np.quantile(c, 0.25))
            scores = {k: float(combine(c)) for k, c in zip(keys, crops)}
            pair_scores = [float(combine(c)) for c in pair_crops]
            lower = noisy_lower(zip(pair_scores[0::2], pair_scores[1::2]))
            s = summarise(scores, list(val_photos))
            row = {"checkpoint": str(ckpt), "combine": rule, "score": selection_score(s, lower / len(pairs)),
                   **{t: s["per_type"][t]["srcc"] for t in TYPES},
                   "wins": s["pristine_vs_level3"]["wins"], "cases": s["pristine_vs_level3"]["cases"],
                   "view_lower": lower, "view_pairs": len(pairs)}
            rows.append(row)
            log(f"  {candidate_label(ckpt)} {rule:4s}: score {row['score']:.3f}  " +
                "  ".join(f"{t} {row[t]:.3f}" for t in TYPES) + f"  pristine > level 3 {row['wins']}/{row['cases']}"
                f"  view check {lower}/{len(pairs)}")
    best = max(rows, key=lambda r: r["score"])  # max keeps the first of equal scores
    result = {"photos": list(val_photos), "rule": RULE, "chosen": best["checkpoint"], "combine": best["combine"], "rows": rows}
    write_json(work / "choose.json", result)
    return result
