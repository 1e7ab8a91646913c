"""`dpiqa bench`: score a dataset's test splits through the `score` pipeline and write a correlation report.

Every image any split needs is scored once (`score_paths`), then each split's test part is evaluated on the
normalised MOS. Splits: `checkpoint` (the checkpoint's own test part), `seeds` (the test parts training
draws with those seeds), `official`, `all` (cross-dataset); docs/scoring.md, "Benchmarking on a dataset".
`--scores FILE` reuses an existing `dpiqa score` output.
"""
from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dpiqa_cli.bench.held_out import HeldOut, held_out
from dpiqa_cli.data.catalog import canonical, dataset_info
from dpiqa_cli.data.datasets import read_dataset
from dpiqa_cli.data.splits import make_split, official_split, save_split
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.metrics import aggregate, evaluate_split
from dpiqa_cli.evaluate.mos import mos_split
from dpiqa_cli.evaluate.report import require_evaluated, write_report
from dpiqa_cli.models.resolve import resolve_model
from dpiqa_cli.scoring.pipeline import score_paths

SPLITS = ("checkpoint", "seeds", "official", "all")


def parse_seeds(text) -> list[int]:
    """'0-4' -> [0..4]; '0,3,7' -> [0, 3, 7]; '1-2,5' mixes both."""
    if isinstance(text, (list, tuple)):
        return [int(s) for s in text]
    seeds = []
    for part in str(text).replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise DpiqaError(f"bad --seeds {text!r}: use a range like 0-4 or a list like 0,1,2")
        seeds += list(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return sorted(set(seeds))


def model_info(model: str | None, weights) -> dict:
    """The checkpoint (or graph), its training dataset and its config (the network is not loaded); config
    None: random weights, nothing was trained."""
    resolved = resolve_model(model, weights)
    path = resolved.graph or resolved.checkpoint
    if path is None:
        return {"checkpoint": None, "trained_on": "random weights (no checkpoint)", "config": None}
    return {"checkpoint": str(path), "trained_on": resolved.config.get("dataset"), "config": resolved.config}


def make_splits(df: pd.DataFrame, dataset: str, split: str, seeds, guard: HeldOut | None = None) -> list[dict]:
    if split == "checkpoint":
        if guard is None or guard.own is None:
            raise DpiqaError(f"--split checkpoint needs a checkpoint that records its split of {dataset}")
        if not guard.own["test"]:
            raise DpiqaError(f"{guard.name} has no test images of {dataset}")
        return [{"name": "checkpoint", "split": dict(guard.own)}]
    if split == "official":
        sp = official_split(df)
        if not sp["test"]:
            raise DpiqaError(f"{dataset}: the official split has no test images")
        return [{"name": "official", "split": sp}]
    if split == "all":
        return [{"name": "all", "split": {"train": [], "val": [], "test": df["id"].astype(str).tolist(),
                                          "seed": None, "by": "all"}}]
    synthetic = dataset_info(dataset)["synthetic"]
    by_ref = bool(df["ref"].notna().all()) if synthetic or df["ref"].notna().any() else False
    if synthetic and not by_ref:
        raise DpiqaError(f"{dataset} is synthetic: its splits go by reference image, but some rows have no ref")
    return [{"name": f"seed {s}", "split": make_split(df, s, by_ref)} for s in parse_seeds(seeds)]


def overlap_line(allow_overlap: bool, overlap: dict, guard: HeldOut | None, dataset: str) -> str | None:
    """The report's first line under --allow-overlap: what was allowed."""
    if not allow_overlap:
        return None
    if overlap:
        k, n = sum(v[0] for v in overlap.values()), sum(v[1] for v in overlap.values())
        return (f"--allow-overlap: {k} of {n} test images were among the images the checkpoint trained or "
                "validated on; these are not held-out results")
    if guard is not None and guard.applies:
        return "--allow-overlap: no test image was among the images the checkpoint trained or validated on"
    if guard is not None and guard.unknown:
        return "--allow-overlap: the checkpoint does not record its training images; overlap was not checked"
    return f"--allow-overlap: the checkpoint was not trained on {dataset}; nothing to overlap"


def read_scores(path) -> dict:
    """A `dpiqa score` output (csv/jsonl/parquet) -> {absolute path: score}."""
    path = Path(path)
    if not path.is_file():
        raise DpiqaError(f"--scores file not found: {path}")
    try:
        t = (pd.read_parquet(path) if path.suffix == ".parquet" else
             pd.read_json(path, lines=True) if path.suffix == ".jsonl" else pd.read_csv(path))
    except (OSError, ValueError, ImportError) as exc:
        raise DpiqaError(f"cannot read --scores file {path}: {str(exc).splitlines()[0]}") from None
    if not {"path", "score"} <= set(t.columns):
        raise DpiqaError(f"{path}: a scores file needs columns path and score (found {', '.join(map(str, t.columns))})")
    base = path.resolve().parent
    keys = [str(p) if Path(str(p)).is_absolute() else str(base / str(p)) for p in t["path"]]
    return dict(zip(map(lambda k: str(Path(k).resolve()), keys), pd.to_numeric(t["score"], errors="coerce")))


def _score(paths: list[str], model, weights, device, batch_size, workers, progress) -> dict:
    out = score_paths(paths, model=model, weights=weights, device=device, batch_size=batch_size, workers=workers,
                      progress=progress)
    for p, reason in list(out.attrs.get("errors", {}).items())[:5]:
        print(f"failed: {p}: {reason}", file=sys.stderr)
    return dict(zip(out["path"], out["score"].astype(float)))


def _evaluate(df: pd.DataFrame, splits: list[dict], pred: dict, out: Path) -> tuple[list[dict], list[str]]:
    by_id = df.set_index("id")
    results, notes = [], []
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for s in splits:
        fname = "split-" + s["name"].replace(" ", "") + ".json"
        save_split(s["split"], out / "splits" / fname)
        rows = by_id.loc[s["split"]["test"]]
        have = np.array([p in pred and np.isfinite(pred[p]) for p in rows["path"]], bool)
        if not have.all():
            notes.append(f"{s['name']}: {int((~have).sum())} of {len(rows)} test images have no score (excluded)")
        rows = rows[have]
        p = np.array([pred[x] for x in rows["path"]], float)
        r = evaluate_split(s["name"], p, rows["mos"].to_numpy(float), rows.index.astype(str).tolist())
        results.append({**r, "split_file": f"splits/{fname}"})
    return results, notes


def run_bench(model=None, weights=None, dataset=None, root=None, split=None, seeds=None, out_dir="bench",
              device="auto", batch_size=None, workers=None, allow_missing=False, scores=None, mos=None,
              progress=True, dataset_opts: dict | None = None, allow_overlap: bool = False) -> dict:
    """Evaluate; write out_dir/report.{md,json}, scatter.png, splits/*.json. Returns the report's numbers.

    split None: the checkpoint's own test split when it was made on this dataset, else seeds (`seeds` None: 0-4)."""
    out = Path(out_dir)
    if split is not None and split not in SPLITS:
        raise DpiqaError(f"--split must be one of {', '.join(SPLITS)} (got {split!r})")
    if seeds is not None:
        parse_seeds(seeds)  # a typo fails before any file is read
        split = split or "seeds"
    seeds = "0-4" if seeds is None else seeds
    if mos is not None:
        return _bench_mos_file(scores, mos, out, allow_overlap)
    if dataset is None or root is None:
        raise DpiqaError("bench needs --dataset and --root (or --scores FILE --mos FILE)")
    dataset = canonical(dataset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_dataset(dataset, root, allow_missing=allow_missing, **(dataset_opts or {}))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if len(df) == 0:
        raise DpiqaError(f"{dataset} at {root}: no images")
    if scores is not None:
        info = {"checkpoint": None, "trained_on": None, "scores_file": str(scores), "config": None}
    else:
        info = model_info(model, weights)
    guard = held_out(info["checkpoint"], info.pop("config"), dataset, df, allow_overlap)
    notes = []
    if guard is not None:
        if guard.warning():
            print(f"warning: {guard.warning()}", file=sys.stderr)
            notes.append(guard.warning())
        notes += guard.notes
    split = split or (guard.default_split() if guard is not None else "seeds")
    splits = make_splits(df, dataset, split, seeds, guard)
    overlap = guard.check(splits) if guard is not None else {}
    notes += [f"{n}: {k} of {t} test images were among the checkpoint's training or validation images"
              for n, (k, t) in overlap.items()]
    needed = sorted(set().union(*(s["split"]["test"] for s in splits)))
    paths = df.set_index("id").loc[needed, "path"].tolist()
    if scores is not None:
        pred = read_scores(scores)
        pred = {p: pred.get(str(Path(p).resolve()), np.nan) for p in paths}
    else:
        pred = _score(paths, model, weights, device, batch_size, workers, progress)
    results, more = _evaluate(df, splits, pred, out)
    agg = aggregate([r["metrics"] for r in results])
    trained_on = info.get("trained_on")
    meta = {"command": "bench", "model": None if scores else model, "weights": str(weights) if weights else None,
            **info, "dataset": dataset, "root": str(Path(root).resolve()), "split": _split_label(split, splits),
            "seeds": parse_seeds(seeds) if split == "seeds" else None, "n_images": len(df),
            "n_scored": int(sum(np.isfinite(v) for v in pred.values())), "scale": df.attrs.get("scale"),
            "direction": df.attrs.get("direction"),
            "cross_dataset": split == "all" and bool(trained_on) and dataset not in str(trained_on).lower(),
            "held_out": None if guard is None or not guard.applies else "; ".join(guard.what),
            "overlap": {n: {"seen": k, "test": t} for n, (k, t) in overlap.items()},
            "first_line": overlap_line(allow_overlap, overlap, guard, dataset),
            "missing_skipped": df.attrs.get("missing", 0), "notes": notes + more}
    write_report(out, {"splits": results, "aggregate": agg}, meta)
    return {"splits": [{"name": r["name"], **r["metrics"]} for r in results], "aggregate": agg, "out": str(out),
            "warnings": require_evaluated(results, out), "first_line": meta["first_line"]}


def _split_label(split: str, splits: list[dict]) -> str:
    if split != "checkpoint":
        return split
    s = splits[0]["split"]
    how = f"seed {s.get('seed')}, by {s.get('by')}" if s.get("by") != "official" else "official"
    return f"checkpoint (its own test images: {how})"


def _bench_mos_file(scores, mos, out: Path, allow_overlap: bool = False) -> dict:
    """--scores FILE --mos FILE: one split of every scored file that has a MOS, normalised as `score --mos` does."""
    if scores is None:
        raise DpiqaError("--mos needs --scores FILE (bench does not score loose folders; use `dpiqa score --mos`)")
    mos = Path(mos)
    if not mos.is_file():
        raise DpiqaError(f"--mos file not found: {mos}")
    pred = {p: v for p, v in read_scores(scores).items() if np.isfinite(v)}  # a failed file has no score
    split, meta = mos_split(pd.DataFrame({"path": list(pred), "score": list(pred.values())}), mos)
    agg = aggregate([split["metrics"]])
    first = "--allow-overlap: no checkpoint is named; overlap was not checked" if allow_overlap else None
    write_report(out, {"splits": [split], "aggregate": agg},
                 {"command": "bench --scores --mos", "scores_file": str(scores), **meta, "first_line": first})
    return {"splits": [{"name": "all", **split["metrics"]}], "aggregate": agg, "out": str(out),
            "warnings": require_evaluated([split], out), "first_line": first}


def bench_command(**kw) -> dict:
    """`dpiqa bench`: run_bench, then a warning line per split without metrics and one summary line on stderr."""
    kw["dataset_opts"] = {k: v for k, v in (kw.get("dataset_opts") or {}).items() if v is not None}
    res = run_bench(**kw)
    for line in res["warnings"] + ([res["first_line"]] if res["first_line"] else []):
        print(f"warning: {line}", file=sys.stderr)
    med = res["aggregate"]
    print(f"SRCC {med['srcc']['median']:.4f}  PLCC {med['plcc']['median']:.4f}  "
          f"PLCC(logistic) {med['plcc_logistic']['median']:.4f}  (median of {len(res['splits'])} split(s)); "
          f"report: {Path(res['out']) / 'report.md'}", file=sys.stderr)
    return res
