"""What a photo's pixel count costs `dpiqa score` with the bundled model: whole-process runs over folders of
the same photos at 1024 x 768, 12 MP, 24 MP and 50 MP, in rounds that run every size once, back to back, so
a noisy neighbour hits them alike. Writes the table into BENCHMARKS.md between `<!-- size-bench:begin -->`
and `<!-- size-bench:end -->`.

    python -m tools.size_bench [--photos 24] [--pairs 3] [--max-side N] [--source DIR] [--no-write]

Photos: 4:3 crops of the source photos (scikit-image's, or the JPEGs and PNGs under --source, e.g. the
default model's photo cache), each resized to every size so that each size holds the same picture, with
Gaussian grain of sigma 3 (8-bit) added at that size, as a camera file carries (a smooth upscale would
compress, and decode, far below a real camera JPEG), saved as q90 JPEGs (generated, not committed).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tools.doc_blocks import publish
from tools.runtime_bench import run_tree

SIZES = {"1024 x 768": (1024, 768), "12 MP": (4000, 3000), "24 MP": (5657, 4243), "50 MP": (8165, 6124)}


def sources(folder: Path | None) -> list[Path | Image.Image]:
    if folder is None:
        from skimage import data

        names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina"]
        return [Image.fromarray(getattr(data, k)()).convert("RGB") for k in names]
    found = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not found:
        raise SystemExit(f"error: no JPEG or PNG under {folder}")
    return found


def make_photos(folder: Path, n: int, size: tuple[int, int], srcs: list, grain: float = 3.0) -> Path:
    """n JPEGs of the same n pictures at `size`, deterministic."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = srcs[i % len(srcs)]
        src = src if isinstance(src, Image.Image) else Image.open(src).convert("RGB")
        box = np.random.default_rng(i).uniform(0, 0.15, 2)  # a crop of the source, 4:3
        cw = int(src.width * (1 - box[0]))
        ch = min(src.height, cw * 3 // 4)
        x0, y0 = int(box[1] * (src.width - cw)), (src.height - ch) // 2
        a = np.asarray(src.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.BICUBIC), dtype=np.float32)
        a += np.random.default_rng([i, size[0]]).normal(0, grain, a.shape).astype(np.float32)
        Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8)).save(folder / f"p{i:03d}.jpg", quality=90)
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--max-side", type=int, help="score with this --max-side (default: the model's own)")
    ap.add_argument("--source", type=Path, help="a folder of photos to cut the test photos from")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    from dpiqa_cli.data.views import view_from_config
    from dpiqa_cli.models.checkpoint_config import read_config
    from dpiqa_cli.models.registry import get_spec

    spec = get_spec("student")
    view = view_from_config(read_config(spec.default_weights)[1], spec.input_size)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    extra = [] if args.max_side is None else ["--max-side", str(args.max_side)]
    with tempfile.TemporaryDirectory() as tmp:
        srcs = sources(args.source)
        folders = {k: make_photos(Path(tmp) / k.replace(" ", ""), args.photos, s, srcs) for k, s in SIZES.items()}
        mb = {k: sum(p.stat().st_size for p in f.glob("*.jpg")) / len(list(f.glob("*.jpg"))) / 2**20
              for k, f in folders.items()}
        cmd = {k: [sys.executable, "-m", "dpiqa_cli", "score", str(f), "--device", "cpu", "-q", "-o",
                   str(Path(tmp) / f"{k.replace(' ', '')}.csv"), *extra] for k, f in folders.items()}
        runs = {k: [] for k in SIZES}
        run_tree(cmd["1024 x 768"], env)  # warm: the page cache, and the graph where one must be exported
        for r in range(args.pairs):
            for k in SIZES:
                runs[k].append(run_tree(cmd[k], env))
                print(f"round {r + 1}/{args.pairs} {k}: {runs[k][-1][0]:.1f} s", file=sys.stderr, flush=True)
    base = statistics.median(w for w, _ in runs["1024 x 768"])
    label = view.label() + (f", --max-side {args.max_side}" if args.max_side else "")
    lines = [f"Measured {time.strftime('%Y-%m-%d')} by `python -m tools.size_bench --photos {args.photos} --pairs "
             f"{args.pairs}{' --max-side ' + str(args.max_side) if args.max_side else ''}"
             f"{' --source PHOTOS' if args.source else ''}`: "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; the bundled `{spec.name}` "
             f"({label}). Whole process, start-up and model load included; medians of {args.pairs} rounds.", "",
             "| photos | crops per photo | JPEG MB | wall s (median) | img/s | vs 1024 x 768 | peak RSS MB | walls s |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for k, (w, h) in SIZES.items():
        med = statistics.median(x for x, _ in runs[k])
        lines.append(f"| {args.photos} at {k} ({w} x {h}) | {view.n_crops(w, h)} | {mb[k]:.1f} | {med:.1f} | "
                     f"{args.photos / med:.2f} | {med / base:.2f}x | {max(m for _, m in runs[k]):.0f} | "
                     f"{', '.join(f'{x:.1f}' for x, _ in runs[k])} |")
    publish("\n".join(lines) + "\n", "size-bench", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
