"""Every reason a file can fail with, as `<stem>.errors.csv` and the gallery show it: one template each,
filled in with `.format(...)`. docs/scoring.md lists the same templates (`{...}` shown as `…`), and a test
checks that the two agree."""
from __future__ import annotations

NO_SUCH_FILE = "no such file"
BROKEN_SYMLINK = "broken symlink (points to {target})"
CANNOT_STAT = "cannot stat: {why}"
IS_DIRECTORY = "is a directory"
EMPTY_FILE = "empty file (0 bytes)"
PERMISSION_DENIED = "permission denied"
NOT_AN_IMAGE = "not an image (unrecognised format)"
UNREADABLE_HEADER = "unreadable header: {why}"
PIXEL_BOMB = "too many pixels ({why})"  # Pillow's own decompression-bomb check
TOO_MANY_PIXELS = "too many pixels: {w}x{h} = {n:,} > --max-pixels {limit:,}"
TOO_SMALL = "too small: {w}x{h} px (need at least {min_side} px per side)"
TRUNCATED = "truncated or corrupt image data ({why})"
CANNOT_DECODE = "cannot decode: {why}"
OUT_OF_MEMORY = "out of memory while decoding"
NO_RESULT = "no result"  # neither scored nor failed: a run that ended without reaching the file

REASONS = (NO_SUCH_FILE, BROKEN_SYMLINK, CANNOT_STAT, IS_DIRECTORY, EMPTY_FILE, PERMISSION_DENIED, NOT_AN_IMAGE,
           UNREADABLE_HEADER, PIXEL_BOMB, TOO_MANY_PIXELS, TOO_SMALL, TRUNCATED, CANNOT_DECODE, OUT_OF_MEMORY,
           NO_RESULT)
