"""Stand-ins used ONLY while dpiqa_cli.data.datasets / data.splits / evaluate.metrics / evaluate.report are
not installed (they are being written in parallel). Same contracts, generic CSV only. Delete once they land."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dpiqa_cli.errors import DpiqaError


def read_dataset(name: str, root, allow_missing: bool = False, **opts) -> pd.DataFrame:
    if name != "csv":
        raise DpiqaError(f"dataset {name!r} needs dpiqa_cli.data.datasets (not installed yet); only 'csv' works")
    root = Path(root)
    files = sorted(root.glob("*.csv"))
    if not files:
        raise DpiqaError(f"no .csv file in {root}")
    raw = pd.read_csv(files[0])
    if not {"path", "mos"} <= set(raw.columns):
        raise DpiqaError(f"{files[0]} needs columns path,mos")
    lo, hi = float(opts.get("mos_min", raw["mos"].min())), float(opts.get("mos_max", raw["mos"].max()))
    df = pd.DataFrame({"path": [str((root / p).resolve()) for p in raw["path"]], "id": raw["path"].astype(str),
                       "mos_raw": raw["mos"].astype(float)})
    df["mos"] = (df["mos_raw"] - lo) / ((hi - lo) or 1.0)
    df["ref"] = raw["ref"].astype(str) if "ref" in raw else None
    df["split"] = None
    df.attrs["scale"] = {"name": "csv", "min": lo, "max": hi, "lower_better": False}
    return df


def make_split(df, seed, by_ref, test_frac=0.2, val_frac=0.1) -> dict:
    rng = np.random.default_rng(seed)
    keys = df["ref"] if by_ref else df["id"]
    groups = sorted(set(keys))
    rng.shuffle(groups)
    n_test = max(1, round(len(groups) * test_frac))
    n_val = max(1, round(len(groups) * val_frac))
    part = {g: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, g in enumerate(groups)}
    out = {"train": [], "val": [], "test": [], "seed": seed, "by_ref": bool(by_ref)}
    for i, k in zip(df["id"], keys):
        out[part[k]].append(i)
    return out


def official_split(df) -> dict:
    out = {p: df.loc[df["split"] == p, "id"].tolist() for p in ("train", "val", "test")}
    return out


def compute_metrics(pred, mos) -> dict:
    from scipy import stats

    pred, mos = np.asarray(pred, float), np.asarray(mos, float)
    return {"srcc": float(stats.spearmanr(pred, mos)[0]), "plcc": float(stats.pearsonr(pred, mos)[0]),
            "krcc": float(stats.kendalltau(pred, mos)[0]), "rmse": float(np.sqrt(np.mean((pred - mos) ** 2))),
            "n": int(len(pred))}


def aggregate(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {k: {"median": float(np.median([r[k] for r in rows])), "mean": float(np.mean([r[k] for r in rows])),
                "std": float(np.std([r[k] for r in rows]))} for k in keys}


def write_report(out_dir, results, meta) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = {k: v for k, v in results.items() if not isinstance(v, pd.DataFrame)}
    if isinstance(results.get("table"), pd.DataFrame):
        results["table"].to_csv(out / "scores.csv", index=False)
    (out / "report.json").write_text(json.dumps({"results": res, "meta": meta}, indent=2, default=str))
    (out / "report.md").write_text("# report\n\n" + "\n".join(f"- {k}: {v}" for k, v in res.get("metrics", {}).items()))
