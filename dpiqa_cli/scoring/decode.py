"""Decoding for scoring: an image path -> its view's crops, and decoded images -> one `Batch`. Pure
decoding: where it runs (a thread, worker processes, Ray tasks) is `scoring.loader`'s and the callers'.

Each image becomes its view's K crops (`data.views`), so a batch of B images holds sum(K) crops,
image-major, with `counts` saying how many belong to each image. Crops stay uint8 H x W x 3 (4x less
inter-process and host-to-device traffic than floats); the runner turns them into float [0, 1]. Stacking
HWC crops and permuting gives an NCHW array that is already channels_last in memory. No torch needed.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, ImageError
from dpiqa_cli.data.reasons import CANNOT_DECODE
from dpiqa_cli.data.views import View, decode_views


class Decoded(NamedTuple):
    """One decoded file: its crops (K x S x S x 3 uint8, None when it failed) and size, or why it failed."""

    index: int
    crops: Any
    width: int
    height: int
    error: str | None


def decode_item(i: int, path, view: View, max_pixels: int | None) -> Decoded:
    """The crops of one file or file object; a failure is a record with its one-line reason, never raised."""
    try:
        arr, (w, h) = decode_views(path, view, max_pixels)
        return Decoded(i, arr, w, h, None)
    except ImageError as exc:
        return Decoded(i, None, 0, 0, str(exc))
    except Exception as exc:  # a decoder bug on one odd file must not stop the run
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return Decoded(i, None, 0, 0, CANNOT_DECODE.format(why=why))


def decode_chunk(start: int, paths: list, view: View, max_pixels: int | None) -> list[Decoded]:
    """`decode_item` of consecutive paths, numbered from `start`."""
    return [decode_item(start + j, p, view, max_pixels) for j, p in enumerate(paths)]


@dataclass
class Batch:
    index: list[int]  # indices of the decoded images, in batch order
    x: Any  # sum(counts) x 3 x S x S uint8 (numpy, or torch from workers; channels_last memory); None if all failed
    sizes: list[tuple[int, int]]
    counts: list[int] = field(default_factory=list)  # crops per decoded image
    errors: list[tuple[int, str]] = field(default_factory=list)

    def pin_memory(self):  # called by DataLoader(pin_memory=True) for custom batch types
        if self.x is not None:
            self.x = self.x.pin_memory()
        return self


def collate(items: list[Decoded], cat: Callable = np.concatenate) -> Batch:
    """Decoded files -> one Batch; `cat` joins the crop arrays (torch.cat for worker tensors)."""
    good = [it for it in items if it.crops is not None]
    x = None
    if good:
        x = cat([it.crops for it in good])
        x = x.permute(0, 3, 1, 2) if hasattr(x, "permute") else x.transpose(0, 3, 1, 2)
    return Batch([it.index for it in good], x, [(it.width, it.height) for it in good], [len(it.crops) for it in good],
                 [(it.index, it.error) for it in items if it.crops is None])


def batches(paths: list, view: View, batch_size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[Batch]:
    """Batches of `batch_size` paths, decoded here, in order."""
    for start in range(0, len(paths), batch_size):
        yield collate(decode_chunk(start, paths[start:start + batch_size], view, max_pixels))
