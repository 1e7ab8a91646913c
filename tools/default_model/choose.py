"""Choose the bundled model on the VALIDATION photos only: the recipe, the run, the view's detail crops and
weight, and the score calibration. Test photos are never touched here.

The questions (`ask`), each the acceptance test's own, asked on the val photos:
- the level set at ~1024 px (`dpiqa_cli.evaluate.levels`: blur, noise and JPEG at 5 levels) and the camera
  set (`dpiqa_cli.evaluate.camera_levels`: 9 camera-defect families at 4 levels): the mean per-photo SRCC
  of each family, and how often the pristine photo beats its middle level;
- the size check (`size_check.py`): the SRCC across photos between their full-size and 1024-px copies, and
  on how many photos noise of sigma 6 lowers the score at each size.
A candidate's score is the mean of six numbers, each a share of the bar: the classic types' mean SRCC, the
camera types' mean SRCC, the pristine win rate over every type, the noise-seen rate at full size and at
1024 px, and the size SRCC.
1. Recipes: each recipe is trained in two data orders; a recipe's score is the mean of its runs' scores
   (with their spread), and the best recipe wins.
2. The candidate: that recipe's runs and the average of their weights; the best score wins, ties to the
   earlier (runs in data-seed order, then the average).
3. The view: the multiscale view's detail crops K (NATIVE_CROPS) and their weight w (WEIGHTS), asked the
   size check alone (the level photos are at most 1024 px, where the view cuts only its look); the best mean
   of the two noise rates and the size SRCC wins, ties to the cheaper K, then the lower w.
4. The calibration: a logistic fitted to the val synth images' labels (`fit_calibration`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.optimize import least_squares

from dpiqa_cli.atomic import write_json
from dpiqa_cli.data.views import View
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.camera_levels import CAMERA_PRISTINE_LEVEL, summarise_camera, write_camera_set
from dpiqa_cli.evaluate.levels import PRISTINE_LEVEL, TYPES, summarise, write_level_set
from dpiqa_cli.models.checkpoint import average_checkpoints, save_checkpoint
from dpiqa_cli.scoring.runner import calibrate
from tools.default_model import size_check
from tools.default_model.card import candidate_label
from tools.default_model.scorers import crop_scores

NATIVE_CROPS = (1, 2, 3)  # 12 MP at 4 + K crops: K = 3 is the most the cost bar (2x a 1024 x 768 photo) allows
WEIGHTS = (0.25, 0.5, 0.75)
DEFAULT_VIEW = dict(native_crops=2, native_weight=0.5)  # the view the recipes and runs are compared under
RULE = ("the highest mean of the classic types' mean SRCC, the camera types' mean SRCC, the pristine win rate, "
        "the noise-seen rate at full size and at 1024 px, and the size SRCC, on the val photos; recipes by the mean "
        "of their runs; ties to the earlier candidate (data-seed order, then the average)")


@dataclass
class ValSet:
    """The val photos' files for every question."""

    photos: list[str]
    levels: dict  # (photo, type, level) -> file, classic set
    camera: dict  # (photo, type, level) -> file, camera set
    copies: dict  # photo -> {size: (clean, noisy)}


def prepare(level_photos: dict[str, Path], sources: dict[str, Path], work: Path) -> ValSet:
    levels = write_level_set(level_photos, work / "levels")
    camera = write_camera_set(level_photos, work / "camera")
    too_big = [k for k, f in {**levels, **camera}.items() if max(_size(f)) > 1024]
    if too_big:  # the level questions are then the same for every K and w: asked once per candidate
        raise DpiqaError(f"level photos over 1024 px: {too_big[:3]}")
    copies = {p: size_check.make_copies(sources[p], level_photos[p], work / "sizes", p) for p in level_photos}
    return ValSet(list(level_photos), levels, camera, copies)


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _combined(crops, view: View) -> list[float]:
    return [view.combine(c, size) for c, size in crops]


def pristine_all(classic: dict, camera: dict) -> dict:
    """The pristine copy above its middle level, over every type of both families."""
    a, b = classic[f"pristine_vs_level{PRISTINE_LEVEL}"], camera[f"pristine_vs_level{CAMERA_PRISTINE_LEVEL}"]
    wins, cases = a["wins"] + b["wins"], a["cases"] + b["cases"]
    return {"wins": wins, "cases": cases, "rate": wins / cases if cases else 0.0, "lost": a["lost"] + b["lost"]}


def level_answers(ckpt: Path, vs: ValSet) -> dict:
    """The level and camera questions (view-independent at <= 1024 px)."""
    view = View("multiscale", 1)  # any multiscale view: at <= 1024 px only the look's mean counts
    out = {}
    for family, files, summary in (("classic", vs.levels, summarise), ("camera", vs.camera, summarise_camera)):
        keys = list(files)
        crops = crop_scores(ckpt, [files[k] for k in keys], **DEFAULT_VIEW)
        out[family] = summary(dict(zip(keys, _combined(crops, view))), vs.photos)
    out["pristine"] = pristine_all(out["classic"], out["camera"])
    return out


def size_crops(ckpt: Path, vs: ValSet, native_crops: int) -> dict:
    """{photo: {size: (clean crops, noisy crops)}} under the checkpoint's view with K detail crops."""
    order = [(p, size, i) for p in vs.photos for size in size_check.SIZES for i in (0, 1)]
    crops = crop_scores(ckpt, [vs.copies[p][size][i] for p, size, i in order], native_crops=native_crops)
    out: dict = {}
    for (p, size, i), c in zip(order, crops):
        out.setdefault(p, {}).setdefault(size, [None, None])[i] = c
    return out


def size_answers(crops: dict, view: View) -> dict:
    return size_check.summarise({p: {s: tuple(view.combine(c, size) for c, size in pair) for s, pair in by.items()}
                                 for p, by in crops.items()})


def selection_score(levels: dict, sizes: dict) -> float:
    n = sizes["photos"]
    return float(np.mean([np.mean([levels["classic"]["per_type"][t]["srcc"] for t in TYPES]),
                          levels["camera"]["mean_srcc"], levels["pristine"]["rate"],
                          sizes["noise_lower"]["full"] / n, sizes["noise_lower"]["1024"] / n, sizes["size_srcc"]]))


def ask(ckpt: Path, vs: ValSet, log=print) -> dict:
    """Every question, under DEFAULT_VIEW; returns the candidate's row."""
    levels = level_answers(ckpt, vs)
    view = View("multiscale", 1, **DEFAULT_VIEW)
    sizes = size_answers(size_crops(ckpt, vs, DEFAULT_VIEW["native_crops"]), view)
    row = {"checkpoint": str(ckpt), "score": selection_score(levels, sizes),
           **{t: levels["classic"]["per_type"][t]["srcc"] for t in TYPES},
           "camera": {t: v["srcc"] for t, v in levels["camera"]["per_type"].items()},
           "camera_mean": levels["camera"]["mean_srcc"], "pristine": levels["pristine"], "sizes": sizes}
    log(f"  {candidate_label(ckpt)}: score {row['score']:.3f}  " + "  ".join(f"{t} {row[t]:.3f}" for t in TYPES) +
        f"  camera {row['camera_mean']:.3f}  pristine {row['pristine']['wins']}/{row['pristine']['cases']}  "
        f"noise {sizes['noise_lower']['full']}/{sizes['noise_lower']['1024']} of {sizes['photos']}  "
        f"sizes {sizes['size_srcc']:.3f}")
    return row


def write_average(checkpoints: list[Path], dest: Path) -> Path:
    """DEST: the uniform average of the checkpoints' weights (runs that share a start)."""
    model, config = average_checkpoints(checkpoints)
    return save_checkpoint(model, dest, spec_name=config["model"], info=config)


def candidates(runs: dict[str, list[Path]], averages: dict[str, Path], recipe: str) -> list[Path]:
    """A recipe's runs in data-seed order, then their average where there is one."""
    return [*runs[recipe], *([averages[recipe]] if recipe in averages else [])]


def choose(runs: dict[str, list[Path]], averages: dict[str, Path], vs: ValSet, work: Path, log=print) -> dict:
    """Steps 1-3: {recipes, rows, recipe, chosen, view}. `runs`: recipe -> its runs' checkpoints in data-seed
    order; `averages`: recipe -> the average of its runs, for recipes of more than one run."""
    rows = {}
    for recipe in runs:
        for ckpt in candidates(runs, averages, recipe):
            rows[str(ckpt)] = {**ask(ckpt, vs, log), "recipe": recipe}
    recipes = {}
    for recipe, ckpts in runs.items():
        scores = [rows[str(c)]["score"] for c in ckpts]
        recipes[recipe] = {"runs": scores, "mean": float(np.mean(scores)), "spread": float(np.ptp(scores)),
                           "average": rows[str(averages[recipe])]["score"] if recipe in averages else None}
    best = max(recipes, key=lambda r: recipes[r]["mean"])  # max keeps the first of equal scores
    chosen = max(candidates(runs, averages, best), key=lambda c: rows[str(c)]["score"])
    view = choose_view(chosen, vs, log)
    result = {"rule": RULE, "photos": vs.photos, "recipes": recipes, "recipe": best, "chosen": str(chosen),
              "rows": list(rows.values()), "view": view}
    write_json(work / "choose.json", result)
    return result


def choose_view(ckpt: Path, vs: ValSet, log=print) -> dict:
    """Step 3: {native_crops, native_weight, rows}."""
    rows = []
    for k in NATIVE_CROPS:
        crops = size_crops(ckpt, vs, k)
        for w in WEIGHTS:
            s = size_answers(crops, View("multiscale", 1, native_crops=k, native_weight=w))
            n = s["photos"]
            score = float(np.mean([s["noise_lower"]["full"] / n, s["noise_lower"]["1024"] / n, s["size_srcc"]]))
            rows.append({"native_crops": k, "native_weight": w, "score": score, **s})
            log(f"  view K={k} w={w}: score {score:.3f}  noise {s['noise_lower']['full']}/{s['noise_lower']['1024']} "
                f"of {n}  sizes {s['size_srcc']:.3f}")
    best = max(rows, key=lambda r: r["score"])  # rows are in (K, w) order: ties go to the cheaper K, lower w
    return {"native_crops": best["native_crops"], "native_weight": best["native_weight"], "rows": rows}


def fit_calibration(ckpt: Path, view: View, files: list[Path], labels: list[float]) -> dict:
    """A logistic 1 / (1 + exp(-(a s + b))), a > 0, fitted by least squares to the labels of the val synth
    images scored under `view`; its RMSE before and after."""
    s = np.array(_combined(crop_scores(ckpt, files, view=view), view))
    y = np.asarray(labels, dtype=np.float64)

    def resid(p):
        return calibrate(s, {"kind": "logistic", "a": float(np.exp(p[0])), "b": float(p[1])}) - y

    fit = least_squares(resid, x0=[np.log(6.0), -3.0])
    a, b = float(np.exp(fit.x[0])), float(fit.x[1])
    return {"kind": "logistic", "a": a, "b": b, "images": len(y),
            "rmse_raw": float(np.sqrt(np.mean((s - y) ** 2))), "rmse": float(np.sqrt(np.mean(resid(fit.x) ** 2)))}
