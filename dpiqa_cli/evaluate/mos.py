"""`dpiqa score --mos FILE`: join scores with known MOS and write a correlation report.

The MOS file is a CSV with a path-like column (path, image, image_name, name, file, filename) and a
MOS column (mos, MOS, dmos, score, ...). Rows are matched by absolute path first, then by path
relative to the MOS file's folder, then by file name (only when names are unique among the scored
files). Metrics and the report are the ones `dpiqa bench` writes.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.metrics import compute_metrics
from dpiqa_cli.evaluate.report import write_report

PATH_COLS = ("path", "image", "image_name", "img", "name", "file", "filename", "dist_img")
MOS_COLS = ("mos", "dmos", "mos_raw", "score", "quality", "label")


def _pick(columns, wanted, what: str, source: Path) -> str:
    lower = {c.lower().strip(): c for c in columns}
    for w in wanted:
        if w in lower:
            return lower[w]
    raise DpiqaError(f"{source}: no {what} column (looked for {', '.join(wanted)}; found {', '.join(map(str, columns))})")


def read_mos(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep=None, engine="python")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DpiqaError(f"cannot read --mos file {path}: {str(exc).splitlines()[0]}") from None
    pcol = _pick(df.columns, PATH_COLS, "path/name", path)
    mcol = _pick(df.columns, MOS_COLS, "MOS", path)
    out = pd.DataFrame({"key": df[pcol].astype(str).str.strip(), "mos_true": pd.to_numeric(df[mcol], errors="coerce")})
    return out.dropna()


def match(scores: pd.DataFrame, mos: pd.DataFrame, base: Path) -> pd.DataFrame:
    """-> DataFrame(path, score, mos_true) for the scored files that have a MOS."""
    by_abs = {os.path.normpath(p): p for p in scores["path"]}
    names = scores["path"].map(os.path.basename)
    unique_names = {n: p for n, p in zip(names, scores["path"]) if (names == n).sum() == 1}
    found = {}
    for key, value in zip(mos["key"], mos["mos_true"]):
        cand = key if os.path.isabs(key) else os.path.normpath(base / key)
        p = by_abs.get(os.path.normpath(cand)) or unique_names.get(os.path.basename(key))
        if p is not None:
            found[p] = value
    if not found:
        raise DpiqaError("--mos: none of its rows matches a scored file (by path or file name)")
    s = scores.set_index("path")["score"]
    return pd.DataFrame({"path": list(found), "score": [float(s[p]) for p in found], "mos_true": list(found.values())})


def mos_report(scores: pd.DataFrame, mos_file: Path, report_dir: Path | None, out: Path | None) -> Path:
    joined = match(scores, read_mos(mos_file), mos_file.resolve().parent)
    if len(joined) < 3:
        raise DpiqaError(f"--mos: only {len(joined)} scored file(s) have a MOS; correlations need at least 3")
    metrics = compute_metrics(joined["score"].to_numpy(), joined["mos_true"].to_numpy())
    report_dir = report_dir or ((out.with_name(out.stem + ".report")) if out is not None else Path("score-report"))
    report_dir.mkdir(parents=True, exist_ok=True)
    results = {"metrics": metrics, "pred": joined["score"].tolist(), "mos": joined["mos_true"].tolist(),
               "paths": joined["path"].tolist()}
    meta = {"command": "score --mos", "mos_file": str(mos_file), "n_matched": len(joined),
            "n_scored": len(scores)}
    write_report(report_dir, results, meta)
    return report_dir
