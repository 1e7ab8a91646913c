"""How long `--mos FILE` takes to read and match a large MOS file (`score --mos`, `bench --scores --mos`).

    python -m tools.mos_match_bench --rows 100000 --rounds 5

Writes a MOS CSV of `--rows` rows (names in 100 sub-folders, relative to the file) and a scores table of the
same files, then times `read_mos` and `match` (the dictionary join) over `--rounds` rounds; the median goes
into BENCHMARKS.md's `mos-match` block (`--no-write`: print only).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dpiqa_cli.evaluate.mos import match, read_mos
from tools.doc_blocks import publish


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        names = [f"d{i % 100}/img{i:07d}.jpg" for i in range(args.rows)]
        pd.DataFrame({"image_name": names, "MOS": np.random.default_rng(0).uniform(1, 5, args.rows)}).to_csv(
            base / "mos.csv", index=False)
        scores = pd.DataFrame({"path": [str(base / n) for n in names], "score": np.linspace(0, 1, args.rows)})
        read, joined = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            mos = read_mos(base / "mos.csv")
            t1 = time.perf_counter()
            n = len(match(scores, mos, base))
            read.append(t1 - t0)
            joined.append(time.perf_counter() - t1)
        assert n == args.rows, n
    total = [a + b for a, b in zip(read, joined)]
    text = (f"Measured {time.strftime('%Y-%m-%d')} by `python -m tools.mos_match_bench --rows {args.rows} "
            f"--rounds {args.rounds}` ({os.cpu_count()} cores): {args.rows:,} rows read and matched in "
            f"**{statistics.median(total):.2f} s** (median; read {statistics.median(read):.2f} s, match "
            f"{statistics.median(joined):.2f} s).\n")
    publish(text, "mos-match", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
