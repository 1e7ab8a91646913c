"""Where scores go: an append-only sidecar while running, then one ranked file written atomically.

Sidecar `<stem>.partial.csv` (`path,score,width,height,error`): one row per image, appended as batches
finish and fsynced every few batches, so a SIGKILL loses at most those batches. A torn last line (a
kill in the middle of a write) is dropped on reading. `--resume` reads it (and any per-rank sidecars
of a torchrun job) and skips the paths already scored; failed paths are retried.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
from pathlib import Path

import pandas as pd

from dpiqa_cli.atomic import write_json, write_stream, write_via
from dpiqa_cli.errors import DpiqaError

SIDE_COLS = ["path", "score", "width", "height", "error"]
FORMATS = {".csv", ".jsonl", ".parquet"}


def check_out(out: Path | None) -> None:
    """Refuse an unusable --out before any work is done."""
    if out is None:
        return
    if out.suffix.lower() not in FORMATS:
        raise DpiqaError(f"--out must end in .csv, .jsonl or .parquet, not {out.name!r}")
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DpiqaError("writing .parquet needs pyarrow (`pip install pyarrow`); or use .csv / .jsonl") from None
    if out.exists() and out.is_dir():
        raise DpiqaError(f"--out {out} is a directory")
    if not out.parent.exists():
        raise DpiqaError(f"folder of --out does not exist: {out.parent}")


def sidecar_path(out: Path, rank: int | None = None) -> Path:
    return out.with_name(out.stem + (f".rank{rank}" if rank is not None else "") + ".partial.csv")


def meta_path(out: Path) -> Path:
    return out.with_name(out.stem + ".partial.json")


def errors_path(out: Path) -> Path:
    return out.with_name(out.stem + ".errors.csv")


def all_sidecars(out: Path) -> list[Path]:
    """The single-process sidecar plus those of every rank of a torchrun job."""
    found = [sidecar_path(out)] + sorted(Path(p) for p in glob.glob(glob.escape(str(out.with_name(out.stem)))
                                                                    + ".rank*.partial.csv"))
    return [p for p in found if p.exists()]


class Sidecar:
    """Append rows; flush+fsync every `flush_every` batches (and on close)."""

    def __init__(self, path: Path, flush_every: int = 4, append: bool = False):
        self.path, self.flush_every, self.pending = path, max(1, int(flush_every)), 0
        fresh = not (append and path.exists() and path.stat().st_size > 0)
        if not fresh:
            _truncate_torn_tail(path)
        self.f = open(path, "w" if fresh else "a", newline="", encoding="utf-8")
        self.w = csv.writer(self.f)
        if fresh:
            self.w.writerow(SIDE_COLS)
            self.sync()

    def add(self, rows: list[tuple]) -> None:
        for path, score, w, h, err in rows:
            self.w.writerow([path, "" if score is None else repr(float(score)), w or "", h or "", err or ""])
        self.pending += 1
        if self.pending >= self.flush_every:
            self.sync()

    def sync(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.pending = 0

    def close(self) -> None:
        if not self.f.closed:
            self.sync()
            self.f.close()


def _truncate_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so appends start on a fresh line."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def read_sidecars(paths: list[Path]) -> tuple[dict, dict]:
    """-> (scored {path: (score, w, h)}, failed {path: reason}); later rows win; torn rows are skipped."""
    scored, failed = {}, {}
    for p in paths:
        text = p.read_text(encoding="utf-8", errors="replace")
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if header != SIDE_COLS:
            raise DpiqaError(f"{p} is not a dpiqa sidecar (header {header}); delete it to start over")
        for row in rows:
            if len(row) != len(SIDE_COLS):
                continue
            path, score, w, h, err = row
            if score:
                try:
                    s = float(score)
                    if not math.isfinite(s):
                        raise ValueError
                    scored[path] = (s, int(w), int(h))
                except ValueError:
                    continue
                failed.pop(path, None)
            elif err and path not in scored:
                failed[path] = err
    return scored, failed


def check_meta(out: Path, meta: dict, resume: bool) -> None:
    """Never mix models in one result file, and never silently overwrite an interrupted run."""
    mp, sides = meta_path(out), all_sidecars(out)
    if sides and not resume:
        raise DpiqaError(f"{sides[0]} holds results of an interrupted run: add --resume to continue it, "
                         "or delete it to start over")
    if resume and mp.exists():
        try:
            old = json.loads(mp.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        diff = [k for k in meta if old.get(k) != meta[k]]
        if diff:
            raise DpiqaError(f"--resume: {out} was started with a different {', '.join(diff)} "
                             f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); delete {mp.name} and the "
                             ".partial.csv files to start over")


def write_meta(out: Path, meta: dict) -> None:
    write_json(meta_path(out), meta)


def write_results(df: pd.DataFrame, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix == ".csv":
        write_stream(out, lambda f: df.to_csv(f, index=False, float_format=None))
    elif suffix == ".jsonl":
        write_stream(out, lambda f: df.to_json(f, orient="records", lines=True, double_precision=15))
    else:
        write_via(out, lambda tmp: df.to_parquet(tmp, index=False))


def write_errors(errors: pd.DataFrame, out: Path) -> Path | None:
    """`<stem>.errors.csv` (path,reason), or remove a stale one when nothing failed."""
    path = errors_path(out)
    if len(errors):
        write_stream(path, lambda f: errors.to_csv(f, index=False))
        return path
    if path.exists():
        path.unlink()
    return None


def cleanup(out: Path, sidecars: list[Path]) -> None:
    """Only after the final file is in place: the sidecars and their meta are no longer needed."""
    for p in sidecars + [meta_path(out)]:
        if p.exists():
            p.unlink()
