"""How decoded batches reach the runner: in a thread of this process, a batch ahead of the model
(`prefetch`), in DataLoader worker processes (`scoring.torch_loader`), or in a plain process pool on an
install without torch. `make_loader` picks one; needs no torch itself."""
from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS
from dpiqa_cli.data.views import View
from dpiqa_cli.device import device_type
from dpiqa_cli.extras import installed
from dpiqa_cli.scoring.decode import Batch, batches, collate, decode_chunk


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
            pending.append(pool.apply_async(decode_chunk, job))
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
    from dpiqa_cli.scoring.torch_loader import worker_loader  # torch's DataLoader: only when there are workers

    return worker_loader(paths, view, batch_size, workers, device_type(device) == "cuda", max_pixels)
