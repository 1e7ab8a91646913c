"""Progress bars for long jobs (synth, training): lively on a terminal, sparse in a log file."""
from __future__ import annotations

import sys


def progress_bar(**kw):
    """A tqdm bar that refreshes every second on a terminal and every 30 s otherwise, so a job's log file
    gets a readable line per half minute instead of a wall of carriage-return updates."""
    from tqdm.auto import tqdm

    kw.setdefault("mininterval", 1.0 if sys.stderr.isatty() else 30.0)
    return tqdm(**kw)
