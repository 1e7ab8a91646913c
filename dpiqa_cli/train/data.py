"""Training data: the common dataset table -> split -> tensors, in an exactly reproducible order.

Each crop of an image's view is an item with the image's MOS; training draws random patch positions, flips
and (`crop_jitter`) random boxes, while validation and test cut the view's fixed crops, as `score` does. All
randomness is a pure function of (seed, epoch, item), so a resume needs only (epoch, batches consumed) and
workers need no RNG state. With a teacher cache the patch positions are the fixed ones (both flips cached).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dpiqa_cli.data.catalog import dataset_info
from dpiqa_cli.data.datasets import read_dataset
from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, ImageError, image_size, load_rgb
from dpiqa_cli.data.splits import make_split, official_split
from dpiqa_cli.data.views import View, decode_views
from dpiqa_cli.errors import DpiqaError


def load_table(dataset: str, root: str | Path, **opts):
    """The common table (path, id, mos in [0,1], ref, split) via the shared dataset readers."""
    if not Path(root).exists():
        raise DpiqaError(f"dataset root not found: {root}")
    df = read_dataset(dataset, root, **opts)
    if len(df) == 0:
        raise DpiqaError(f"dataset {dataset!r} at {root} has no images")
    return df


def dataset_defaults(dataset: str) -> dict:
    """{synthetic, scale, milestones_teacher, milestones_student} from the dataset reader's table."""
    try:
        return dict(dataset_info(dataset) or {})
    except (DpiqaError, KeyError):
        return {}


def resolve_split(df, split_seed: int | None, official: bool, by_ref: bool | None, run_dir: Path,
                  val_frac: float = 0.1, test_frac: float = 0.2) -> dict:
    """Reuse RUN/split.json on resume (the split must not change), else make one."""
    path = Path(run_dir) / "split.json"
    if path.is_file():
        split = json.loads(path.read_text())
    elif official:
        split = official_split(df)
        if not split["test"] and test_frac == 0:  # a table with train/val rows only, and no test asked for
            split["test_frac"] = 0
    else:
        if by_ref is None:  # synthetic data: never put one scene's distortions on both sides
            by_ref = "ref" in df and df["ref"].notna().all()
        split = make_split(df, seed=int(split_seed or 0), by_ref=bool(by_ref), val_frac=val_frac,
                           test_frac=test_frac)
    for part in ("train", "val", "test"):
        if not split.get(part) and not (part == "test" and split.get("test_frac") == 0):
            raise DpiqaError(f"the {part} split is empty ({len(df)} images); use a larger dataset or another split")
    return split


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The private generator of item `index` in `epoch` (independent of workers and batch order)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_033 + index)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 10_007 + epoch)
    return torch.randperm(n, generator=g).tolist()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  groups: list | None = None, run: int = 0) -> list[list[int]]:
    """This rank's batches of one epoch, equal counts on every rank (DDP steps together). With `groups` and
    `run` > 1, the epoch is shuffled in runs of `run` items of one group, so the ranking loss compares
    distortions of the same scene."""
    if groups is None or run <= 1:
        order = epoch_order(n, seed, epoch)
        per_rank = len(order) // world if world > 1 else len(order)
        mine = order[rank::world][:per_rank]
        return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group keys for {n} items")
    members: dict = {}
    for i in epoch_order(n, seed, epoch):  # a seeded shuffle inside each group ...
        members.setdefault(groups[i], []).append(i)
    chunks = []
    for key in sorted(members, key=str):
        m = members[key]
        chunks += [m[k:k + run] for k in range(0, len(m), run)]
    g = torch.Generator().manual_seed(seed * 10_007 + epoch + 7)  # ... and of the runs
    order = [i for c in torch.randperm(len(chunks), generator=g).tolist() for i in chunks[c]]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    per_rank = len(batches) // world if world > 1 else len(batches)  # whole batches per rank keep runs intact
    return batches[rank::world][:per_rank]


class TableDataset(Dataset):
    """Items of a split. `paths`/`mos` are per image; items are (image, crop of its view), image-major."""

    def __init__(self, paths: list[str], mos: list[float], view: View, train: bool = False, seed: int = 0,
                 cache: torch.Tensor | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 crop_jitter: float = 0.0, features: tuple[Path, list[int] | None] | None = None):
        if crop_jitter and cache is not None:
            raise DpiqaError("--crop-jitter cannot be used with a teacher cache: cached maps are of the fixed view")
        self.crop_jitter = float(crop_jitter)
        self.paths, self.mos, self.view, self.size = list(paths), [float(m) for m in mos], view, view.size
        self.train, self.seed, self.epoch, self.cache = train, seed, 0, cache
        self.max_pixels, self.patches = max_pixels, view.name == "patches"
        if view.crops_per_image() is not None:  # one layout for every image
            self.sizes = [(view.size, view.size)] * len(self.paths)
        else:  # the native views' layouts depend on each image's size (read from its header)
            self.sizes = [self._size(p) for p in self.paths]
        self.layouts = [view.parts(*size) for size in self.sizes]
        # items: (image, part, crop), image-major, in the order decode_views cuts them
        items = [(i, j, k) for i, parts in enumerate(self.layouts) for j, part in enumerate(parts)
                 for k in range(len(part.corners))]
        self.item_image, self.item_part, self.item_crop = (np.array([it[n] for it in items], dtype=int)
                                                           for n in range(3))
        self._cut: tuple[int, np.ndarray] | None = None  # the last image decode_views cut (multiscale)
        self.features, self._feats = features, None  # cached frozen features: opened in each process
        if cache is not None and len(cache) != len(self):
            raise DpiqaError(f"teacher cache holds {len(cache)} maps for {len(self)} training items; delete it")

    def _size(self, path: str) -> tuple[int, int]:
        try:
            return image_size(path, self.max_pixels)
        except ImageError as exc:  # a training set with an unreadable file is bad input, not a crash
            raise DpiqaError(f"cannot read training image {path}: {exc}") from None

    def __len__(self) -> int:
        return len(self.item_image)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # read by worker copies made when the epoch's iterator starts

    def per_image(self, item_scores: np.ndarray) -> np.ndarray:
        """Item scores -> image scores, combined as the view combines an image's crops."""
        ends = np.cumsum([sum(len(p.corners) for p in parts) for parts in self.layouts])[:-1]
        return np.array([self.view.combine(c, size)
                         for c, size in zip(np.split(np.asarray(item_scores, float), ends), self.sizes)])

    def _view_crop(self, i: int) -> torch.Tensor:
        """Item i as `score` cuts it (multiscale: one decode per image, its crops reused by its next items)."""
        image = int(self.item_image[i])
        if self._cut is None or self._cut[0] != image:
            try:
                self._cut = (image, decode_views(self.paths[image], self.view, self.max_pixels)[0])
            except ImageError as exc:
                raise DpiqaError(f"cannot read training image {self.paths[image]}: {exc}") from None
        first = int(np.searchsorted(self.item_image, image))  # items are image-major
        return torch.from_numpy(self._cut[1][i - first].copy()).permute(2, 0, 1).float().div_(255.0)

    def _decode(self, i: int, g: torch.Generator | None = None) -> torch.Tensor:
        """Item i's image resized to its part's box (S x S for whole, 2S x 1.5S for patches, a working scale
        for the native views), float in [0, 1]; with crop_jitter and a generator, a random box of the image at
        its own resolution is what gets resized."""
        path = self.paths[self.item_image[i]]
        box = self.layouts[self.item_image[i]][self.item_part[i]].box
        jitter = self.crop_jitter if g is not None else 0.0
        try:
            img, _ = load_rgb(path, None if jitter else box, self.max_pixels)
        except ImageError as exc:  # a training set with an unreadable file is bad input, not a crash
            raise DpiqaError(f"cannot read training image {path}: {exc}") from None
        if jitter:
            w, h = img.size
            fw, fh = (jitter + (1.0 - jitter) * float(torch.rand(1, generator=g)) for _ in range(2))
            cw, ch = max(1, round(w * fw)), max(1, round(h * fh))
            x0, y0 = (int(torch.randint(0, d - c + 1, (1,), generator=g)) for d, c in ((w, cw), (h, ch)))
            img = img.crop((x0, y0, x0 + cw, y0 + ch)).resize(box, Image.BILINEAR)
        return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, i: int) -> dict:
        if self.features is not None:  # the frozen part's output for the fixed, unflipped crop
            path, rows = self.features
            if self._feats is None:
                from dpiqa_cli.train.frozen_cache import open_features

                self._feats = open_features(Path(path), rows, len(self))
            return {"x": torch.from_numpy(np.asarray(self._feats[i if rows is None else rows[i]], dtype=np.float32)),
                    "y": torch.tensor(self.mos[self.item_image[i]], dtype=torch.float32), "idx": torch.tensor(i)}
        g = item_generator(self.seed, self.epoch, i) if self.train else None
        s, part = self.size, self.layouts[self.item_image[i]][self.item_part[i]]
        box, corners = part.box, part.corners
        if g is None and self.view.name == "multiscale" and tuple(box) != (s, s):
            x, box = self._view_crop(i), (s, s)  # validation: exactly the crops `score` cuts
        else:
            x = self._decode(i, g)  # draws from g only with crop_jitter: without it, flips and crops are unchanged
        flip = bool(torch.randint(0, 2, (1,), generator=g).item()) if g is not None else False
        if tuple(box) != (s, s):
            if g is not None and self.cache is None:  # random position (a live teacher sees the same crop)
                x0, y0 = (int(torch.randint(0, d - s + 1, (1,), generator=g)) for d in box)
            else:  # the view's fixed crops, as `score` and `bench` cut them
                x0, y0 = corners[self.item_crop[i]]
            x = x[:, y0:y0 + s, x0:x0 + s]
        if flip:
            x = x.flip(-1)
        item = {"x": x.contiguous(), "y": torch.tensor(self.mos[self.item_image[i]], dtype=torch.float32),
                "idx": torch.tensor(i)}
        if self.cache is not None:
            item["ft"] = self.cache[i, int(flip)].float()
        return item
