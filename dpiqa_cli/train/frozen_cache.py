"""`distill --cache-frozen`: the frozen part of a student (its stem and first --freeze-blocks blocks) never
changes during training, so its output for every train and val item is computed once and kept on disk
(float16, memory-mapped); each step then runs only the trained blocks and the head, and the more blocks
are frozen the cheaper it is (BENCHMARKS.md, "Training").

The items are the view's fixed crops, unflipped: a cached run draws no random crop positions and no flips
(the one difference from a live run, which the run's log states). The cache lives in --frozen-cache DIR
(default RUN/frozen_cache) under a key of the frozen weights, the number of blocks, the input size and the
item list, so runs that share a start and data (other seeds, data orders, learning rates, labels) share it.
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


def build(run, student, part: str, folder: Path, quiet: bool = False) -> Path:
    """FOLDER/<key>.npy: the frozen part's output for each item of `part` (N x C x H x W float16); reused when
    it exists. Returns its path."""
    ds = run.dataset(part)  # no augmentation: the view's fixed crops
    key = hashlib.sha256(json.dumps([frozen_digest(student), student.freeze_count, ds.size, ds.paths,
                                     [list(map(list, p.corners)) for parts in ds.layouts for p in parts]]).encode())
    path = folder / f"{part}-{key.hexdigest()[:16]}.npy"
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
        write_json(path.with_suffix(".json"), {"items": len(ds), "shape": list(out.shape[1:]),
                                               "blocks": student.freeze_count, "seconds": round(time.perf_counter() - t0, 1)})
    run.acc.wait_for_everyone()
    return path


def open_features(path: Path, items: int) -> np.ndarray:
    feats = np.load(path, mmap_mode="r")
    if len(feats) != items:
        raise DpiqaError(f"frozen cache {path} holds {len(feats)} items for {items}; delete it")
    return feats
