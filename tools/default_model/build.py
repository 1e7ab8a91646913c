"""Build the bundled default model, weights/dpiqa-student-lite0-synth.safetensors, from a fresh clone.

    bash tools/default_model/build.sh            # = python -m tools.default_model.build; under 150 min on 2 CPUs

1. fetch the manifest's photos (apt-get download + sha256 checks; `fetch.py`);
2. references: multi-scale 512 x 512 crops of the train and val photos (`references.py`);
3. `dpiqa synth` of each: TYPES_PER_REF distortion types per reference (ALWAYS plus others drawn per
   reference), 7 levels, per-image MS-SSIM labels;
4. one CSV over both, its `split` column the photo split (train / val);
5. `dpiqa distill --no-teacher` of the Lite0 student with the native view (RECIPE), once per data order in
   DATA_SEEDS: the same initial weights, the data in another order;
6. the average of the runs' weights; 7. the choice among the runs and their average, and of the native view's
   working-scale limit and crop combination, on the VAL photos (`choose.py`);
8. an fp16 copy of the choice into weights/, with its view and the choice recorded in its .json, and the
   ONNX graph it ships beside it for the core install (`tools/bundle_graph.py`);
9. the TEST photos, once: the level benchmark of the bundled file beside full-resolution PIQE and the file it
   replaces, and the native-vs-whole view check; both go into the model card (weights/README.md) as this
   run wrote them.
Every choice is made on validation; the test photos are scored only in step 9. Uses a GPU when present.
An interrupted build resumes where it stopped when run again with the same --work: finished references
and synth folders are kept, and the training continues from its last saved state.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import torch

from dpiqa_cli.data.synth import synthesize
from dpiqa_cli.evaluate.levels import markdown_table, piqe_scorer, run_level_bench
from dpiqa_cli.models.checkpoint import load_checkpoint, save_checkpoint
from dpiqa_cli.train.protocol import run_training
from tools.bundle_graph import bundle_graph
from tools.default_model import card
from tools.default_model.choose import RULE, choose, epoch_files, write_average, write_averages
from tools.default_model.fetch import fetch_photos
from tools.default_model.manifest import MANIFEST, load_manifest
from tools.default_model.references import TRAIN_MAX_PER_PHOTO, VAL_MAX_PER_PHOTO, make_references, prepare_eval_photos
from tools.default_model.scorers import checkpoint_scorer
from tools.default_model.view_check import view_check

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "weights" / "dpiqa-student-lite0-synth.safetensors"
SEED = 0
ALWAYS = ("gaussian_blur", "white_noise", "jpeg")  # the three defects photographers meet most
TYPES_PER_REF = 4
# Seven levels up to 1.5x the anchors' strength: the level benchmark's sigma-8 blur at 1024 px lies past the
# fifth anchor (5.5), and a model that never saw it scored heavy blur like a smooth sky, above level 3.
LEVELS, MAX_STRENGTH = 7, 1.5
# Two runs of one recipe land far apart on the val photos (another seed: 0.78 against 0.91), so the build
# trains two data orders from the same start, one epoch each (the time of one two-epoch run), and offers
# their weight average too: one model of the same size, less tied to one order of the batches.
DATA_SEEDS = (0, 1)
# The student's recipe. Fixed before the first run was scored on the val photos; see card.md.
RECIPE = dict(model="student-lite0", init="imagenet", freeze_blocks=3, view="native", max_side=1024,
              epochs=1, milestones="1", batch_size=8, lr=1e-4, head_lr=1e-5, workers=1, seed=SEED,
              split="official", test_frac=0.0, keep_epochs=True, no_teacher=True)
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
    return (meta.get("seed"), meta.get("per_ref"), meta.get("always"), meta.get("label_kind"), meta.get("levels"),
            meta.get("max_strength")) == (SEED, TYPES_PER_REF, list(ALWAYS), "image", LEVELS, MAX_STRENGTH) \
        and (folder / "synth.csv").is_file()


def environment() -> dict:
    return {"python": platform.python_version(),
            **{p: version(p) for p in ("torch", "numpy", "pillow", "scipy", "timm", "safetensors", "pypiqe")}}


def bundle(choice: dict, out: Path, info: dict) -> Path:
    """The chosen checkpoint as fp16 in weights/, its view's limit and crop combination as chosen."""
    model, config = load_checkpoint(choice["chosen"])
    config["view"] = {**config["view"], "max_side": choice["max_side"], "combine": choice["combine"]}
    save_checkpoint(model, out, spec_name=config["model"], info={**config, **info}, dtype=torch.float16)
    mb = out.stat().st_size / 2**20
    if mb > MAX_MB:
        raise SystemExit(f"error: {out} is {mb:.1f} MB, over the {MAX_MB} MB limit for bundled weights")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "default-model"), help="scratch folder (default: %(default)s)")
    ap.add_argument("--cache", help="photo cache (default: $DPIQA_PHOTO_CACHE or ~/.cache/dpiqa/default-model-photos)")
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
    step(3, f"synthetic distortions ({TYPES_PER_REF} types per reference, {LEVELS} levels to strength "
            f"{MAX_STRENGTH}, per-image labels)")
    synth = {split: work / "synth" / split for split in ("train", "val")}
    for split in ("val", "train"):
        if not synth_done(synth[split]):
            synthesize(refs[split], synth[split], seed=SEED, workers=args.workers, per_ref=TYPES_PER_REF,
                       always=list(ALWAYS), levels=LEVELS, max_strength=MAX_STRENGTH, progress=True)
    step(4, "one dataset over both")
    make_dataset(synth, work / "synth")
    step(5, f"train the student (native view, scores alone), {len(DATA_SEEDS)} data orders")
    runs, results = [work / f"run-{d}" for d in DATA_SEEDS], []
    for data_seed, run in zip(DATA_SEEDS, runs):
        if (run / "result.json").is_file():  # trained by an earlier, interrupted build
            results.append(json.loads((run / "result.json").read_text()))
        else:
            results.append(run_training("student", {**RECIPE, "data_seed": data_seed, "dataset": "csv",
                                                    "root": work / "synth", "out": run,
                                                    "resume": (run / "config.json").is_file()}, quiet=False))
    step(6, "the average of the runs' weights")
    candidates = [c for run in runs for c in epoch_files(run) + write_averages(run, epoch_files(run))]
    candidates.append(write_average([epoch_files(run)[-1] for run in runs], work / "average-of-runs.safetensors"))
    step(7, "choose on the val photos")
    val_photos = prepare_eval_photos(photos["val"], work / "val-photos", rows=rows)
    choice = choose(candidates, val_photos, work)
    step(8, "fp16 copy of the choice into weights/, and its ONNX graph")
    info = {"dataset": "dpiqa synth of the default-model photos (tools/default_model/manifest.csv)",
            "mos_scale": {"name": "synth", "min": 0.0, "max": 1.0, "lower_better": False},
            "photos": {s: sorted(photos[s]) for s in photos}, "manifest_sha256": card.sha256(MANIFEST),
            "synth": {"types_per_ref": TYPES_PER_REF, "always": list(ALWAYS), "levels": LEVELS,
                      "max_strength": MAX_STRENGTH, "label": "image", "seed": SEED},
            "recipe": {k: v for k, v in RECIPE.items()}, "data_seeds": list(DATA_SEEDS),
            "chosen_by": {"rule": RULE, "checkpoint": card.candidate_label(choice["chosen"]),
                          "max_side": choice["max_side"], "combine": choice["combine"],
                          "photos": choice["photos"]},
            "environment": environment(), "best_val_srcc_labels": [r.get("best_val_srcc") for r in results]}
    bundle(choice, OUT, info)
    bundle_graph(OUT)
    step(9, "the test photos, once: level benchmark beside PIQE, and the view check")
    test_photos = prepare_eval_photos(photos["test"], work / "test-photos", rows=rows)
    scorers = {"dpiqa": checkpoint_scorer(OUT), "PIQE": piqe_scorer}
    if previous.is_file():
        scorers["previous"] = checkpoint_scorer(previous)
    summaries = run_level_bench(test_photos, scorers, work / "test")
    views = view_check(OUT, test_photos, work / "view-check")
    card.write(card.CARD, {
        "file": card.file_facts(OUT),
        "choice": card.choice_table(choice),
        "test": markdown_table(summaries),
        "view-check": views["table"],
        "timing": card.timing(step.times, time.time() - step.t0),
    })
    subprocess.run([sys.executable, "-m", "tools.readme_example"], cwd=ROOT, check=True)  # README's example
    print(markdown_table(summaries), end="")
    print(views["table"], end="")
    json.dump({"choice": choice, "test": summaries, "view_check": views, "times": step.times},
              open(work / "build.json", "w"), indent=2, default=str)
    print(f"done in {(time.time() - step.t0) / 60:.0f} min; {OUT} and weights/README.md written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
