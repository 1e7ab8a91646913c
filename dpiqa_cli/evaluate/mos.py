"""`dpiqa score --mos FILE`: join scores with known MOS and write a correlation report.

Rows match by absolute path, then by path relative to the MOS file, then by unique file name, in one
linear pass. The labels' direction and scale come from `data.labels`, normalised over the whole file as
`dpiqa bench` normalises a dataset (docs/scoring.md, "`--mos FILE`").
"""
from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from dpiqa_cli.data.labels import file_dataset, label_scale, normalise
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.metrics import evaluate_split
from dpiqa_cli.evaluate.report import require_evaluated, write_report

PATH_COLS = ("path", "image", "image_name", "img", "name", "file", "filename", "dist_img")
MOS_COLS = ("mos", "dmos", "mos_raw", "score", "quality", "label")


def _pick(columns, wanted, what: str, source: Path) -> str:
    lower = {c.lower().strip(): c for c in columns}
    for w in wanted:
        if w in lower:
            return lower[w]
    raise DpiqaError(f"{source}: no {what} column (looked for {', '.join(wanted)}; found {', '.join(map(str, columns))})")


def _separator(path: Path) -> str:
    """The delimiter of the header line (comma, tab, semicolon, space), so pandas' fast C parser reads the rest."""
    with open(path, newline="", errors="replace") as f:
        head = f.readline()
    try:
        return csv.Sniffer().sniff(head, delimiters=",\t; ").delimiter
    except csv.Error:
        return ","


def read_mos(path: Path) -> pd.DataFrame:
    """-> DataFrame(key, mos_true: the raw label); attrs['scale'] = the labels' direction and range."""
    try:
        sep = _separator(path)
        df = pd.read_csv(path, sep=r"\s+" if sep == " " else sep)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DpiqaError(f"cannot read --mos file {path}: {str(exc).splitlines()[0]}") from None
    pcol = _pick(df.columns, PATH_COLS, "path/name", path)
    mcol = _pick(df.columns, MOS_COLS, "MOS", path)
    out = pd.DataFrame({"key": df[pcol].astype(str).str.strip(), "mos_true": pd.to_numeric(df[mcol], errors="coerce")})
    out = out.dropna()
    out.attrs["scale"] = label_scale(out["mos_true"].to_numpy(float), column=str(mcol), dataset=file_dataset(df.columns))
    return out


def match(scores: pd.DataFrame, mos: pd.DataFrame, base: Path) -> pd.DataFrame:
    """-> DataFrame(path, score, mos_true) for the scored files that have a MOS (a later row wins)."""
    paths = [str(p) for p in scores["path"]]
    by_abs = {os.path.normpath(p): p for p in paths}
    names = [os.path.basename(p) for p in paths]
    count = Counter(names)
    unique_names = {n: p for n, p in zip(names, paths) if count[n] == 1}
    base = str(base)
    found = {}
    for key, value in zip(mos["key"].tolist(), mos["mos_true"].tolist()):
        cand = os.path.normpath(key if os.path.isabs(key) else os.path.join(base, key))
        p = by_abs.get(cand) or unique_names.get(os.path.basename(key))
        if p is not None:
            found[p] = value
    if not found:
        raise DpiqaError("--mos: none of its rows matches a scored file (by path or file name)")
    score_of = dict(zip(paths, scores["score"].astype(float).tolist()))
    return pd.DataFrame({"path": list(found), "score": [score_of[p] for p in found], "mos_true": list(found.values())})


def mos_split(scores: pd.DataFrame, mos_file: Path) -> tuple[dict, dict]:
    """The one split of a scores table against a MOS file: ({name, metrics, pred, mos, ids, undefined}, meta)."""
    mos = read_mos(mos_file)
    joined = match(scores, mos, mos_file.resolve().parent)
    if len(joined) < 3:
        raise DpiqaError(f"--mos: only {len(joined)} scored file(s) have a MOS; correlations need at least 3")
    scale = mos.attrs["scale"]
    mos01 = normalise(joined["mos_true"].to_numpy(float), scale)
    split = evaluate_split("all", joined["score"].to_numpy(float), mos01, joined["path"].tolist())
    meta = {"mos_file": str(mos_file), "n_matched": len(joined), "n_scored": len(scores), "split": "all",
            "scale": {k: scale[k] for k in ("name", "min", "max", "lower_better")}, "direction": scale["why"]}
    return split, meta


def mos_report(scores: pd.DataFrame, mos_file: Path, report_dir: Path | None, out: Path | None) -> Path:
    split, meta = mos_split(scores, mos_file)
    report_dir = report_dir or ((out.with_name(out.stem + ".report")) if out is not None else Path("score-report"))
    report_dir.mkdir(parents=True, exist_ok=True)
    write_report(report_dir, {"splits": [split]}, {"command": "score --mos", **meta})
    require_evaluated([split], report_dir)
    return report_dir

