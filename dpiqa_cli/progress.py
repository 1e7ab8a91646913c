"""The one progress display for long jobs (score, synth, training): a tqdm bar on a terminal; otherwise
(a file, a pipe, a terminal too narrow) a plain line every `every_s` seconds and at the end, so a log stays
readable."""
from __future__ import annotations

import os
import sys
import time

MIN_BAR_COLUMNS = 40  # below this a tqdm bar shows nothing useful (at 0 columns it shows nothing at all)


def _bar_fits() -> bool:
    """Whether stderr is a terminal wide enough for a bar."""
    if not sys.stderr.isatty():
        return False
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return False
    return columns >= MIN_BAR_COLUMNS


class Progress:
    def __init__(self, total: int, desc: str, unit: str = "img", enabled: bool = True, initial: int = 0,
                 every_s: float = 10.0):
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.t0 = self.last = time.perf_counter()
        self.start, self.every_s, self.fields = initial, every_s, {}
        self.mode = "off" if not enabled or total == 0 else ("bar" if _bar_fits() else "log")
        if self.mode == "bar":
            from tqdm.auto import tqdm  # only a terminal needs it

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, mininterval=1.0)

    def rate(self) -> float:
        return (self.done - self.start) / max(time.perf_counter() - self.t0, 1e-9)

    def update(self, n: int = 1, **fields) -> None:
        """Advance by n; `fields` (e.g. failed=3, loss='0.041') are shown beside the count."""
        self.done += n
        self.fields.update(fields)
        if self.mode == "bar":
            if fields:
                self.bar.set_postfix(self.fields, refresh=False)
            self.bar.update(n)
        elif self.mode == "log" and (time.perf_counter() - self.last >= self.every_s or self.done >= self.total):
            self.last = time.perf_counter()
            extra = ", ".join(f"{v} {k}" if k == "failed" else f"{k} {v}" for k, v in self.fields.items())
            eta = (self.total - self.done) / max(self.rate(), 1e-9)
            print(f"{self.desc} {self.done}/{self.total}" + (f" ({extra})" if extra else "") +
                  f", {self.rate():.1f} {self.unit}/s, ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.mode == "bar":
            self.bar.close()
            self.mode = "off"
