"""Build the bundled default model, weights/dpiqa-student-lite0-synth.safetensors, from a fresh clone.

    bash tools/default_model/build.sh            # = python -m tools.default_model.build; about 4 h on 2 CPUs

1. fetch the manifest's photos (apt-get download + sha256 checks; `fetch.py`);
2. references: multi-scale 512 x 512 crops of the train and val photos (`references.py`);
3. `dpiqa synth` of each: the superset of `recipes.py` (blur, noise, JPEG and 3 camera types drawn per
   reference, 7 levels), with each image's MS-SSIM and tone shift;
4. one CSV over both, and one per recipe (its labels and rows);
5. `dpiqa distill --no-teacher` of the Lite0 student under the multiscale view, per recipe and data order
   (`recipes.TRAIN`): the frozen part's features are computed once and shared by every run;
6. the average of each recipe's runs' weights;
7. the choice on the VAL photos (`choose.py`): the recipe, the run, the view's detail crops and weight,
   and the score calibration;
8. an fp16 copy of the choice into weights/, with its view, calibration and the choice in its .json, and
   the ONNX graph it ships beside it for the core install (`tools/bundle_graph.py`);
9. the TEST photos, once: the level and camera sets of the bundled file beside full-resolution PIQE and
   BRISQUE and the file it replaces, the chosen recipe's other candidates (the run-to-run spread on test),
   and the size check; all of it goes into the model card (weights/README.md) as this run wrote it.
Every choice is made on validation; the test photos are scored only in step 9. Uses a GPU when present.
An interrupted build resumes where it stopped when run again with the same --work.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import torch

from dpiqa_cli.data.distortions import CAMERA_TYPES
from dpiqa_cli.data.synth import synthesize
from dpiqa_cli.data.views import View
from dpiqa_cli.evaluate.camera_levels import summarise_camera, write_camera_set
from dpiqa_cli.evaluate.levels import score_set, summarise, write_level_set
from dpiqa_cli.evaluate.nr_metrics import brisque_scorer, piqe_scorer
from dpiqa_cli.models.checkpoint import load_checkpoint, save_checkpoint
from dpiqa_cli.train.protocol import run_training
from tools.bundle_graph import bundle_graph
from tools.default_model import card, size_check
from tools.default_model.choose import candidates, choose, fit_calibration, prepare, pristine_all, write_average
from tools.default_model.fetch import fetch_photos
from tools.default_model.manifest import MANIFEST, load_manifest
from tools.default_model.recipes import ALWAYS, BUILT, DATA_SEEDS, EXTRA_TYPES, RECIPES, TRAIN, write_recipe_csv
from tools.default_model.references import TRAIN_MAX_PER_PHOTO, VAL_MAX_PER_PHOTO, make_references, prepare_eval_photos
from tools.default_model.scorers import checkpoint_scorer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "weights" / "dpiqa-student-lite0-synth.safetensors"
SEED = 0
# Seven levels up to 1.5x the anchors' strength: the level benchmark's sigma-8 blur at 1024 px lies past the
# fifth anchor (5.5), and a model that never saw it scored heavy blur like a smooth sky, above level 3.
LEVELS, MAX_STRENGTH = 7, 1.5
MAX_MB = 50


class Steps:
    def __init__(self, total: int):
        self.t0, self.total, self.times = time.time(), total, {}

    def __call__(self, n: int, what: str) -> None:
        print(f"== [{(time.time() - self.t0) / 60:.0f} min] {n}/{self.total} {what}", file=sys.stderr, flush=True)
        self.times[f"{n} {what}"] = round(time.time() - self.t0)


def make_dataset(synth: dict[str, Path], root: Path) -> Path:
    """ROOT/dataset.csv over the synth folders below ROOT, its `split` column naming each folder's split."""
    parts = []
    for split, folder in synth.items():
        t = pd.read_csv(folder / "synth.csv")
        rel = folder.relative_to(root).as_posix()
        t["path"], t["ref"], t["split"] = rel + "/" + t["path"], rel + "/" + t["ref"], split
        parts.append(t)
    path = root / "dataset.csv"
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


def synth_done(folder: Path) -> bool:
    """A finished `dpiqa synth` of this build's settings (synth.json is written after the images and CSV)."""
    try:
        meta = json.loads((folder / "synth.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (meta.get("seed"), meta.get("per_ref"), meta.get("always"), meta.get("types"), meta.get("levels"),
            meta.get("max_strength")) == (SEED, len(ALWAYS) + EXTRA_TYPES, list(ALWAYS),
                                          list(ALWAYS + CAMERA_TYPES), LEVELS, MAX_STRENGTH) \
        and (folder / "synth.csv").is_file()


def environment() -> dict:
    return {"python": platform.python_version(),
            **{p: version(p) for p in ("torch", "numpy", "pillow", "scipy", "timm", "safetensors", "pypiqe")}}


def bundle(chosen: str, view: View, calibration: dict, out: Path, info: dict) -> Path:
    """The chosen checkpoint as fp16 in weights/, with the chosen view and calibration."""
    model, config = load_checkpoint(chosen)
    config["view"] = view.to_config()
    config["calibration"] = {k: calibration[k] for k in ("kind", "a", "b")}
    save_checkpoint(model, out, spec_name=config["model"], info={**config, **info}, dtype=torch.float16)
    mb = out.stat().st_size / 2**20
    if mb > MAX_MB:
        raise SystemExit(f"error: {out} is {mb:.1f} MB, over the {MAX_MB} MB limit for bundled weights")
    return out


def train_all(work: Path, csvs: dict[str, Path]) -> tuple[dict[str, list[Path]], dict]:
    """Step 5: RUN/epoch-1.safetensors of every recipe and data order; an interrupted run resumes."""
    runs, results = {}, {}
    for recipe, csv in csvs.items():
        runs[recipe] = []
        for data_seed in DATA_SEEDS:
            run = work / "runs" / f"{recipe}-{data_seed}"
            if (run / "result.json").is_file():
                results[run.name] = json.loads((run / "result.json").read_text())
            else:
                results[run.name] = run_training("student", {**TRAIN, "data_seed": data_seed, "dataset": "csv",
                                                             "root": csv, "out": run,
                                                             "frozen_cache": str(work / "frozen"),
                                                             "resume": (run / "state").is_dir()}, quiet=False)
            runs[recipe].append(run / "epoch-1.safetensors")
    return runs, results


def test_tables(bundled: Path, view: View, previous: Path | None, others: dict[str, Path], photos: dict,
                sources: dict, work: Path) -> dict:
    """Step 9: the level, camera and size questions on the test photos for the bundled file and its companions."""
    levels = write_level_set(photos, work / "levels")
    camera = write_camera_set(photos, work / "camera")
    scorers = {"dpiqa": checkpoint_scorer(bundled), "PIQE": piqe_scorer, "BRISQUE": brisque_scorer}
    if previous is not None:
        scorers["previous"] = checkpoint_scorer(previous)
    scorers.update({label: checkpoint_scorer(path, view=view) for label, path in others.items()})  # bundled view
    names = list(photos)
    out: dict = {"classic": {}, "camera": {}, "pristine": {}, "sizes": {}}
    copies = {p: size_check.make_copies(sources[p], photos[p], work / "sizes", p) for p in names}
    order = [(p, s, i) for p in names for s in size_check.SIZES for i in (0, 1)]
    for name, fn in scorers.items():
        out["classic"][name] = summarise(score_set(levels, fn), names)
        out["camera"][name] = summarise_camera(score_set(camera, fn), names)
        out["pristine"][name] = pristine_all(out["classic"][name], out["camera"][name])
        got = dict(zip(order, fn([copies[p][s][i] for p, s, i in order])))
        out["sizes"][name] = size_check.summarise({p: {s: (got[(p, s, 0)], got[(p, s, 1)]) for s in size_check.SIZES}
                                                   for p in names})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "default-model"), help="scratch folder (default: %(default)s)")
    ap.add_argument("--cache", help="photo cache (default: $DPIQA_PHOTO_CACHE, else default-model-photos in the user "
                    "cache folder: ~/.cache/dpiqa on Linux)")
    ap.add_argument("--workers", type=int, default=2, help="synth processes")
    args = ap.parse_args(argv)
    work = Path(args.work)
    os.environ.setdefault("DPIQA_CACHE_DIR", str(work / "cache"))  # the candidates' ONNX exports stay in the build
    if (work / "build.json").exists():
        raise SystemExit(f"error: {work} holds a finished build; remove it or pass another --work")
    step = Steps(9)
    rows = load_manifest()
    work.mkdir(parents=True, exist_ok=True)
    previous = work / "previous.safetensors"  # the file this build replaces, for the test table's `previous` column
    if OUT.is_file() and not previous.exists():
        for suffix in (".safetensors", ".json"):
            previous.with_suffix(suffix).write_bytes(OUT.with_suffix(suffix).read_bytes())

    step(1, "fetch the photos")
    photos = {split: fetch_photos(args.cache, splits=(split,)) for split in ("train", "val", "test")}
    step(2, "references of the train and val photos")
    refs = {split: work / "refs" / split for split in ("train", "val")}
    for split, cap in (("train", TRAIN_MAX_PER_PHOTO), ("val", VAL_MAX_PER_PHOTO)):
        if not (refs[split] / "references.csv").is_file():  # written last: its presence means done
            make_references(photos[split], refs[split], rows, max_per_photo=cap)
    step(3, f"synthetic distortions (blur, noise, JPEG and {EXTRA_TYPES} camera types per reference, {LEVELS} "
            f"levels to strength {MAX_STRENGTH})")
    synth = {split: work / "synth" / split for split in ("train", "val")}
    for split in ("val", "train"):
        if not synth_done(synth[split]):
            synthesize(refs[split], synth[split], seed=SEED, workers=args.workers, per_ref=len(ALWAYS) + EXTRA_TYPES,
                       always=list(ALWAYS), types=list(ALWAYS + CAMERA_TYPES), levels=LEVELS,
                       max_strength=MAX_STRENGTH, progress=True)
    step(4, "one dataset over both, and each recipe's")
    superset = make_dataset(synth, work / "synth")
    csvs = {recipe: write_recipe_csv(superset, recipe) for recipe in BUILT}
    step(5, f"train the student: {len(BUILT)} recipes x {len(DATA_SEEDS)} data orders")
    runs, results = train_all(work, csvs)
    step(6, "the average of each recipe's runs")
    averages = {r: write_average(ckpts, work / "runs" / f"{r}-average.safetensors") for r, ckpts in runs.items()
                if len(ckpts) > 1}  # one run has no average
    step(7, "choose on the val photos")
    val_photos = prepare_eval_photos(photos["val"], work / "val-photos", rows=rows)
    vs = prepare(val_photos, photos["val"], work / "val")
    choice = choose(runs, averages, vs, work)
    view = replace(View("multiscale", 512), native_crops=choice["view"]["native_crops"],
                   native_weight=choice["view"]["native_weight"])
    val_rows = pd.read_csv(csvs[choice["recipe"]]).query("split == 'val'")
    calibration = fit_calibration(Path(choice["chosen"]), view, [work / "synth" / p for p in val_rows["path"]],
                                  val_rows["mos"].tolist())
    step(8, "fp16 copy of the choice into weights/, and its ONNX graph")
    recipe = RECIPES[choice["recipe"]]
    info = {"dataset": "dpiqa synth of the default-model photos (tools/default_model/manifest.csv)",
            "mos_scale": {"name": "synth", "min": 0.0, "max": 1.0, "lower_better": False},
            "photos": {s: sorted(photos[s]) for s in photos}, "manifest_sha256": card.sha256(MANIFEST),
            "synth": {"per_ref": len(ALWAYS) + EXTRA_TYPES, "always": list(ALWAYS), "pool": list(CAMERA_TYPES),
                      "levels": LEVELS, "max_strength": MAX_STRENGTH, "seed": SEED, **recipe},
            "recipe": {"name": choice["recipe"], **TRAIN}, "data_seeds": list(DATA_SEEDS),
            "chosen_by": {"rule": choice["rule"], "checkpoint": card.candidate_label(choice["chosen"]),
                          "photos": choice["photos"], "view": choice["view"] | {"rows": None},
                          "calibration": calibration},
            "environment": environment()}
    bundle(choice["chosen"], view, calibration, OUT, info)
    bundle_graph(OUT)
    step(9, "the test photos, once: level, camera and size questions beside PIQE and BRISQUE")
    test_photos = prepare_eval_photos(photos["test"], work / "test-photos", rows=rows)
    others = {f"{card.candidate_label(c)} (spread)": c for c in candidates(runs, averages, choice["recipe"])
              if str(c) != choice["chosen"]}
    tests = test_tables(OUT, view, previous if previous.is_file() else None, others, test_photos, photos["test"],
                        work / "test")
    card.write(card.CARD, card.blocks(OUT, choice, calibration, tests, step.times, time.time() - step.t0))
    subprocess.run([sys.executable, "-m", "tools.readme_example"], cwd=ROOT, check=True)  # README's example
    json.dump({"choice": choice, "calibration": calibration, "test": tests, "results": results, "times": step.times},
              open(work / "build.json", "w"), indent=2, default=str)
    print(f"done in {(time.time() - step.t0) / 60:.0f} min; {OUT} and weights/README.md written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
