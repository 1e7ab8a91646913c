"""`dpiqa gallery`: a ranked contact sheet of a scores file, as one HTML page.

`inline` puts every thumbnail in the page as a data: URL (one file; `auto` keeps it up to INLINE_LIMIT
bytes of thumbnails); `folder` writes them to `<stem>_thumbs/` beside the page. Thumbnails are named by a
hash of their content, so the previous page stays whole until the new one replaces it (atomically, last).
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from dpiqa_cli.atomic import write_text
from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.gallery.page import render_page
from dpiqa_cli.gallery.table import find_errors, read_errors, read_scores
from dpiqa_cli.gallery.thumbs import IN_PROCESS_BELOW, Thumb, iter_thumbnails
from dpiqa_cli.version import __version__

INLINE_LIMIT = 16 * 2**20
PAGE_SIZE = 200  # cards per page: the DOM of one page stays small however many photos there are
MODES = ("auto", "inline", "folder")
_THUMB_NAME = re.compile(r"^[0-9a-f]{20}\.jpg$")


def check_gallery_out(out: str | os.PathLike) -> Path:
    """Refuse an unusable gallery path before any work is done."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise DpiqaError(f"the gallery must end in .html, not {out.name!r}")
    if out.is_dir():
        raise DpiqaError(f"gallery path {out} is a directory")
    if not out.parent.exists():
        raise DpiqaError(f"folder of the gallery does not exist: {out.parent}")
    return out


def thumbs_dir(out: Path) -> Path:
    return out.with_name(out.stem + "_thumbs")


class _Thumbs:
    """Collects thumbnails as [src, width, height] (or [None, 0, 0, reason]); spills to a folder when the
    inline budget of `auto` is exceeded."""

    def __init__(self, mode: str, folder: Path, limit: int):
        self.mode, self.folder, self.limit = mode, folder, limit
        self.entries: list[list] = []
        self.inline_bytes = self.total_bytes = 0
        self.names: set[str] = set()

    def add(self, th: Thumb) -> None:
        if th.data is None:
            self.entries.append([None, 0, 0, th.reason])
            return
        self.total_bytes += len(th.data)
        if self.mode == "auto" and self.inline_bytes + len(th.data) > self.limit:
            self.mode = "folder"
            for e in self.entries:
                if isinstance(e[0], bytes):
                    e[0] = self._write(e[0])
        if self.mode == "folder":
            self.entries.append([self._write(th.data), th.width, th.height])
        else:
            self.inline_bytes += len(th.data)
            self.entries.append([th.data, th.width, th.height])

    def _write(self, data: bytes) -> str:
        name = hashlib.sha1(data).hexdigest()[:20] + ".jpg"
        if name not in self.names:
            self.names.add(name)
            path = self.folder / name
            if not path.exists():
                self.folder.mkdir(exist_ok=True)
                # no fsync: a thumbnail can always be made again; the rename still means no torn file
                tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
        return name

    def finish(self) -> str:
        if self.mode == "auto":
            self.mode = "inline"
        for e in self.entries:
            if isinstance(e[0], bytes):
                e[0] = "data:image/jpeg;base64," + base64.b64encode(e[0]).decode("ascii")
        return self.mode

    def remove_stale(self) -> None:
        """Thumbnails no page refers to any more (only files named as this module names them)."""
        if not self.folder.is_dir():
            return
        for f in self.folder.iterdir():
            if _THUMB_NAME.match(f.name) and f.name not in self.names:
                f.unlink(missing_ok=True)
        if not self.names and not any(self.folder.iterdir()):
            self.folder.rmdir()


def _num(x):
    """A JSON-safe number: None for NaN/missing, an int when whole (shorter), floats to 6 decimals."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return None
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else round(x, 6)


def _href(path: str) -> str | None:
    try:
        return Path(path).as_uri()
    except ValueError:  # not absolute (cannot happen after read_scores) or not representable
        return None


def default_threshold(scores) -> float:
    """Where the slider starts: the 10th percentile, rounded to 0.01 (the bottom tenth is a common first cut)."""
    return round(float(np.quantile(scores, 0.1)), 2) if len(scores) else 0.5


def build_gallery(scores_path: str | os.PathLike, out: str | os.PathLike, errors: str | os.PathLike | None = None,
                  thumb_size: int = 256, workers: int | None = None, mode: str = "auto", title: str | None = None,
                  threshold: float | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  page_size: int = PAGE_SIZE, inline_limit: int = INLINE_LIMIT, progress: bool = True) -> dict:
    """Write the gallery page of a `dpiqa score` output; returns a summary dict. `errors`: the failed files
    (default `<stem>.errors.csv` if present); `mode`: auto, inline or folder (docs/gallery.md)."""
    t0 = time.perf_counter()
    if mode not in MODES:
        raise DpiqaError(f"unknown gallery mode {mode!r}: {', '.join(MODES)}")
    if not 16 <= int(thumb_size) <= 1024:
        raise DpiqaError(f"--thumb-size must be between 16 and 1024 px, not {thumb_size}")
    if page_size < 1:
        raise DpiqaError("--page-size must be at least 1")
    if threshold is not None and not np.isfinite(threshold):
        raise DpiqaError("--threshold must be a number")
    scores_path, out = Path(scores_path), check_gallery_out(out)
    df = read_scores(scores_path)
    err_file = find_errors(scores_path, errors)
    failed = read_errors(err_file, scores_path.resolve().parent)

    keys = [os.path.realpath(p) for p in df["path"]]
    index: dict[str, int] = {}
    for k in keys:
        index.setdefault(k, len(index))
    distinct = list(index)
    store = _Thumbs(mode, thumbs_dir(out), inline_limit)
    file_bytes: list[int | None] = []
    bar = None
    if progress and len(distinct) >= IN_PROCESS_BELOW:
        from dpiqa_cli.progress import Progress

        bar = Progress(len(distinct), "thumbnails", unit="img")
    try:
        for th in iter_thumbnails(distinct, int(thumb_size), workers, max_pixels):
            store.add(th)
            file_bytes.append(th.file_bytes)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    t_thumbs = time.perf_counter() - t0
    final_mode = store.finish()

    # a MOS line only where it says something the score badge does not (older files repeated the score there)
    has_mos = "mos" in df.columns and not np.allclose(df["mos"], df["score"], rtol=0, atol=5e-7, equal_nan=True)
    rows = []
    for r, k in zip(df.itertuples(index=False), keys):
        t = index[k]
        rows.append([int(r.rank), r.path, _num(r.score), _num(r.width), _num(r.height),
                     _num(r.mos) if has_mos else None, file_bytes[t], t, _href(r.path)])
    data = {
        "rows": rows, "thumbs": store.entries, "failed": [[p, reason] for p, reason in failed],
        "has_mos": has_mos, "mode": final_mode, "thumb_base": thumbs_dir(out).name + "/",
        "thumb_size": int(thumb_size), "page_size": int(page_size),
        "threshold": float(threshold) if threshold is not None else default_threshold(df["score"].to_numpy()),
        "source": scores_path.name, "errors_source": err_file.name if err_file else None,
        "made": datetime.now().strftime("%Y-%m-%d %H:%M"), "version": __version__,
    }
    page = render_page(data, title or f"dpiqa gallery: {scores_path.name}")
    write_text(out, page)
    store.remove_stale()  # only now: until the new page was in place, the old one needed its files
    missing = sum(1 for e in store.entries if e[0] is None)
    return {"out": str(out), "mode": final_mode, "photos": len(rows), "distinct": len(distinct),
            "thumbnails": len(distinct) - missing, "no_thumbnail": missing, "failed": len(failed),
            "html_bytes": len(page.encode("utf-8")), "thumb_bytes": store.total_bytes,
            "thumbs_dir": str(thumbs_dir(out)) if final_mode == "folder" else None,
            "thumbs_s": round(t_thumbs, 3), "wall_s": round(time.perf_counter() - t0, 3)}


def summary_line(s: dict) -> str:
    where = f"thumbnails in {s['thumbs_dir']}" if s["mode"] == "folder" else "thumbnails inline"
    line = (f"wrote {s['out']} ({s['html_bytes'] / 1e6:.1f} MB, {where}): {s['photos']} photos, "
            f"{s['failed']} failed")
    if s["no_thumbnail"]:
        line += f", {s['no_thumbnail']} without thumbnail (moved or unreadable)"
    return line + f", {s['wall_s']:.1f} s"
