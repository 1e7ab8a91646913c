"""Reading what `dpiqa score` wrote: the ranked table (.csv, .jsonl, .parquet) and its errors file.

Paths are kept as text exactly as written (a file called `NA.jpg` or `1e5.jpg` stays a path, not a
missing value or a number); relative paths are taken relative to the table's folder, as `--from-list`
does. A table without a `rank` column is ranked here the way `score` ranks (score, then path).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.scoring.writer import FORMATS, errors_path

NUMERIC = ("rank", "score", "width", "height", "mos")


def _read_any(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DpiqaError("reading .parquet needs pyarrow (`pip install pyarrow`)") from None
        return pd.read_parquet(path)
    raise DpiqaError(f"scores file must end in {', '.join(sorted(FORMATS))}, not {path.name!r}")


def _absolute(paths: pd.Series, base: Path) -> pd.Series:
    return paths.map(lambda p: p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p)))


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """-> DataFrame[rank, path, score, width, height, mos?] sorted by rank; a one-line error if unusable."""
    path = Path(path)
    if not path.is_file():
        raise DpiqaError(f"scores file not found: {path}")
    try:
        df = _read_any(path)
    except DpiqaError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas/pyarrow parse errors
        raise DpiqaError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if len(df) == 0:  # every file failed (an empty .jsonl has no columns at all): show the failures
        return pd.DataFrame(columns=["rank", "path", "score", "width", "height"])
    missing = [c for c in ("path", "score") if c not in df.columns]
    if missing:
        raise DpiqaError(f"{path} has no {' or '.join(missing)} column (columns: {', '.join(map(str, df.columns))}); "
                         "is it a `dpiqa score` output?")
    df["path"] = _absolute(df["path"].astype(str), path.resolve().parent)
    for col in NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    bad = df.index[~np.isfinite(df["score"].to_numpy())]
    if len(bad):
        i = bad[0]
        raise DpiqaError(f"{path}: row {i + 1} ({df.at[i, 'path']}) has no valid score ({len(bad)} such rows)")
    if "rank" not in df.columns or df["rank"].isna().any():
        df = df.sort_values(["score", "path"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
        df["rank"] = range(1, len(df) + 1)
    else:
        df = df.sort_values("rank", kind="mergesort").reset_index(drop=True)
    for col in ("width", "height"):
        if col not in df.columns:
            df[col] = float("nan")
    cols = ["rank", "path", "score", "width", "height"] + (["mos"] if "mos" in df.columns else [])
    return df[cols]


def find_errors(scores_path: str | os.PathLike, errors: str | os.PathLike | None = None) -> Path | None:
    """The errors file to show: the one given (which must exist), else `<stem>.errors.csv` beside the scores."""
    if errors is not None:
        if not Path(errors).is_file():
            raise DpiqaError(f"errors file not found: {errors}")
        return Path(errors)
    auto = errors_path(Path(scores_path))
    return auto if auto.is_file() else None


def read_errors(path: Path | None, base: Path) -> list[tuple[str, str]]:
    """[(path, reason)] from a `path,reason` CSV; [] when there is none."""
    if path is None:
        return []
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DpiqaError(f"cannot read errors file {path}: {str(exc).splitlines()[0]}") from None
    if len(df.columns) and "path" not in df.columns:
        raise DpiqaError(f"errors file {path} has no path column (columns: {', '.join(df.columns)})")
    if len(df) == 0:
        return []
    reasons = df["reason"] if "reason" in df.columns else pd.Series([""] * len(df))
    return list(zip(_absolute(df["path"], base), reasons.astype(str)))
