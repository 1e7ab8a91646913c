"""Speed benchmark (`dpiqa bench --speed`): model-only vs end-to-end scoring vs a naive loop.

Model-only: the runner on a ready uint8 batch cut as the view cuts a 1024x768 photo; end-to-end:
`score_paths` on a folder of 1024x768 JPEGs; naive: open, full decode, resize, forward, one at a time.
Weights are random unless the model has local ones: speed does not depend on them.
"""
from __future__ import annotations

import copy
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from dpiqa_cli.atomic import write_json
from dpiqa_cli.data.images import IMAGE_EXTS, decode_uint8
from dpiqa_cli.device import resolve_device, resolve_precision, usable_cpus
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint import LoadedModel, load_model
from dpiqa_cli.models.registry import get_spec
from dpiqa_cli.models.resolve import resolve_model
from dpiqa_cli.scoring.backend import make_runner
from dpiqa_cli.scoring.graph_cache import pick_runtime
from dpiqa_cli.scoring.pipeline import score_paths
from dpiqa_cli.scoring.torch_runner import TorchRunner


def _rss_mb() -> dict:
    """Peak resident memory so far (Linux ru_maxrss is in KiB; it only ever grows)."""
    return {"self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


BENCH_SIZE = (1024, 768)  # the end-to-end photos' size


def make_jpeg_folder(folder: Path, n: int = 64, size=BENCH_SIZE, quality: int = 90) -> list[Path]:
    """n photo-like 1024x768 JPEGs: scikit-image's photos when installed (varied crops), else textures."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    try:
        from skimage import data  # optional: a test extra

        for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle_left"):
            try:
                photos.append(np.asarray(getattr(data, name)()))
            except Exception:  # some need pooch downloads; skip those
                pass
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        if photos:
            a = photos[i % len(photos)]
            a = a if a.ndim == 3 else np.stack([a] * 3, -1)
            img = Image.fromarray(a[..., :3]).rotate(int(rng.integers(0, 30)), resample=Image.BILINEAR, expand=False)
            img = img.resize(size, Image.BICUBIC)
        else:
            yy, xx = np.mgrid[0:size[1], 0:size[0]]
            base = np.stack([np.sin(xx / (20 + i)) , np.cos(yy / (15 + i)), np.sin((xx + yy) / 40)], -1)
            a = ((base + 1) * 100 + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
            img = Image.fromarray(a)
        p = folder / f"bench_{i:04d}.jpg"
        img.save(p, quality=quality)
        out.append(p)
    return out


def draft_difference(paths, size: int = 512) -> dict:
    """Mean and max |draft decode - full decode + resize| over all pixels, in 8-bit levels."""
    if not paths:
        return {}
    means, maxes = [], []
    for p in paths:
        a = decode_uint8(p, size, draft=True)[0].astype(np.int16)
        b = decode_uint8(p, size, draft=False)[0].astype(np.int16)
        d = np.abs(a - b)
        means.append(d.mean())
        maxes.append(int(d.max()))
    return {"size": size, "images": len(means), "source": "4032x3024 JPEG (q90)", "mean_abs_levels": float(np.mean(means)),
            "max_abs_levels": int(max(maxes)), "mean_abs_unit": float(np.mean(means)) / 255.0,
            "p99_image_mean_levels": float(np.percentile(means, 99))}


def _model_for_bench(name: str):
    """A LoadedModel: local weights when present, else random weights of the registry architecture."""
    try:
        loaded = load_model(name, device="cpu")
        return loaded, "random" if loaded.config.get("random_weights") else "checkpoint"
    except DpiqaError:
        spec = get_spec(name)
        torch.manual_seed(0)
        net = spec.build().eval()
        return LoadedModel(net, spec, {"input_size": spec.input_size, "mos_scale": None, "view": {"name": "whole"}}), "random"


def _naive(model: torch.nn.Module, paths, size: int, device: torch.device) -> float:
    t = time.perf_counter()
    for p in paths:
        img = Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255.0)[None].to(device)
        with torch.no_grad():
            model(x)
    _sync(device)
    return len(paths) / (time.perf_counter() - t)


def run_speed_bench(models=("student-lite0",), batch_sizes=(8,), precisions=("auto",), device: str = "auto",
                    jpeg_dir=None, out_json=None, n_images: int = 64, naive_images: int = 16,
                    workers: int | None = None, min_time_s: float = 3.0, draft_images: int = 6, rounds: int = 3,
                    compile: bool = False, runtime: str = "auto", console=None) -> dict:
    """Benchmark each model x batch size x precision; print a table, write JSON, return the results. The three
    measures run back to back in each of `rounds` rounds and the best round is reported (and the median):
    other jobs only ever slow a run down."""
    dev = resolve_device(device)
    tmp = None
    if jpeg_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="dpiqa-bench-"))
        paths = make_jpeg_folder(tmp, n_images)
    else:
        paths = sorted(p for p in Path(jpeg_dir).iterdir() if p.suffix.lower() in IMAGE_EXTS)[:n_images]
        if not paths:
            raise DpiqaError(f"no images in {jpeg_dir}")
    rows = []
    big_dir = Path(tempfile.mkdtemp(prefix="dpiqa-bench-big-"))
    try:
        # draft() only helps photos at least 2x the input size; measure its error on camera-sized JPEGs
        big_jpegs = make_jpeg_folder(big_dir, draft_images, size=(4032, 3024)) if draft_images else []
        for name in models:
            loaded, weights = _model_for_bench(name)
            size = int(loaded.config.get("input_size") or loaded.spec.input_size)
            diff = draft_difference(big_jpegs, size)
            plain = copy.deepcopy(loaded.model).to(dev)  # the naive loop's model: as loaded, NCHW, fp32
            ckpt = resolve_model(name).checkpoint if weights == "checkpoint" else None
            for prec_in in precisions:
                prec = resolve_precision(prec_in, dev)
                picked = pick_runtime(runtime, dev, prec, compile, ckpt)
                if picked == "torch":
                    runner = TorchRunner(loaded, dev, prec, compile=compile)
                    e2e = {"model": loaded, "runtime": "torch", "compile": compile}
                else:  # the exported graph `dpiqa score` would run; the end-to-end run names the model, as score
                    runner = make_runner(resolve_model(name), device=dev, precision=prec, runtime=picked, quiet=True)
                    e2e = {"model": name, "runtime": picked}
                for bs in batch_sizes:
                    row = _one(runner, e2e, plain, paths, bs, dev, workers, min_time_s, naive_images, rounds)
                    rows.append({"model": name, "weights": weights, "batch_size": bs, "precision": prec,
                                 "runtime": runner.runtime, "compile": compile, "device": str(dev), **row,
                                 "draft_vs_full": diff})
    finally:
        shutil.rmtree(big_dir, ignore_errors=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    result = {"machine": _machine(dev), "n_images": len(paths), "rounds": rounds,
              "images": "1024x768 JPEG q90 (generated)" if tmp else str(jpeg_dir), "results": rows}
    _print_table(rows, result["machine"], console)
    if out_json:
        write_json(out_json, result)
    return result


def _model_only(score_batch, n_images: int, dev, min_time_s) -> tuple[float, float]:
    """(images/s, median ms per batch) of score_batch() on a ready batch of n_images images' crops."""
    score_batch()  # warm-up: allocator, oneDNN/cuDNN algorithm choice
    _sync(dev)
    lat, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < min_time_s or len(lat) < 3:
        t = time.perf_counter()
        score_batch()
        _sync(dev)
        lat.append(time.perf_counter() - t)
    return len(lat) * n_images / sum(lat), 1000 * float(np.median(lat))


def _one(runner, e2e: dict, plain, paths, bs, dev, workers, min_time_s, naive_images, rounds) -> dict:
    size = runner.input_size
    # a batch of bs images as the view cuts a 1024 x 768 photo (4 crops each for the native views), forwarded in
    # chunks as score_paths forwards them
    k = runner.view.n_crops(*BENCH_SIZE)
    runner.set_batch(bs)
    x = torch.randint(0, 256, (bs * k, size, size, 3), dtype=torch.uint8).permute(0, 3, 1, 2)
    if dev.type == "cuda":
        x = x.pin_memory()
    model_r, lat_r, e2e_r, naive_r, mem = [], [], [], [], {}
    for _ in range(max(1, rounds)):
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        ips, lat = _model_only(lambda: runner.score_images(x, [k] * bs, [BENCH_SIZE] * bs), bs, dev, min_time_s)
        model_r.append(ips)
        lat_r.append(lat)
        if dev.type == "cuda":
            mem["peak_cuda_mb_model_only"] = torch.cuda.max_memory_allocated(dev) / 2**20
            torch.cuda.reset_peak_memory_stats(dev)
        df = score_paths([str(p) for p in paths], device=str(dev), precision=runner.precision, batch_size=bs,
                         workers=workers, progress=False, **e2e)
        e2e_r.append(df.attrs["summary"]["images_per_s"])
        workers_used = df.attrs["summary"]["workers"]
        if dev.type == "cuda":
            mem["peak_cuda_mb_e2e"] = torch.cuda.max_memory_allocated(dev) / 2**20
        if naive_images:
            naive_r.append(_naive(plain, paths[:naive_images], size, dev))
    best = {"model_only_img_s": max(model_r), "e2e_img_s": max(e2e_r), "naive_img_s": max(naive_r) if naive_r else None}
    return {**best, "latency_ms_per_batch": min(lat_r), "e2e_workers": workers_used,
            "e2e_over_model": best["e2e_img_s"] / best["model_only_img_s"],
            "e2e_over_naive": best["e2e_img_s"] / best["naive_img_s"] if naive_r else None,
            "median": {"model_only_img_s": float(np.median(model_r)), "e2e_img_s": float(np.median(e2e_r)),
                       "naive_img_s": float(np.median(naive_r)) if naive_r else None},
            **mem, **_rss_mb()}


def _machine(dev: torch.device) -> dict:
    cpus = usable_cpus()
    m = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "cpus": cpus,
         "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as f:
            m["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    if dev.type == "cuda":
        m["gpu"] = torch.cuda.get_device_name(dev)
    return m


def _print_table(rows, machine, console=None) -> None:
    t = Table(title=f"scoring speed ({machine.get('cpu_model') or machine['processor']}, {machine['cpus']} cpus"
                    + (f", {machine['gpu']}" if "gpu" in machine else "") + ")")
    for c in ("model", "runtime", "batch", "prec", "model-only img/s", "ms/batch", "e2e img/s", "naive img/s",
              "e2e/model", "e2e/naive", "peak mem MB"):
        t.add_column(c, justify="right", overflow="fold")  # a narrow terminal wraps a cell, never cuts it
    for r in rows:
        mem = r.get("peak_cuda_mb_e2e") or r["self_peak_rss_mb"]
        t.add_row(r["model"], r.get("runtime", "torch"), str(r["batch_size"]), r["precision"] + (" compiled" if r.get("compile") else ""), f"{r['model_only_img_s']:.1f}",
                  f"{r['latency_ms_per_batch']:.0f}", f"{r['e2e_img_s']:.1f}",
                  f"{r['naive_img_s']:.1f}" if r["naive_img_s"] else "-", f"{r['e2e_over_model']:.2f}x",
                  f"{r['e2e_over_naive']:.2f}x" if r["e2e_over_naive"] else "-", f"{mem:.0f}")
    (console or Console()).print(t)
    d = rows[0]["draft_vs_full"] if rows else None
    if d:
        (console or Console()).print(f"draft vs full JPEG decode at {d['size']} px over {d['images']} images: mean "
                                     f"|diff| {d['mean_abs_levels']:.2f} / max {d['max_abs_levels']} (8-bit levels)")


def _csv_list(text: str, what: str, cast=str) -> list:
    try:
        items = [cast(t.strip()) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise DpiqaError(f"bad {what} {text!r}: use a comma-separated list, e.g. 1,8") from None
    if not items:
        raise DpiqaError(f"{what} is empty")
    return items


def speed_command(models: str, batch_sizes: str, precisions: str, out_dir: Path, **kw) -> dict:
    """`dpiqa bench --speed`: parse the lists, run, write OUT/speed.json."""
    sizes = _csv_list(batch_sizes, "--speed-batch-sizes", int)
    if min(sizes) < 1:
        raise DpiqaError("--speed-batch-sizes must be at least 1")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return run_speed_bench(_csv_list(models, "--speed-models"), sizes, _csv_list(precisions, "--precisions"),
                           out_json=Path(out_dir) / "speed.json", **kw)
