"""Training data: the common dataset table -> split -> tensors, with an exactly reproducible order.

Randomness here is a pure function of (seed, epoch, index): the epoch's order is a seeded permutation and
the horizontal flip of item i in epoch e is drawn from its own seeded generator. Resuming therefore only
needs (epoch, batches consumed), and workers need no RNG state at all.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from dpiqa_cli.data.images import ImageError, decode_image
from dpiqa_cli.errors import DpiqaError


_SHARED = {"read_dataset": "dpiqa_cli.data.datasets", "dataset_info": "dpiqa_cli.data.datasets",
           "make_split": "dpiqa_cli.data.splits", "official_split": "dpiqa_cli.data.splits",
           "compute_metrics": "dpiqa_cli.evaluate.metrics", "aggregate": "dpiqa_cli.evaluate.metrics",
           "write_report": "dpiqa_cli.evaluate.report"}


def shared(name: str):
    """A shared API function; falls back to train/_interim.py while the owning module is not installed."""
    import importlib

    try:
        return getattr(importlib.import_module(_SHARED[name]), name)
    except ImportError:
        from dpiqa_cli.train import _interim

        return getattr(_interim, name)


def load_table(dataset: str, root: str | Path, **opts):
    """The common table (path, id, mos in [0,1], ref, split) via the shared dataset readers."""
    if not Path(root).is_dir():
        raise DpiqaError(f"dataset root not found: {root}")
    df = shared("read_dataset")(dataset, root, **opts)
    if len(df) == 0:
        raise DpiqaError(f"dataset {dataset!r} at {root} has no images")
    return df


def dataset_defaults(dataset: str) -> dict:
    """{synthetic, scale, milestones_teacher, milestones_student}; empty where the reader has none."""
    try:
        return dict(shared("dataset_info")(dataset) or {})
    except (DpiqaError, KeyError, AttributeError):
        return {}


def resolve_split(df, split_seed: int | None, official: bool, by_ref: bool | None, run_dir: Path) -> dict:
    """Reuse RUN/split.json on resume (the split must not change), else make and save one."""
    path = Path(run_dir) / "split.json"
    if path.is_file():
        split = json.loads(path.read_text())
    elif official:
        split = shared("official_split")(df)
    else:
        if by_ref is None:
            by_ref = "ref" in df and df["ref"].notna().any()
        split = shared("make_split")(df, seed=int(split_seed or 0), by_ref=bool(by_ref))
    for part in ("train", "val", "test"):
        if not split.get(part):
            raise DpiqaError(f"the {part} split is empty ({len(df)} images); use a larger dataset or another split")
    known = set(df["id"])
    missing = [i for part in ("train", "val", "test") for i in split[part] if i not in known]
    if missing:
        raise DpiqaError(f"{path} lists {len(missing)} images not in the dataset (e.g. {missing[0]}); "
                         "use a fresh --out")
    return split


def save_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def flip_of(seed: int, epoch: int, index: int) -> bool:
    """Deterministic coin for item `index` in `epoch` (independent of workers and batch order)."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_033 + index)
    return bool(torch.randint(0, 2, (1,), generator=g).item())


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 10_007 + epoch)
    return torch.randperm(n, generator=g).tolist()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """This rank's batches of one epoch: equal counts on every rank (DDP needs them in step)."""
    order = epoch_order(n, seed, epoch)
    per_rank = len(order) // world if world > 1 else len(order)
    mine = order[rank::world][:per_rank]
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]


class TableDataset(Dataset):
    """Items of the table at `size` px; `train` flips horizontally; `cache` holds teacher maps (N x 2 x C x F x F:
    [plain, flipped] so cached targets equal what a live teacher sees, flip included)."""

    def __init__(self, paths: list[str], mos: list[float], size: int, train: bool = False, seed: int = 0,
                 cache: torch.Tensor | None = None, max_pixels: int | None = None):
        self.paths, self.mos, self.size = list(paths), [float(m) for m in mos], int(size)
        self.train, self.seed, self.epoch, self.cache = train, seed, 0, cache
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # read by worker copies made when the epoch's iterator starts

    def __getitem__(self, i: int) -> dict:
        try:
            x, _ = decode_image(self.paths[i], self.size, self.max_pixels)
        except ImageError as exc:  # a training set with an unreadable file is bad input, not a crash
            raise DpiqaError(f"cannot read training image {self.paths[i]}: {exc}") from None
        flip = self.train and flip_of(self.seed, self.epoch, i)
        if flip:
            x = x.flip(-1)
        item = {"x": x, "y": torch.tensor(self.mos[i], dtype=torch.float32), "idx": torch.tensor(i)}
        if self.cache is not None:
            item["ft"] = self.cache[i, int(flip)].float()
        return item
