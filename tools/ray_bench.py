"""Throughput of `dpiqa score` against its Ray path (`score --ray`), on generated 1024x768 JPEGs.

Every configuration scores a small and a full set in each round, configurations interleaved; the marginal
rate (full - small images) / (full - small seconds) leaves out what both sizes pay once (model load, worker
or actor start), and the full set's wall time shows that start-up. Ray is started once, like a cluster that
is already up (its start time is reported on its own). Medians over rounds are printed and saved.

    python -m tools.ray_bench --images 200 --small 40 --rounds 3 --num-cpus 2 --out-json ray_bench.json
    python -m tools.ray_bench --device cuda --configs 1,3 --images 5000 --small 1000   # on a GPU machine
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dpiqa_cli.bench.speed import make_jpeg_folder
from dpiqa_cli.scoring.pipeline import score_paths

CONFIGS = {
    "dpiqa score (1 decode worker, 2 threads)": None,
    "dpiqa score (1 decode worker, 1 thread)": "1 thread",
    "ray: defaults (an actor per CPU, 1 thread, or per GPU)": {},
    "ray: 1 actor x 2 threads, decode in actor": dict(actors=1, cpus_per_actor=2),
    "ray: 1 actor x 1 thread + decode tasks": dict(actors=1, cpus_per_actor=1, decode_in_tasks=True),
}


def _run(name: str, paths: list[str], model: str, device: str) -> float:
    opts = CONFIGS[name]
    t0 = time.perf_counter()
    if opts is None or opts == "1 thread":
        threads = torch.get_num_threads()
        torch.set_num_threads(1 if opts else threads)
        try:
            df = score_paths(paths, model=model, device=device, progress=False)
        finally:
            torch.set_num_threads(threads)
    else:
        from dpiqa_cli.scoring.ray_job import score_ray

        df = score_ray(paths, model=model, device=device, progress=False, **opts)
    assert len(df) == len(paths), df.attrs["errors"]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--small", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="student")
    ap.add_argument("--device", default="cpu", help="cpu, or auto/cuda for the GPU numbers")
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs the local Ray may use (default: all)")
    ap.add_argument("--configs", default=None, help="Comma-separated numbers of the configurations (1-based; "
                                                    "default: all).")
    ap.add_argument("--out-json", type=Path, default=None)
    a = ap.parse_args()
    names = list(CONFIGS) if not a.configs else [list(CONFIGS)[int(i) - 1] for i in a.configs.split(",")]
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in make_jpeg_folder(Path(tmp), a.images)]
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=a.num_cpus, include_dashboard=False, object_store_memory=200_000_000,
                 logging_level=logging.WARNING, log_to_driver=False)
        ray_start = time.perf_counter() - t0
        times = {name: {"small": [], "full": []} for name in names}
        try:
            for r in range(a.rounds):
                for name in names:
                    for size, subset in (("small", paths[:a.small]), ("full", paths)):
                        times[name][size].append(_run(name, subset, a.model, a.device))
                        print(f"round {r + 1} {name} {size}: {times[name][size][-1]:.1f} s", flush=True)
        finally:
            ray.shutdown()
    rows = []
    for name, t in times.items():
        marginal = [(a.images - a.small) / (f - s) for s, f in zip(t["small"], t["full"])]
        rows.append(dict(config=name, marginal_img_s=statistics.median(marginal),
                         full_wall_s=statistics.median(t["full"]), small_wall_s=statistics.median(t["small"]),
                         rounds=t))
    print(f"\nray.init (local, {a.num_cpus or 'all'} CPUs): {ray_start:.1f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"| configuration | marginal img/s | wall, {a.images} images (s) | wall, {a.small} images (s) |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['config']} | {row['marginal_img_s']:.2f} | {row['full_wall_s']:.1f} | {row['small_wall_s']:.1f} |")
    if a.out_json:
        a.out_json.write_text(json.dumps(dict(images=a.images, small=a.small, model=a.model, device=a.device,
                                              num_cpus=a.num_cpus, ray_init_s=ray_start,
                                              results=rows), indent=2))


if __name__ == "__main__":
    main()
