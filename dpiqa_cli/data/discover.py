"""Finding images: files, folders, globs and lists -> a deduplicated list of absolute paths.

Paths keep symlinks as given (not resolved) and are deduplicated by their resolved target, in first-seen
order. Folders are walked in sorted order, following symlinked folders; a (device, inode) set of visited
folders makes symlink loops and repeated subtrees harmless.
"""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path
from typing import Iterable

from dpiqa_cli.data.images import IMAGE_EXTS
from dpiqa_cli.errors import DpiqaError

_GLOB_CHARS = set("*?[")


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTS


def _walk(root: str, recursive: bool, visited: set) -> Iterable[str]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:  # a symlink loop or a folder reached twice: walk it once
            dirnames[:] = []
            continue
        visited.add(key)
        dirnames.sort()
        if not recursive:
            dirnames[:] = []
        for name in sorted(filenames):
            if _is_image_name(name):
                yield os.path.join(dirpath, name)


def read_list(source: str) -> list[str]:
    """Paths from a text file (one per line, blank lines and #comments skipped), or stdin for '-'."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DpiqaError(f"cannot read list {source}: {exc}") from None
    base = Path.cwd() if source == "-" else Path(source).resolve().parent
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(str(base / line) if not os.path.isabs(line) else line)
    return out


# what a value given to a flag looks like (`--resume true`): the word is then taken as a path
_FLAG_VALUES = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def check_inputs(items: list[str]) -> None:
    """A path named on the command line that does not exist (and is no glob) is a usage mistake: one line, before
    anything is scored or written. Paths read from a list are data, and a missing one is reported per file."""
    missing = [p for p in items if not os.path.lexists(p) and not (_GLOB_CHARS & set(p))]
    if not missing:
        return
    more = f" (and {len(missing) - 1} more: {', '.join(missing[1:4])}{', ...' if len(missing) > 4 else ''})" \
        if len(missing) > 1 else ""
    hint = ""
    if any(p.lower() in _FLAG_VALUES for p in missing):
        hint = "; flags such as --resume and --compile take no value: give the flag alone"
    raise DpiqaError(f"{missing[0]} does not exist{more}{hint}")


def discover(inputs: Iterable[str | os.PathLike], recursive: bool = True, from_list: str | None = None,
             warn=None) -> list[str]:
    """Expand files, folders and globs (plus a --from-list) into a deduplicated list of paths, absolute where
    the input was. Named files are kept whatever their extension (the decoder says what is wrong); files
    found in folders or by globs need an image extension."""
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    items = [os.fspath(p) for p in inputs]
    check_inputs(items)
    if from_list is not None:
        items += read_list(from_list)
    visited, out, unmatched = set(), [], []
    add = out.append
    for item in items:
        if os.path.isdir(item):
            for path in _walk(item, recursive, visited):
                add(path)
        elif os.path.lexists(item):
            add(item)
        elif _GLOB_CHARS & set(item):
            matches = sorted(glob.glob(item, recursive=recursive))
            if not matches:
                unmatched.append(item)
            for m in matches:
                if os.path.isdir(m):
                    for path in _walk(m, recursive, visited):
                        add(path)
                elif _is_image_name(m):
                    add(m)
        else:
            add(item)  # a list entry: reported as "no such file" by the decoder
    if unmatched and not out:  # nothing to score: one error line, not a warning before it
        raise DpiqaError(f"no file matches {', '.join(unmatched)}")
    for item in unmatched:
        warn(f"no file matches {item}")
    return unique_paths(out, absolute=False)


def unique_paths(paths: Iterable[str | os.PathLike], absolute: bool = True) -> list[str]:
    """Each file once (by its resolved target), in first-seen order; absolute paths unless `absolute` is off."""
    seen, out = set(), []
    for p in paths:
        p = os.fspath(p)
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(os.path.abspath(p) if absolute else p)
    return out
