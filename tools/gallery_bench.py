"""How `dpiqa gallery` scales: build time, page size, and what headless Chromium makes of the page.

    python tools/gallery_bench.py --rows 10000 --workers 2 --rounds 3 --loads 5 --work /tmp/gbench \\
        --out-json gallery_bench.json

1. Generates `--distinct` photos (1024x768 JPEGs, q85, made from 16 generated scenes, each shifted and
   marked so that every file and thumbnail differs; cached in WORK/photos) and a scores file of
   `--rows` rows (rows beyond the distinct photos are symlinks: thumbnails are made once per file), with
   30 failures.
2. Builds the gallery `--rounds` times from cold (thumbnail folder removed), `--workers` processes.
3. Opens it `--loads` times in headless Chromium (the browser test's setup) and reads, from the
   page's own clocks: first contentful paint, the gallery script done (first page of cards in the DOM),
   and the thumbnails of the first screen decoded; then scrolls the first page and times the frames,
   and times a page change, a sort by name and a threshold move (event to the second frame after it).
4. `--inline-rows N`: the same for an N-row gallery that `auto` keeps inline (one file).
5. `--big N`: ms per thumbnail for N generated 4000x3000 JPEGs (a 12 MP camera), in one process.
Medians are reported; every sample is in the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser_fixtures import Browser  # noqa: E402
from gallery_fixtures import photo  # noqa: E402

from dpiqa_cli.gallery import build_gallery  # noqa: E402
from dpiqa_cli.gallery.build import thumbs_dir  # noqa: E402
from dpiqa_cli.gallery.thumbs import make_thumb  # noqa: E402

_BASES: list[np.ndarray] = []


def _make_one(args) -> None:
    i, path = args
    if not _BASES:
        _BASES.extend(_bases())
    rng = np.random.default_rng(i + 1)
    a = _BASES[i % len(_BASES)]
    a = a[::-1] if i // len(_BASES) % 2 else a
    a = np.roll(a, (int(rng.integers(0, 768)), int(rng.integers(0, 1024))), axis=(0, 1)).copy()
    y, x = int(rng.integers(0, 700)), int(rng.integers(0, 950))
    a[y:y + 60, x:x + 70] = rng.integers(0, 256, 3)
    Image.fromarray(a).save(path, quality=85)


def _bases() -> list[np.ndarray]:
    """Scenes at 1024x768: scikit-image's photos (as the scoring benchmark uses), else generated ones.
    Real photos matter here: their thumbnails are 2-3x larger than those of smooth generated scenes."""
    out = []
    try:
        from skimage import data

        for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle_left"):
            try:
                a = np.asarray(getattr(data, name)())
            except Exception:  # some need downloads: skipped
                continue
            a = a if a.ndim == 3 else np.stack([a] * 3, -1)
            out.append(np.asarray(Image.fromarray(a[..., :3]).resize((1024, 768), Image.BICUBIC)))
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    return out or [photo(rng, 1024, 768) for _ in range(16)]


def make_photos(folder: Path, n: int, workers: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img_{i:05d}.jpg" for i in range(n)]
    todo = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        t0 = time.perf_counter()
        with Pool(max(1, workers)) as pool:
            pool.map(_make_one, todo, chunksize=32)
        print(f"generated {len(todo)} photos in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return paths


def write_scores(work: Path, photos: list[Path], rows: int, name: str) -> Path:
    links = work / "links"
    links.mkdir(exist_ok=True)
    paths = [str(p) for p in photos[:rows]]
    for i in range(len(paths), rows):  # the same photos listed again, under other names
        link = links / f"again_{i:05d}.jpg"
        if not link.exists():
            os.symlink(photos[i % len(photos)], link)
        paths.append(str(link))
    rng = np.random.default_rng(1)
    scores = np.sort(rng.beta(5, 2, rows))[::-1]
    out = work / f"{name}.csv"
    with open(out, "w", encoding="utf-8") as f:
        f.write("rank,path,score,width,height\n")
        for r, (p, s) in enumerate(zip(paths, scores), 1):
            f.write(f"{r},{p},{float(s)!r},1024,768\n")
    with open(work / f"{name}.errors.csv", "w", encoding="utf-8") as f:
        f.write("path,reason\n" + "".join(f"{work}/broken_{i:02d}.jpg,truncated or corrupt image data\n" for i in range(30)))
    return out


def build(scores: Path, out: Path, rounds: int, workers: int) -> list[dict]:
    runs = []
    for _ in range(rounds):
        shutil.rmtree(thumbs_dir(out), ignore_errors=True)
        out.unlink(missing_ok=True)
        cpu0, load0 = _cpu_s(), os.getloadavg()[0]
        runs.append(build_gallery(scores, out, workers=workers, progress=False))
        # CPU seconds of this process and its (reaped) thumbnail workers: what the build costs on an idle
        # machine, whatever else the shared machine was running
        runs[-1].update(cpu_s=round(_cpu_s() - cpu0, 2), load_1min=(load0, os.getloadavg()[0]))
        print(f"built {out.name}: {runs[-1]['wall_s']:.1f} s, {runs[-1]['cpu_s']:.1f} CPU-s, {runs[-1]['mode']}, "
              f"{runs[-1]['html_bytes'] / 1e6:.2f} MB, load {load0:.1f}", file=sys.stderr)
    return runs


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


FIRST_SCREEN = """
const done = arguments[arguments.length - 1];
const visible = () => [...document.querySelectorAll('img')].filter(i => {
  const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; });
(function poll() {
  const imgs = visible();
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];  // recorded a frame after the paint
  if (fcp && imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0)) {
    const nav = performance.getEntriesByType('navigation')[0];
    done({first_screen_thumbs_ms: performance.now(), fcp_ms: fcp.startTime,
          script_done_ms: window.dpiqaGallery.renderedMs, dom_content_loaded_ms: nav.domContentLoadedEventEnd,
          cards_in_dom: document.querySelectorAll('.card').length, visible_thumbs: imgs.length});
  } else setTimeout(poll, 10);
})();
"""

SCROLL = """
const done = arguments[arguments.length - 1];
const end = document.getElementById('pager').getBoundingClientRect().top + scrollY - innerHeight;
const frames = []; let last = performance.now(); const t0 = last;
function step(now) {
  frames.push(now - last); last = now;
  scrollBy(0, 40);
  if (scrollY < end && now - t0 < 20000) requestAnimationFrame(step);
  else { frames.shift(); done(frames); }
}
requestAnimationFrame(step);
"""

ACTIONS = """
const done = arguments[arguments.length - 1];
const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
const fire = (id, type, v) => { const e = document.getElementById(id); if (v !== undefined) e.value = v;
  e.dispatchEvent(new Event(type)); };
const steps = [
  ['next_page_ms', () => document.getElementById('next').click()],
  ['sort_by_name_ms', () => fire('sort', 'change', 'name')],
  ['sort_back_ms', () => fire('sort', 'change', 'best')],
  ['threshold_move_ms', () => fire('thr-range', 'input', '0.42')],
  ['below_only_ms', () => { document.getElementById('below-only').checked = true; fire('below-only', 'change'); }],
];
(async () => {  // each: from the event to the second frame after it (script, layout and paint)
  const t = {};
  for (const [k, f] of steps) { await frame(); const a = performance.now(); f(); await frame(); t[k] = performance.now() - a; }
  done(t);
})();
"""


def browse(page: Path, loads: int) -> dict:
    samples, scroll, actions = [], None, None
    with Browser((1280, 900)) as b:
        for i in range(loads):
            b.open(page, timeout=120)
            samples.append(b.driver.execute_async_script(FIRST_SCREEN))
            frames = b.driver.execute_async_script(SCROLL) if i == loads - 1 else []
            if frames:  # a page shorter than the window has nothing to scroll
                scroll = {"frames": len(frames), "median_ms": statistics.median(frames),
                          "p95_ms": float(np.percentile(frames, 95)), "max_ms": max(frames),
                          "over_50ms": sum(f > 50 for f in frames)}
            if i == loads - 1:
                actions = b.driver.execute_async_script(ACTIONS)
        errors = b.console_errors()
    keys = [k for k in samples[0] if k not in ("cards_in_dom", "visible_thumbs")]
    return {"median": {k: statistics.median(s[k] for s in samples) for k in keys}, "loads": samples,
            "scroll_first_page": scroll, "actions": actions, "console_errors": errors}


def big_photos(work: Path, n: int) -> dict:
    folder = work / "big"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(2)
    paths = []
    for i in range(n):
        p = folder / f"big_{i:02d}.jpg"
        if not p.exists():
            base = Image.fromarray(photo(rng, 1000, 750)).resize((4000, 3000), Image.BICUBIC)
            base.save(p, quality=90)
        paths.append(p)
    ms = []
    for p in paths:
        t0 = time.perf_counter()
        assert make_thumb(str(p), 256).data
        ms.append((time.perf_counter() - t0) * 1000)
    return {"n": n, "median_ms": statistics.median(ms), "samples_ms": ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--distinct", type=int, default=None, help="distinct photos (default: --rows)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--inline-rows", type=int, default=1200)
    ap.add_argument("--big", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gallery_bench"))
    ap.add_argument("--out-json", type=Path, default=None)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    photos = make_photos(a.work / "photos", a.distinct or a.rows, a.workers)
    res = {"args": {k: str(v) for k, v in vars(a).items()}, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    for name, rows in (("large", a.rows), ("inline", a.inline_rows)):
        if not rows:
            continue
        scores = write_scores(a.work, photos, rows, name)
        out = a.work / f"{name}.html"
        runs = build(scores, out, a.rounds, a.workers)
        res[name] = {"rows": rows, "build": runs,
                     "build_median_s": statistics.median(r["wall_s"] for r in runs),
                     "thumbs_median_s": statistics.median(r["thumbs_s"] for r in runs),
                     "cpu_median_s": statistics.median(r["cpu_s"] for r in runs),
                     "html_bytes": runs[-1]["html_bytes"], "thumb_bytes": runs[-1]["thumb_bytes"],
                     "mode": runs[-1]["mode"], "browser": browse(out, a.loads)}
    if a.big:
        res["big_12mp_thumbnail"] = big_photos(a.work, a.big)
    res["load_after"] = os.getloadavg()
    text = json.dumps(res, indent=2)
    if a.out_json:
        a.out_json.write_text(text)
    summary = {k: {kk: v[kk] for kk in ("rows", "mode", "build_median_s", "cpu_median_s", "html_bytes")} | v["browser"]["median"]
               | {"scroll": v["browser"]["scroll_first_page"], "actions": v["browser"]["actions"]}
               for k, v in res.items() if isinstance(v, dict) and "browser" in v}
    print(json.dumps(summary, indent=2))
    if "big_12mp_thumbnail" in res:
        print(f"12 MP JPEG -> thumbnail: {res['big_12mp_thumbnail']['median_ms']:.1f} ms (median, one process)")


if __name__ == "__main__":
    main()
