"""`distill --cache-frozen`: the frozen stem and first --freeze-blocks blocks are run once per train and val
item and their output kept on disk (float16, memory-mapped), so each step runs only the trained blocks.

Items are the view's fixed crops, unflipped (the one difference from a live run; the log says so). The
cache key covers the frozen weights, the block count, the input size and the items, so runs that share a
start and data share the cache.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from dpiqa_cli.atomic import write_json, write_via
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.progress import Progress


def frozen_digest(student) -> str:
    """sha256 of the frozen modules' weights and buffers: what the cached features depend on."""
    h = hashlib.sha256()
    for m in student.frozen:
        for k, v in sorted(m.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def frozen_part(student, x: torch.Tensor) -> torch.Tensor:
    """The frozen stem and first `student.freeze_count` blocks of a timm EfficientNet (eval mode)."""
    bb = student.backbone
    x = bb.bn1(bb.conv_stem(x))
    for block in bb.blocks[:student.freeze_count]:
        x = block(x)
    return x


def _items(ds) -> list[list]:
    """Each item as (image path, crop corner at its part): what its cached features are of."""
    return [[ds.paths[i], int(j), *map(int, ds.layouts[i][j].corners[k])]
            for i, j, k in zip(ds.item_image, ds.item_part, ds.item_crop)]


def build(run, student, part: str, folder: Path, quiet: bool = False) -> tuple[Path, list[int] | None]:
    """(FOLDER/<part>-<key>.npy, rows): the frozen part's output for each item of `part` (N x C x H x W float16),
    with `rows` the item's row in it when it is a cache of a larger item set (None: one row per item, in
    order). A cache of the same frozen weights and input size that holds every item is reused."""
    ds = run.dataset(part)  # no augmentation: the view's fixed crops
    items = _items(ds)
    head = {"frozen": frozen_digest(student), "blocks": student.freeze_count, "size": ds.size}
    for meta_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if {k: meta.get(k) for k in head} != head or not meta_path.with_suffix(".npy").is_file():
            continue
        index = {tuple(it): r for r, it in enumerate(meta.get("items", []))}
        if all(tuple(it) in index for it in items):
            rows = [index[tuple(it)] for it in items]
            return meta_path.with_suffix(".npy"), None if rows == list(range(len(meta["items"]))) else rows
    key = hashlib.sha256(json.dumps([head, items]).encode()).hexdigest()[:16]
    path = folder / f"{part}-{key}.npy"
    if run.main and not path.exists():
        device, t0 = run.acc.device, time.perf_counter()
        student.eval().to(device)
        bs = run.cfg.batch_size
        batches = [list(range(i, min(i + bs, len(ds)))) for i in range(0, len(ds), bs)]
        out = None
        bar = Progress(len(ds), f"frozen cache ({part})", enabled=not quiet, every_s=30.0)

        def write(tmp: str) -> None:
            nonlocal out
            for b in run.loader(ds, batches):
                x = b["x"].to(device).contiguous(memory_format=torch.channels_last)
                f = frozen_part(student, x).half().cpu().numpy()
                if out is None:
                    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(ds), *f.shape[1:]))
                out[b["idx"].numpy()] = f
                bar.update(len(f))
            out.flush()

        write_via(path, write)
        bar.close()
        write_json(path.with_suffix(".json"), {**head, "shape": list(out.shape[1:]),
                                               "seconds": round(time.perf_counter() - t0, 1), "items": items})
    run.acc.wait_for_everyone()
    return path, None


def open_features(path: Path, rows: list[int] | None, items: int) -> np.ndarray:
    feats = np.load(path, mmap_mode="r")
    if len(feats) != items if rows is None else max(rows, default=-1) >= len(feats):
        raise DpiqaError(f"frozen cache {path} does not hold the {items} items it is named for; delete it")
    return feats
