"""Correlation reports: report.md (per-split table, then median/mean/std), report.json, scatter.png.

`write_report(out_dir, results, meta)` takes bench's splits, `score --mos`'s one split, training's final
test table or its protocol summary; `meta` names what was measured, and `first_line` is a warning that
must not be missed (e.g. --allow-overlap). Without matplotlib (the `bench` extra) there is no plot, and
report.md says so. Every file is written atomically.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dpiqa_cli.atomic import write_json, write_text, write_via
from dpiqa_cli.data.labels import direction_text
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.metrics import KEYS, LOGISTIC, RMSE, aggregate
from dpiqa_cli.extras import installed, pip_command

COLS = ("n",) + KEYS
HEAD = {"n": "n", "plcc": "PLCC", "plcc_logistic": "PLCC (logistic)", "srcc": "SRCC", "krcc": "KRCC", "rmse": "RMSE"}


def _num(v):
    """JSON-safe number: NaN/inf become null (strict JSON has no NaN)."""
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return v


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items() if not isinstance(v, pd.DataFrame)}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, Path):
        return str(obj)
    return _num(obj)


def normalise(results: dict, meta: dict) -> list[dict]:
    """The callers' shapes -> [{name, metrics, pred?, mos?, ids?}]."""
    if results.get("splits"):
        return [dict(s) for s in results["splits"]]
    name = str(meta.get("split_part") or meta.get("split") or "all")
    table = results.get("table")
    if isinstance(table, pd.DataFrame) and {"score", "mos"} <= set(table.columns):
        ids = table["id"] if "id" in table else table.get("path")
        return [{"name": name, "metrics": results.get("metrics", {}), "pred": table["score"].tolist(),
                 "mos": table["mos"].tolist(), "ids": None if ids is None else ids.astype(str).tolist()}]
    per_seed = (results.get("protocol") or {}).get("per_seed")
    if per_seed:
        return [{"name": f"seed {r.get('seed')}", "metrics": {k: v for k, v in r.items() if k != "seed"}}
                for r in per_seed]
    return [{"name": name, "metrics": results.get("metrics", {}), "pred": results.get("pred"),
             "mos": results.get("mos"), "ids": results.get("ids") or results.get("paths")}]


def _fmt(v, key: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "NaN"
    return str(int(v)) if key == "n" else f"{float(v):.4f}"


def _markdown(splits: list[dict], agg: dict, meta: dict) -> str:
    title = meta.get("title") or "dpiqa correlation report"
    lines = [f"**{meta['first_line']}**", ""] if meta.get("first_line") else []
    lines += [f"# {title}", ""]
    labels = [("model", "model"), ("weights", "weights"), ("checkpoint", "checkpoint"), ("dataset", "dataset"),
              ("root", "dataset root"), ("split", "split protocol"), ("trained_on", "trained on"),
              ("command", "command"), ("mos_file", "MOS file")]
    for key, label in labels:
        if meta.get(key) not in (None, ""):
            lines.append(f"- **{label}**: {meta[key]}")
    if meta.get("cross_dataset"):
        lines.append(f"- **cross-dataset**: trained on {meta.get('trained_on') or 'unknown'}, "
                     f"tested on every image of {meta.get('dataset')}")
    direction = direction_text({**(meta.get("scale") or {}), "why": meta.get("direction")})
    if direction:
        lines.append(f"- **MOS direction**: {direction}")
    lines += ["", f"Convention: {LOGISTIC}, fitted by least squares (scipy curve_fit) on each split; "
              f"PLCC is the raw Pearson r; SRCC/KRCC are rank correlations; {RMSE}. "
              "Aggregates over splits: median (the paper's headline), mean and population std.", "",
              "## Per split", "", "| split | " + " | ".join(HEAD[c] for c in COLS) + " |",
              "|---" * (len(COLS) + 1) + "|"]
    for s in splits:
        m = s.get("metrics") or {}
        lines.append(f"| {s['name']} | " + " | ".join(_fmt(m.get(c), c) for c in COLS) + " |")
    if agg:
        lines += ["", f"## Over {len(splits)} split(s)", "", "| statistic | " +
                  " | ".join(HEAD[c] for c in KEYS) + " |", "|---" * (len(KEYS) + 1) + "|"]
        for stat in ("median", "mean", "std"):
            lines.append(f"| {stat} | " + " | ".join(_fmt((agg.get(c) or {}).get(stat), c) for c in KEYS) + " |")
    notes = list(meta.get("notes") or []) + [f"{s['name']}: {n}" for s in splits for n in s.get("notes") or []]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _scatter(path: Path, splits: list[dict], meta: dict) -> None:
    import matplotlib  # ~0.5 s to import: only when a plot is drawn

    matplotlib.use("Agg")  # no display on servers/CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    drawn = 0
    for s in splits[:10]:
        if s.get("pred") is None or s.get("mos") is None:
            continue
        m = s.get("metrics") or {}
        ax.scatter(s["mos"], s["pred"], s=8, alpha=0.6,
                   label=f"{s['name']} (SRCC {_fmt(m.get('srcc'), 'srcc')}, PLCC {_fmt(m.get('plcc'), 'plcc')})")
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no per-image predictions", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("MOS (as evaluated)")
    ax.set_ylabel("predicted score")
    ax.set_title(f"{meta.get('model') or meta.get('command') or 'dpiqa'} on {meta.get('dataset') or 'MOS file'}",
                 fontsize=9)
    fig.tight_layout()
    write_via(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def write_report(out_dir, results: dict, meta: dict | None = None) -> Path:
    """Write report.md, report.json and scatter.png (where matplotlib is installed) into out_dir; returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    for key in ("model", "checkpoint"):  # training passes these in results
        if key in results and key not in meta:
            meta[key] = results[key]
    splits = normalise(results, meta)
    agg = results.get("aggregate") or (aggregate([s.get("metrics") or {} for s in splits]) if splits else {})
    rows = [{"split": s["name"], "id": i, "score": p, "mos": m}
            for s in splits if s.get("pred") is not None and s.get("mos") is not None
            for i, p, m in zip(s.get("ids") or [None] * len(s["pred"]), s["pred"], s["mos"])]
    if rows:
        write_via(out / "scores.csv", lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
    plot = installed("bench", ("matplotlib",))
    if not plot:
        why = f"No scatter.png: the plot needs matplotlib ({pip_command('bench')})."
        meta["notes"] = [*(meta.get("notes") or []), why]
    doc = {"meta": meta, "convention": {"plcc_logistic": LOGISTIC, "rmse": RMSE,
                                        "aggregate": "median over splits (paper)"},
           "splits": [{"name": s["name"], "metrics": s.get("metrics") or {},
                       **({"undefined": s["undefined"]} if s.get("undefined") else {})} for s in splits],
           "aggregate": agg}
    extra = {k: v for k, v in results.items() if k not in ("splits", "aggregate", "pred", "mos", "ids", "paths",
                                                           "table", "metrics", "model", "checkpoint")}
    if extra:
        doc["extra"] = extra
    write_json(out / "report.json", _clean(doc))
    md = _markdown(splits, agg, meta)
    write_text(out / "report.md", md)
    if plot:
        _scatter(out / "scatter.png", splits, meta)
    return out


def require_evaluated(splits: list[dict], report_dir) -> list[str]:
    """Warning lines for the splits without metrics; a one-line error when no split has any."""
    bad = [s for s in splits if s.get("undefined")]
    if splits and len(bad) == len(splits):
        more = f" (and {len(bad) - 1} more split(s) alike)" if len(bad) > 1 else ""
        raise DpiqaError(f"no split could be evaluated: {bad[0]['name']}: {bad[0]['undefined']}{more}; "
                         f"report: {Path(report_dir) / 'report.md'}")
    return [f"{s['name']}: metrics undefined: {s['undefined']}" for s in bad]
