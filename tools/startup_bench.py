"""Whole-process wall times of `dpiqa --version`, `dpiqa --help`, `dpiqa models` and `dpiqa score` of one image,
for this checkout and, with --before DIR, another checkout of dpiqa (an older commit, say), as paired runs:
in every round each command runs once per checkout, back to back. Medians of --rounds. Writes the table into
BENCHMARKS.md between `<!-- startup-bench:begin -->` and `<!-- startup-bench:end -->` unless --no-write.

    git worktree add /tmp/before <commit> && python -m tools.startup_bench --before /tmp/before

Both checkouts run with this interpreter (the same installed dependencies), with PYTHONPATH set to the
checkout and the bundled model of each (DPIQA_WEIGHTS_DIR); `score` runs after one warm-up call, so a one-time
export to the CPU runtime's cache is not counted (it is reported on its own line; a checkout whose model ships
its ONNX graph exports nothing).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dpiqa_cli.models.registry import BUNDLED_FILE
from dpiqa_cli.scoring.graph_cache import shipped_check
from tools.doc_blocks import publish

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "examples" / "astronaut.jpg"
COMMANDS = {"--version": ["--version"], "--help": ["--help"], "models": ["models"],
            "score one image": ["score", str(IMAGE), "-q"]}


def wall(checkout: Path, args: list[str], env: dict) -> float:
    # each checkout's own bundled model: an editable install elsewhere would otherwise lend its weights/
    env = dict(env, PYTHONPATH=str(checkout), DPIQA_WEIGHTS_DIR=str(checkout / "weights"))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dpiqa_cli", *args], cwd=checkout, env=env,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"error: {checkout}: dpiqa {' '.join(args)} exited {r.returncode}: {r.stderr.strip()[-300:]}")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="another dpiqa checkout to pair with this one")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    checkouts = {"before": args.before, "now": ROOT} if args.before else {"now": ROOT}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, HF_HUB_OFFLINE="1", DPIQA_CACHE_DIR=cache)
        first = wall(ROOT, COMMANDS["score one image"], env)  # the one-time export (cache empty)
        for c in checkouts.values():
            wall(c, COMMANDS["score one image"], env)
        times = {(k, n): [] for k in COMMANDS for n in checkouts}
        for r in range(args.rounds):
            for k, cmd in COMMANDS.items():
                for n, c in checkouts.items():
                    times[(k, n)].append(wall(c, cmd, env))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    cols = list(checkouts)
    lines = [f"Measured {time.strftime('%Y-%m-%d')} by `python -m tools.startup_bench"
             f"{' --before BEFORE' if args.before else ''} --rounds {args.rounds}` ({os.cpu_count()} cores); "
             "whole process, median of the rounds, seconds.", "",
             "| command | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for k in COMMANDS:
        lines.append(f"| `dpiqa {COMMANDS[k][0]}`{' (1 image)' if k.startswith('score') else ''} | "
                     + " | ".join(f"{statistics.median(times[(k, n)]):.2f}" for n in cols) + " |")
    if shipped_check(ROOT / "weights" / BUNDLED_FILE).usable:
        first_note = "no export: the bundled model ships its ONNX graph"
    else:
        first_note = "with the export of the model to the CPU runtime's cache, once per checkpoint and version"
    lines += ["", f"The first `score` of this checkout with an empty cache: {first:.1f} s ({first_note})."]
    text = "\n".join(lines) + "\n"
    publish(text, "startup-bench", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
