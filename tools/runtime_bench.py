"""Whole-process `dpiqa score` on the CPU, paired runs: today's default runtime against the new one, a naive
loop, and the cost of the bundled model's view. Writes the tables into BENCHMARKS.md between
`<!-- runtime-bench:begin -->` and `<!-- runtime-bench:end -->`, so the numbers there come from this script.

    python -m tools.runtime_bench [--pairs 3] [--old-weights OLD.safetensors] [--no-write]

Rows, each the median over `--pairs` rounds; within a round every configuration runs once, back to back,
so a noisy neighbour hits them alike:
- `torch`: `dpiqa score --runtime torch --workers 1` (torch eager fp32, batch 2, 1 decode process: the old
  default);
- `auto`: `dpiqa score` with no options (the new default: OpenVINO where installed, decoding in a thread);
- `onnx`: the same with `--runtime onnx` (ONNX Runtime on the same cached graph);
- `naive`: one process that opens each file, resizes it as the model's view says (to its input for `whole`,
  to each working scale for the native views), and runs torch fp32 on one crop at a time;
- `old model, torch` and `old model, auto` (with --old-weights): the model this one replaced, on its old path
  and on today's default one (the same runtime as `auto`, so the ratio is the cost of the models and views).
Photos: crops and resizes of the photos scikit-image bundles, saved as q90 JPEGs (generated, not committed).
Peak RSS is sampled over the whole process tree (decode workers included).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from tools.doc_blocks import publish

ROOT = Path(__file__).resolve().parents[1]
NAIVE = """
import sys, time
from pathlib import Path
import numpy as np
import torch
from PIL import Image
from dpiqa_cli.models.checkpoint import load_model
m = load_model(None if sys.argv[1] == "-" else sys.argv[1])
view, size = m.view, m.input_size
scores = []
with torch.inference_mode():
    for p in sorted(Path(sys.argv[2]).glob("*.jpg")):
        src = Image.open(p).convert("RGB")
        crops = []
        for part in view.parts(*src.size):
            img = src.resize(part.box, Image.BICUBIC)
            for x0, y0 in part.corners:
                c = img.crop((x0, y0, x0 + size, y0 + size))
                x = torch.frombuffer(bytearray(c.tobytes()), dtype=torch.uint8).view(size, size, 3)
                crops.append(float(m.model(x.permute(2, 0, 1)[None].float() / 255)[0]))
        scores.append(view.combine(np.array(crops), src.size))
print(len(scores))
"""

def make_photos(folder: Path, n: int, size: tuple[int, int]) -> Path:
    """n JPEGs of size (w, h): random crops of scikit-image's photos, resized; deterministic."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "cat", "colorwheel"]
    srcs = [Image.fromarray(getattr(data, k)()).convert("RGB") for k in names if hasattr(data, k)]
    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        src = srcs[i % len(srcs)]
        cw = int(src.width * rng.uniform(0.6, 1.0))
        ch = min(src.height, int(cw * h / w))
        x0, y0 = rng.integers(0, src.width - cw + 1), rng.integers(0, src.height - ch + 1)
        src.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.BICUBIC).save(folder / f"p{i:04d}.jpg", quality=90)
    return folder


def run_tree(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall s, peak RSS MB of the process and its children) of one whole-process command."""
    peak = [0.0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    ps = psutil.Process(proc.pid)

    def sample():
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak[0] = max(peak[0], rss / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited {proc.returncode}: {err.strip().splitlines()[-1:]}")
    return wall, peak[0]


def configs(photos: Path, out: Path, old: str | None) -> dict[str, list[str]]:
    score = [sys.executable, "-m", "dpiqa_cli", "score", str(photos), "--device", "cpu", "-q", "-o"]
    rows = {"torch (old default)": score + [str(out / "torch.csv"), "--runtime", "torch", "--workers", "1"],
            "auto (new default)": score + [str(out / "auto.csv")],
            "onnx": score + [str(out / "onnx.csv"), "--runtime", "onnx"],
            "naive loop": [sys.executable, "-c", NAIVE, "-", str(photos)]}
    if old:
        rows["old model, torch"] = score + [str(out / "old.csv"), "--runtime", "torch", "--workers", "1",
                                            "--weights", old]
        rows["old model, auto"] = score + [str(out / "old-auto.csv"), "--weights", old]
    return rows


def bench(photos: Path, n: int, pairs: int, old: str | None) -> dict[str, dict]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    with tempfile.TemporaryDirectory() as tmp:
        rows = configs(photos, Path(tmp), old)
        for warm in ("auto (new default)", "old model, auto"):  # each model's graph exported once, untimed
            if warm in rows:
                subprocess.run(rows[warm], env=env, cwd=ROOT, check=True, capture_output=True)
        runs = {k: [] for k in rows}
        for r in range(pairs):
            for name, cmd in rows.items():
                runs[name].append(run_tree(cmd, env))
                print(f"round {r + 1}/{pairs} {name}: {runs[name][-1][0]:.1f} s", file=sys.stderr, flush=True)
    return {k: {"img_s": n / statistics.median(w for w, _ in v), "wall": statistics.median(w for w, _ in v),
                "rss": max(m for _, m in v), "walls": [round(w, 1) for w, _ in v]} for k, v in runs.items()}


def table(res: dict[str, dict], base: str, title: str) -> str:
    lines = [f"**{title}**", "", "| path | img/s (median) | vs old default | peak RSS MB | walls s |",
             "|---|---:|---:|---:|---|"]
    for k, v in res.items():
        lines.append(f"| {k} | {v['img_s']:.2f} | {v['img_s'] / res[base]['img_s']:.2f}x | {v['rss']:.0f} | "
                     f"{', '.join(map(str, v['walls']))} |")
    new = res["auto (new default)"]["img_s"]
    ratios = [(k, label) for k, label in (("naive loop", "New default over the naive loop"),
                                          ("old model, torch", "Net change, new default over the replaced model "
                                                               "on its old path"),
                                          ("old model, auto", "New default over the replaced model on the same "
                                                              "default path")) if k in res]
    if ratios:
        lines.append("")
        lines += [f"{label}: **{new / res[k]['img_s']:.2f}x**." for k, label in ratios]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--old-weights", help="the checkpoint the bundled one replaced, for the net-change row")
    ap.add_argument("--big", type=int, default=12, help="4000 x 3000 photos in the second set (0: skip)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    import onnxruntime
    import torch

    from dpiqa_cli.models.registry import get_spec
    from dpiqa_cli.scoring.openvino_runner import openvino_version

    spec = get_spec("student")
    head = (f"Measured {time.strftime('%Y-%m-%d')} by `python -m tools.runtime_bench --pairs {args.pairs}"
            f"{' --old-weights OLD' if args.old_weights else ''}`: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
            f"openvino {openvino_version() or 'not installed'}; "
            f"the bundled `{spec.name}` ({spec.weights}). Whole process, start-up and model load included.\n")
    parts = [head]
    with tempfile.TemporaryDirectory() as tmp:
        for n, size in ((96, (1024, 768)), (args.big, (4000, 3000))):
            if n == 0:
                continue
            photos = make_photos(Path(tmp) / f"{size[0]}", n, size)
            res = bench(photos, n, args.pairs, args.old_weights)
            parts.append(table(res, "torch (old default)", f"{n} JPEGs at {size[0]}x{size[1]}"))
    text = "\n".join(parts)
    publish(text, "runtime-bench", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
