"""Where scores go: a durable store while running, then one ranked file written atomically.

`ResultWriter` is the whole protocol (open -> add rows -> finish); the functions below are its parts.
The default store is the sidecar `<stem>.partial.csv` (`path,score,width,height,error`): one row per
image, appended as batches finish and fsynced every few batches, so a SIGKILL loses at most those
batches. A torn last line (a kill in the middle of a write) is dropped on reading. `--resume` reads it
and skips the paths already scored; failed paths are retried. The Ray path plugs in another store
(`scoring.parquet_parts`: Parquet partitions) with the same methods.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from dpiqa_cli.atomic import write_json, write_stream, write_via
from dpiqa_cli.data.reasons import NO_RESULT
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint_config import is_mos_scale

SIDE_COLS = ["path", "score", "width", "height", "error"]


class ResultRow(NamedTuple):
    """One file's result, as the stores keep it: its score and size, or why it failed (score None)."""

    path: str
    score: float | None
    width: int
    height: int
    error: str | None
FORMATS = {".csv", ".jsonl", ".parquet"}
# Scores in the ranked file: 6 significant digits, far below what tells two photos apart and above the
# last bits that differ between runtimes and thread counts. The sidecar keeps every bit, so a resumed run
# writes the same file as an uninterrupted one.
SCORE_DIGITS = 6


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


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.stem + ".partial.csv")


def meta_path(out: Path) -> Path:
    return out.with_name(out.stem + ".partial.json")


def errors_path(out: Path) -> Path:
    return out.with_name(out.stem + ".errors.csv")


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

    def add(self, rows: list[ResultRow]) -> None:
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


def merge_row(scored: dict, failed: dict, path: str, score, w, h, err) -> None:
    """Fold one stored row in: a later score wins, a score beats a failure, a failure counts only while the
    path has no score. Rows of one path may repeat (a resumed run, a retried batch): each path ends once."""
    if score is not None:
        scored[path] = (score, w, h)
        failed.pop(path, None)
    elif err and path not in scored:
        failed[path] = err


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
                    merge_row(scored, failed, path, s, int(w), int(h), None)
                except ValueError:
                    continue
            else:
                merge_row(scored, failed, path, None, 0, 0, err)
    return scored, failed


def check_meta(meta_file: Path, meta: dict, start_over: str) -> None:
    """--resume never mixes models (or pixel limits) in one result file; `start_over` says what to delete."""
    try:
        old = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError):
        return
    diff = [k for k in meta if old.get(k) != meta[k]]
    if diff:
        raise DpiqaError(f"--resume: the earlier run was started with a different {', '.join(diff)} "
                         f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); delete {start_over} to start over")


def write_meta(out: Path, meta: dict) -> None:
    write_json(meta_path(out), meta)


def format_score(x: float) -> str:
    """A score as the ranked file writes it."""
    return f"{x:.{SCORE_DIGITS}g}"


def relative_inputs(paths) -> set[str]:
    """The absolute forms of the paths given as relative ones: those are written relative (`shown_path`)."""
    return {os.path.abspath(p) for p in map(os.fspath, paths) if not os.path.isabs(p)}


def shown_path(path: str, relative: set[str], base: str | None) -> str:
    """A path as the results show it: relative to `base` (the results file's folder, or the current folder
    for stdout) where it was given as a relative path, so the gallery and `--from-list` read it back; as
    given (absolute) otherwise."""
    if path not in relative:
        return path
    return os.path.relpath(path, base if base is not None else os.getcwd())


def for_output(df: pd.DataFrame, relative: set[str] = frozenset(), base: str | None = None) -> pd.DataFrame:
    """What a results file (or stdout) holds: the shown paths and the scores at SCORE_DIGITS digits."""
    df = df.copy()
    if "path" in df:
        df["path"] = [shown_path(p, relative, base) for p in df["path"]]
    for col in ("score", "mos"):
        if col in df:
            df[col] = [float(format_score(v)) for v in df[col]]
    return df


def write_csv(df: pd.DataFrame, f) -> None:
    df.to_csv(f, index=False, float_format=f"%.{SCORE_DIGITS}g")


def write_results(df: pd.DataFrame, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix == ".csv":
        write_stream(out, lambda f: write_csv(df, f))
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


def to_mos(score, scale: dict | None):
    """Map normalised scores (higher = better, [0, 1]) back onto the training dataset's MOS scale."""
    lo, hi = float(scale["min"]), float(scale["max"])
    return hi - score * (hi - lo) if scale.get("lower_better") else lo + score * (hi - lo)


def rank_table(scored: dict, mos_scale: dict | None) -> pd.DataFrame:
    """{path: (score, w, h)} -> best first; ties broken by path so the order is reproducible."""
    df = pd.DataFrame([(p, s, w, h) for p, (s, w, h) in scored.items()], columns=["path", "score", "width", "height"])
    df = df.sort_values(["score", "path"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    if is_mos_scale(mos_scale) and len(df):  # not for synthetic labels: their scores are no MOS
        df["mos"] = to_mos(df["score"], mos_scale)
    return df.astype({"width": "int64", "height": "int64"})


class SidecarStore:
    """A single-process run's store: `<stem>.partial.csv` plus `<stem>.partial.json` (the run's identity),
    both removed once the ranked file is in place."""

    def __init__(self, out: Path, flush_every: int = 4):
        self.path, self.meta_file, self.flush_every = sidecar_path(out), meta_path(out), flush_every
        self.sidecar: Sidecar | None = None
        self.start_over = f"{self.meta_file.name} and {self.path.name}"

    def leftover(self) -> Path | None:
        """What an interrupted run left behind, if anything."""
        return self.path if self.path.exists() else None

    def read(self) -> tuple[dict, dict]:
        return read_sidecars([self.path]) if self.path.exists() else ({}, {})

    def start(self, meta: dict, append: bool) -> None:
        write_json(self.meta_file, meta)
        self.sidecar = Sidecar(self.path, self.flush_every, append=append)

    def add(self, rows: list[ResultRow]) -> None:
        self.sidecar.add(rows)

    def close(self) -> None:
        if self.sidecar is not None:
            self.sidecar.close()

    def finish(self) -> None:
        """Only after the final file is in place: the sidecar and its meta are no longer needed."""
        for p in (self.path, self.meta_file):
            if p.exists():
                p.unlink()


class ResultWriter:
    """One scoring run's results: resumable while running, one ranked file at the end.

    open(meta) checks the run's identity against an interrupted run's and returns what it already scored;
    add(rows) appends a batch's `ResultRow`s to the store;
    finish(paths) writes the ranked file and `<stem>.errors.csv`, each path exactly once, and then lets the
    store finish. Without `out` everything stays in memory.
    """

    def __init__(self, out: Path | None, resume: bool = False, flush_every: int = 4, store=None):
        check_out(out)
        self.out, self.resume = out, resume
        self.store = None if out is None else store or SidecarStore(out, flush_every)
        self.scored: dict = {}  # path -> (score, width, height)
        self.failed: dict = {}  # path -> reason
        self.resumed = 0

    @property
    def where(self):
        return getattr(self.store, "path", None)

    def open(self, meta: dict, paths: list[str]) -> list[str]:
        """Start (or resume) the run over `paths`; returns those still to score (an interrupted run's
        scored files are kept, its failed ones retried)."""
        done: dict = {}
        if self.store is not None:
            left = self.store.leftover()
            if left is not None and not self.resume:
                raise DpiqaError(f"{left} holds results of an interrupted run: add --resume to continue it, "
                                 "or delete it to start over")
            if self.resume:
                check_meta(self.store.meta_file, meta, self.store.start_over)
                done, _ = self.store.read()
            self.store.start(meta, append=self.resume)
        self.scored = {p: done[p] for p in paths if p in done}
        self.resumed = len(self.scored)
        return [p for p in paths if p not in done]

    def add(self, rows: list[ResultRow]) -> None:
        for p, score, w, h, err in rows:
            merge_row(self.scored, self.failed, p, score, w, h, err)
        if self.store is not None:
            self.store.add(rows)

    def stopped(self, exc: BaseException, out) -> None:
        """A run ended by `exc` (Ctrl-C, a model or cluster error): flush what was scored and say where it is."""
        self.close()
        if out is not None:
            what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped by an error"
            print(f"\n{what}: {len(self.scored)} results are safe in {self.where}; run the same "
                  "command with --resume to continue", file=sys.stderr)

    def close(self) -> None:
        """Make every row so far durable (also on an interrupted run)."""
        if self.store is not None:
            self.store.close()

    def finish(self, paths: list[str], mos_scale: dict | None,
               relative: set[str] = frozenset()) -> tuple[pd.DataFrame, dict]:
        """(ranked table, {path: reason}) of `paths`, each path in exactly one of them; written to `out`
        (`for_output`: the paths in `relative` relative to its folder). The returned table keeps absolute
        paths and every bit of the scores."""
        self.close()
        df = rank_table({p: self.scored[p] for p in paths if p in self.scored}, mos_scale)
        failed = {p: self.failed.get(p, NO_RESULT) for p in sorted(paths) if p not in self.scored}
        if self.out is not None:
            base = os.path.realpath(self.out.parent)  # as the gallery resolves the file's relative paths
            write_results(for_output(df, relative, base), self.out)
            errors = pd.DataFrame(list(failed.items()), columns=["path", "reason"])
            write_errors(for_output(errors, relative, base), self.out)
            self.store.finish()
        return df, failed
