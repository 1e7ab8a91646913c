"""The level benchmark on the validation photos: a student checkpoint beside full-resolution PIQE.

Fetches the val photos, makes their ~1024-px level photos (references.prepare_eval_photos), distorts and
scores them (dpiqa_cli.evaluate.levels) and writes OUT/levels.json and OUT/levels.md. Validation only: the
test photos are scored once, by the build, at the end.

    python -m tools.default_model.val_levels OUT [--weights CKPT] [--cache DIR] [--no-piqe] [--no-model]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.levels import piqe_scorer, run_level_bench


def student_scorer(weights: str | Path | None = None, device: str = "cpu"):
    """scorer(paths) -> scores with the `student` entry (the bundled weights unless `weights`)."""
    def score(paths):
        from dpiqa_cli.scoring.pipeline import score_paths  # imported late: only this scorer needs torch

        df = score_paths([str(p) for p in paths], model="student", weights=weights, device=device,
                         workers=0, progress=False)
        if df.attrs.get("errors"):
            raise DpiqaError(f"images failed to score: {df.attrs['errors']}")
        by_path = {str(Path(p).resolve()): float(s) for p, s in zip(df["path"], df["score"])}
        return [by_path[str(Path(p).resolve())] for p in paths]
    return score


def _timed(name: str, fn, times: dict):
    def run(paths):
        t0 = time.perf_counter()
        out = fn(paths)
        times[name] = (time.perf_counter() - t0) / max(len(paths), 1)
        return out
    return run


def main(argv=None) -> int:
    from tools.default_model.fetch import fetch_photos
    from tools.default_model.references import prepare_eval_photos

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--weights", help="student checkpoint (default: the bundled one)")
    ap.add_argument("--cache", help="photo cache (default: fetch's default)")
    ap.add_argument("--long-side", type=int, default=1024)
    ap.add_argument("--no-piqe", action="store_true")
    ap.add_argument("--no-model", action="store_true")
    args = ap.parse_args(argv)
    scorers, times = {}, {}
    if not args.no_model:
        scorers["model"] = _timed("model", student_scorer(args.weights), times)
    if not args.no_piqe:
        scorers["PIQE"] = _timed("PIQE", piqe_scorer, times)
    try:
        photos = prepare_eval_photos(fetch_photos(args.cache, splits=("val",)), Path(args.out_dir) / "photos",
                                     long_side=args.long_side)
        run_level_bench(photos, scorers, args.out_dir)
    except DpiqaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print((Path(args.out_dir) / "levels.md").read_text(), end="")
    print("seconds per image: " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
