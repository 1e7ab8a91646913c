"""Atomic file writes: every output dpiqa writes goes through here, so a reader (or a resumed run) never
sees a half-written file, whatever kills the writer.

Write to a unique temporary file in the destination folder, fsync it, rename it over the target
(`os.replace` is atomic on POSIX and Windows within one file system), then fsync the folder, so that the
rename itself survives a power cut (POSIX; Windows cannot open a folder, and needs no such step). The
temporary file is removed on any failure, Ctrl-C included.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

# Read once: os.umask can only be read by setting it, and it is process-wide (other threads would briefly
# create files with mask 0).
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_via(path: str | os.PathLike, writer: Callable[[str], Any]) -> None:
    """Call writer(tmp_path) to produce the file, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable. Where a folder cannot be opened (Windows) or fsynced (some network
    file systems), the file is in place all the same, so that is no error."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_via(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, default=str))


def write_stream(path: str | os.PathLike, write: Callable[[Any], Any]) -> None:
    """Like write_via, for writers that take an open text file (pandas, csv)."""
    def writer(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            write(f)
    write_via(path, writer)
