#!/usr/bin/env python3
"""Scoring speed on this machine: model-only vs end-to-end (JPEG decode included) vs a naive loop.

Thin wrapper over dpiqa_cli.evaluate.speed.run_speed_bench (the same function as `dpiqa bench --speed`).
Example (the BENCHMARKS.md CPU numbers):
  python scripts/speed_bench.py --model student-lite0 --batch-sizes 1,2,4,8 --precisions fp32 --out-json speed.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dpiqa_cli  # noqa: E402,F401  (torchvision compatibility step)
from dpiqa_cli.errors import DpiqaError  # noqa: E402
from dpiqa_cli.evaluate.speed import run_speed_bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="student-lite0", help="registry names, comma-separated")
    ap.add_argument("--batch-sizes", default="2,8")
    ap.add_argument("--precisions", default="auto", help="comma-separated: auto,fp32,bf16,fp16")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--jpeg-dir", default=None, help="folder of JPEGs (default: 1024x768 ones are generated)")
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--naive-images", type=int, default=12)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds per model-only measurement")
    ap.add_argument("--draft-images", type=int, default=6, help="4032x3024 JPEGs for the draft-vs-full check")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (as `dpiqa score --compile`)")
    ap.add_argument("--out-json", default=None)
    a = ap.parse_args()
    try:
        run_speed_bench(a.model.split(","), [int(b) for b in a.batch_sizes.split(",")], a.precisions.split(","),
                        a.device, a.jpeg_dir, a.out_json, n_images=a.images, naive_images=a.naive_images,
                        workers=a.workers, min_time_s=a.min_time, draft_images=a.draft_images, rounds=a.rounds,
                        compile=a.compile)
    except DpiqaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
