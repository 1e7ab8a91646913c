"""Thumbnails for the gallery: one small JPEG per distinct file, made in parallel worker processes.

Decoding is `load_thumbnail`, the scorer's own decoder (pixel limit, EXIF orientation, colour modes), so
a thumbnail shows the photo the way the model saw it. A file that cannot be read (moved, deleted,
corrupt since scoring) gets no thumbnail but a one-line reason; the page shows a placeholder for it.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import sys
from dataclasses import dataclass
from typing import Iterator

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, ImageError, load_thumbnail

JPEG_QUALITY = 80  # ~5-12 KB at 256 px: indistinguishable from higher qualities at that size
IN_PROCESS_BELOW = 24  # fewer files than this: starting workers costs more than it saves


@dataclass
class Thumb:
    data: bytes | None  # the JPEG, or None when the file could not be read
    width: int = 0
    height: int = 0
    reason: str | None = None
    file_bytes: int | None = None  # size of the photo on disk now; None if it is gone


def make_thumb(path: str, size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Thumb:
    try:
        file_bytes = os.stat(path).st_size
    except OSError:
        file_bytes = None
    try:
        img, _ = load_thumbnail(path, size, max_pixels)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=JPEG_QUALITY)
        return Thumb(buf.getvalue(), img.width, img.height, file_bytes=file_bytes)
    except ImageError as exc:
        return Thumb(None, reason=str(exc), file_bytes=file_bytes)
    except Exception as exc:  # a decoder bug on one odd file must not stop the gallery
        first = str(exc).splitlines()[0] if str(exc) else ""
        return Thumb(None, reason=f"cannot decode: {type(exc).__name__}: {first}", file_bytes=file_bytes)


def _job(args: tuple) -> Thumb:
    return make_thumb(*args)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _context():
    # fork is cheap and safe here (workers only run Pillow); spawn where fork is unsafe or missing
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def iter_thumbnails(paths: list[str], size: int, workers: int | None = None,
                    max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[Thumb]:
    """Thumbs of `paths`, in order; `workers` processes (None: one per core up to 8; 0: this process)."""
    workers = default_workers() if workers is None else int(workers)
    jobs = [(p, size, max_pixels) for p in paths]
    if workers <= 0 or len(jobs) < IN_PROCESS_BELOW:
        yield from map(_job, jobs)
        return
    chunk = max(1, min(32, len(jobs) // (workers * 8)))
    with _context().Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_job, jobs, chunksize=chunk)
