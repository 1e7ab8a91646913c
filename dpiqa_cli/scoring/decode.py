"""The decode stage of scoring: image paths -> batches of their views' crops, in this process (a thread,
`prefetch`) or in DataLoader worker processes (`scoring.loader`; a plain process pool on an install without
torch); failures travel with the batch as error records, so one bad file never stops a run.

Each image becomes its view's K crops (`data.views`), so a batch of B images holds sum(K) crops,
image-major, with `counts` saying how many belong to each image. Crops stay uint8 H x W x 3 (4x less
inter-process and host-to-device traffic than floats); the runner turns them into float [0, 1]. Stacking
HWC crops and permuting gives an NCHW array that is already channels_last in memory, which is what the
convolutions prefer. The in-process path needs no torch: numpy arrays all the way to ONNX Runtime.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, ImageError
from dpiqa_cli.data.reasons import CANNOT_DECODE
from dpiqa_cli.data.views import View, decode_views
from dpiqa_cli.device import device_type
from dpiqa_cli.extras import installed


def decode_item(i: int, path, view: View, max_pixels: int | None) -> tuple:
    """(i, K x S x S x 3 uint8 crops or None, width, height, error or None) of one file or file object."""
    try:
        arr, (w, h) = decode_views(path, view, max_pixels)
        return i, arr, w, h, None
    except ImageError as exc:
        return i, None, 0, 0, str(exc)
    except Exception as exc:  # a decoder bug on one odd file must not stop the run
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return i, None, 0, 0, CANNOT_DECODE.format(why=why)


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


def collate(items, cat: Callable = np.concatenate) -> Batch:
    """decode_item results -> one Batch; `cat` joins the crop arrays (torch.cat for worker tensors)."""
    good = [it for it in items if it[1] is not None]
    x = None
    if good:
        x = cat([it[1] for it in good])
        x = x.permute(0, 3, 1, 2) if hasattr(x, "permute") else x.transpose(0, 3, 1, 2)
    return Batch([it[0] for it in good], x, [(it[2], it[3]) for it in good], [len(it[1]) for it in good],
                 [(it[0], it[4]) for it in items if it[1] is None])


def batches(paths: list, view: View, batch_size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[Batch]:
    """Batches of `batch_size` paths, decoded here, in order."""
    for start in range(0, len(paths), batch_size):
        yield collate([decode_item(start + j, p, view, max_pixels)
                       for j, p in enumerate(paths[start:start + batch_size])])


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(device) -> int:
    cpus = usable_cpus()
    if device_type(device) == "cpu":
        # Up to 4 cores, decoding in a thread of this process (`prefetch`) measured faster than a worker
        # process and needs no second copy of torch in memory (BENCHMARKS.md, "CPU runtime").
        return 0 if cpus <= 4 else min(4, cpus // 4)
    return max(1, min(8, cpus - 1))


def prefetch(batches: Iterable, depth: int = 2) -> Iterator:
    """The items of `batches`, produced `depth` ahead in a thread: in-process decoding overlaps the model
    (PIL's decoders and ONNX Runtime / torch release the GIL). An error in the thread is raised here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def run():
        try:
            for item in batches:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    t = threading.Thread(target=run, name="dpiqa-decode", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def _decode_chunk(args: tuple) -> list[tuple]:
    start, paths, view, max_pixels = args
    return [decode_item(start + j, p, view, max_pixels) for j, p in enumerate(paths)]


def pool_batches(paths: list, view: View, batch_size: int, workers: int,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[Batch]:
    """Batches decoded by `workers` processes of a plain pool, in order, a few batches ahead: the worker
    processes of an install without torch (the core), where DataLoader is not there."""
    jobs = ((s, paths[s:s + batch_size], view, max_pixels) for s in range(0, len(paths), batch_size))
    # fork is cheap and the workers only run Pillow and numpy; spawn where fork is unsafe or missing
    context = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for job in jobs:  # at most 2 batches per worker in flight: decoded crops are large
            pending.append(pool.apply_async(_decode_chunk, (job,)))
            if len(pending) >= 2 * workers:
                yield collate(pending.popleft().get())
        while pending:
            yield collate(pending.popleft().get())


def make_loader(paths: list[str], view: View, batch_size: int, workers: int, device,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterable[Batch]:
    """The batches of `paths`: with workers=0 decoded in a thread of this process, a batch ahead of the model
    (`prefetch`), else by DataLoader worker processes (a plain process pool where torch is not installed)."""
    if workers == 0:
        return prefetch(batches(paths, view, batch_size, max_pixels))
    if not installed("torch", ("torch",)):
        return pool_batches(paths, view, batch_size, workers, max_pixels)
    from dpiqa_cli.scoring.loader import worker_loader  # torch's DataLoader: only when there are workers

    return worker_loader(paths, view, batch_size, workers, device_type(device) == "cuda", max_pixels)
