"""Fail (exit 1, one message) unless BENCH_DIR holds a well-formed bench report: CI's guard.

    python tools/check_report.py BENCH_DIR

Checks report.md (has the per-split table and the logistic convention), report.json (parses; every split
has finite metrics in range: correlations in [-1, 1], RMSE >= 0, n >= 3) and scatter.png (PNG signature), or,
from an install without matplotlib, report.md's note that says why there is no plot.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

CORR = ("plcc", "plcc_logistic", "srcc", "krcc")


def check(d: Path) -> list[str]:
    errs = []
    for name in ("report.md", "report.json"):
        if not (d / name).is_file() or (d / name).stat().st_size == 0:
            errs.append(f"{d / name} is missing or empty")
    if errs:
        return errs
    md = (d / "report.md").read_text(errors="replace")
    if "| split |" not in md or "logistic" not in md.lower():
        errs.append("report.md lacks the per-split table or the logistic convention")
    if not (d / "scatter.png").is_file():
        if "No scatter.png: the plot needs matplotlib" not in md:
            errs.append(f"{d / 'scatter.png'} is missing and report.md does not say why")
    elif (d / "scatter.png").read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        errs.append("scatter.png is not a PNG")
    try:
        doc = json.loads((d / "report.json").read_text())
    except ValueError as exc:
        return errs + [f"report.json does not parse: {exc}"]
    splits = doc.get("splits") if isinstance(doc, dict) else None
    if not splits:
        return errs + ["report.json has no splits"]
    for s in splits:
        m = s.get("metrics") or {}
        for k in CORR + ("rmse", "n"):
            v = m.get(k)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                errs.append(f"split {s.get('name')}: {k} is {v!r}, not a finite number")
            elif k in CORR and not -1.0 - 1e-9 <= v <= 1.0 + 1e-9:
                errs.append(f"split {s.get('name')}: {k} = {v} outside [-1, 1]")
            elif k == "rmse" and v < 0 or k == "n" and v < 3:
                errs.append(f"split {s.get('name')}: {k} = {v} out of range")
    for k in CORR:
        if not isinstance(((doc.get("aggregate") or {}).get(k) or {}).get("median"), (int, float)):
            errs.append(f"report.json: aggregate {k} median missing")
    return errs


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_report.py BENCH_DIR")
    problems = check(Path(sys.argv[1]))
    if problems:
        sys.exit("report check failed: " + "; ".join(problems))
    print(f"report OK: {sys.argv[1]}")
