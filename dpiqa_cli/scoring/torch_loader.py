"""Decoding in DataLoader worker processes, for machines with cores to spare (`scoring.loader.make_loader`).
Workers ship torch tensors, which travel through shared memory rather than a pipe, and can be pinned for
the copy to a GPU."""
from __future__ import annotations

import functools

import torch
from torch.utils.data import DataLoader, Dataset

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS
from dpiqa_cli.data.views import View
from dpiqa_cli.scoring.decode import Decoded, collate, decode_item


class ImagePathsDataset(Dataset):
    """Item i: the decoded crops of `paths[i]` as a torch tensor (a `Decoded` record)."""

    def __init__(self, paths: list, view: View, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        self.paths, self.view, self.max_pixels = list(paths), view, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Decoded:
        item = decode_item(i, self.paths[i], self.view, self.max_pixels)
        return item if item.crops is None else item._replace(crops=torch.from_numpy(item.crops))


def worker_loader(paths: list[str], view: View, batch_size: int, workers: int, pin: bool,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DataLoader:
    return DataLoader(ImagePathsDataset(paths, view, max_pixels), batch_size=batch_size, shuffle=False,
                      num_workers=workers, collate_fn=functools.partial(collate, cat=torch.cat), pin_memory=pin,
                      drop_last=False, prefetch_factor=4, persistent_workers=False)
