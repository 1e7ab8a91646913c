"""Scoring on a Ray cluster: the decode, runner and writer of `dpiqa score`, spread over Ray actors.

- `score_dataset(ds)`, the Python API: a Ray Dataset with a `path` column, and optionally `bytes` (what
  `ray.data.read_binary_files(..., include_paths=True)` makes), becomes a Dataset of
  `path, score, width, height, error` (score null and error set for a file that failed).
- `score_ray(paths)`, what `dpiqa score --ray ADDRESS` runs: the same, plus Parquet partitions that make
  the run resumable and the ranked file and `<stem>.errors.csv`, written by `ResultWriter` as always.

Each actor holds one model, loaded once, and scores with the batch size and precision defaults of
`dpiqa score` on its own device. On GPUs there is one actor per GPU and decoding runs in CPU tasks that ship
uint8 crops to the actors; on CPUs each actor decodes its own batch (no crops cross processes) with one
torch thread per CPU it holds. A dead actor is restarted and its batches are retried (Ray Data's defaults
for actor pools: max_restarts=-1, max_task_retries=-1); the writer keeps each path once, so a retried batch
cannot duplicate a file.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dpiqa_cli.data.discover import unique_paths
from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS
from dpiqa_cli.data.views import View
from dpiqa_cli.device import resolve_device, resolve_precision
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.progress import Progress
from dpiqa_cli.scoring import pipeline
from dpiqa_cli.scoring.decode import Batch, Decoded, collate, decode_item
from dpiqa_cli.scoring.parquet_parts import PartsStore
from dpiqa_cli.scoring.pipeline import make_runner, prepare_runner
from dpiqa_cli.scoring.writer import SIDE_COLS, ResultWriter, relative_inputs

try:
    import pyarrow as pa
    import ray
    import ray.data
    from ray.data.dataset import MaterializedDataset
except ImportError:
    raise DpiqaError("--ray needs Ray and pyarrow: pip install 'dpiqa[ray]'") from None

EXIT_HOOK = "DPIQA_TEST_RAY_EXIT"  # tests: "N:MARKER" makes the first actor to reach its N-th batch exit once


def decode_batch(paths: list[str], blobs: list[bytes] | None, view: View, max_pixels: int | None) -> list[Decoded]:
    """The decoded files of one batch: from the files, or from their bytes when a Dataset carries them."""
    sources = paths if blobs is None else [io.BytesIO(b) for b in blobs]
    return [decode_item(i, src, view, max_pixels) for i, src in enumerate(sources)]


def _decode_task(t: pa.Table, view: View, max_pixels: int | None) -> pa.Table:
    """The CPU stage in front of GPU actors: each row's crops as raw bytes (K varies with the view)."""
    items = decode_batch(t.column("path").to_pylist(), _blobs(t), view, max_pixels)
    return pa.table({"path": pa.array(t.column("path").to_pylist(), pa.string()),
                     "crops": pa.array([None if it.crops is None else it.crops.tobytes() for it in items],
                                       pa.large_binary()),
                     "k": pa.array([0 if it.crops is None else len(it.crops) for it in items], pa.int64()),
                     "width": pa.array([it.width for it in items], pa.int64()),
                     "height": pa.array([it.height for it in items], pa.int64()),
                     "error": pa.array([it.error for it in items], pa.string())})


def _blobs(t: pa.Table) -> list[bytes] | None:
    return t.column("bytes").to_pylist() if "bytes" in t.column_names else None


def _decoded_items(t: pa.Table, size: int) -> list[Decoded]:
    """_decode_task's rows back into decoded files."""
    items = []
    for i, (c, k, w, h, e) in enumerate(zip(*(t.column(n).to_pylist() for n in ("crops", "k", "width", "height",
                                                                                  "error")))):
        x = None if c is None else np.frombuffer(bytearray(c), np.uint8).reshape(k, size, size, 3)
        items.append(Decoded(i, x, w, h, e))
    return items


def result_table(paths: list[str], batch: Batch, scores) -> pa.Table:
    """One row per path: (path, score, width, height, error), score null where the file failed."""
    score, width, height, error = [None] * len(paths), [0] * len(paths), [0] * len(paths), [None] * len(paths)
    for i, s, (w, h) in zip(batch.index, scores, batch.sizes):
        score[i], width[i], height[i] = float(s), w, h
    for i, reason in batch.errors:
        error[i] = reason
    return pa.table({"path": pa.array(paths, pa.string()), "score": pa.array(score, pa.float64()),
                     "width": pa.array(width, pa.int64()), "height": pa.array(height, pa.int64()),
                     "error": pa.array(error, pa.string())})


class Scorer:
    """The Ray actor: one runner, loaded once; scores a batch of rows (decoding them first if needed)."""

    def __init__(self, model, weights, device: str, precision: str, compile: bool, batch_size: int | None,
                 max_pixels: int | None, threads: int | None, exit_hook: str | None = None, runtime: str = "auto",
                 max_side: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        dev = resolve_device(device)
        self.runner, _ = prepare_runner(model, weights, dev, resolve_precision(precision, dev), compile, batch_size,
                                        runtime=runtime, threads=threads, quiet=True, max_side=max_side)
        self.max_pixels, self.exit_hook, self.calls = max_pixels, exit_hook, 0

    def _maybe_exit(self) -> None:
        if not self.exit_hook:
            return
        n, marker = self.exit_hook.split(":", 1)
        if self.calls == int(n):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            os._exit(1)  # an actor that dies mid-batch, as a lost node or an OOM kill would

    def __call__(self, t: pa.Table) -> pa.Table:
        self.calls += 1
        self._maybe_exit()
        paths = t.column("path").to_pylist()
        if "crops" in t.column_names:
            items = _decoded_items(t, self.runner.view.size)
        else:
            items = decode_batch(paths, _blobs(t), self.runner.view, self.max_pixels)
        batch = collate(items)
        scores = self.runner.score_images(batch.x, batch.counts, batch.sizes) if batch.x is not None else []
        return result_table(paths, batch, scores)


@dataclass
class Plan:
    """How a job runs on the cluster it is connected to."""

    scorer_args: dict
    view: View
    actors: int
    num_cpus: float
    num_gpus: float
    rows: int  # rows per Ray batch (each actor call); forward passes inside keep `dpiqa score`'s batch size
    decode_in_tasks: bool
    device: str
    precision: str

    def describe(self) -> str:
        return f"{self.actors} actor(s) on {self.device}" + (", decoding in CPU tasks" if self.decode_in_tasks else "")


def plan_job(model=None, weights=None, device: str = "auto", precision: str = "auto", batch_size: int | None = None,
             max_pixels: int | None = DEFAULT_MAX_PIXELS, compile: bool = False, actors: int | None = None,
             cpus_per_actor: int = 1, rows_per_batch: int | None = None, decode_in_tasks: bool | None = None,
             view: View | None = None, spare_cpus: int = 0, runtime: str = "auto", max_side: int | None = None) -> Plan:
    """Resources from the connected cluster: a GPU per actor when the cluster has GPUs (and --device allows),
    else `cpus_per_actor` CPUs per actor; `spare_cpus` are left for upstream read tasks."""
    if batch_size is not None and batch_size < 1:
        raise DpiqaError("--batch-size must be at least 1")
    if cpus_per_actor < 1 or (actors is not None and actors < 1):
        raise DpiqaError("Ray actors need at least 1 CPU each, and there must be at least 1 actor")
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
    dev = (device or "auto").lower()
    if dev.startswith("cuda") and not gpus:
        raise DpiqaError(f"--device {device}: the Ray cluster has no GPUs")
    use_gpu = gpus > 0 and (dev == "auto" or dev.startswith("cuda"))
    actor_dev = "cuda" if use_gpu else ("cpu" if dev == "auto" else dev)  # each actor sees its own GPU as cuda:0
    prec = resolve_precision(precision, torch.device(actor_dev))
    decode_in_tasks = use_gpu if decode_in_tasks is None else decode_in_tasks
    if use_gpu:  # a CPU each for the actors' Python, unless the decoding tasks would have none left
        n, num_cpus, num_gpus, threads = actors or gpus, 1 if cpus > gpus else 0, 1, None
    else:
        free = cpus - spare_cpus - (1 if decode_in_tasks else 0)
        n, num_cpus, num_gpus, threads = actors or max(1, free // cpus_per_actor), cpus_per_actor, 0, cpus_per_actor
    rows = max(rows_per_batch or (128 if use_gpu else 16), batch_size or 1)
    if view is None:
        view = make_runner(model, weights, runtime="torch", max_side=max_side).view
    args = dict(model=model, weights=weights, device=actor_dev, precision=prec, compile=compile,
                batch_size=batch_size, max_pixels=max_pixels, threads=threads, exit_hook=os.environ.get(EXIT_HOOK),
                runtime=runtime, max_side=max_side)
    return Plan(args, view, n, num_cpus, num_gpus, rows, decode_in_tasks, actor_dev, prec)


def apply_plan(ds: ray.data.Dataset, plan: Plan) -> ray.data.Dataset:
    max_pixels = plan.scorer_args["max_pixels"]
    if plan.decode_in_tasks:
        ds = ds.map_batches(_decode_task, fn_kwargs=dict(view=plan.view, max_pixels=max_pixels), batch_size=plan.rows,
                            batch_format="pyarrow", num_cpus=1)
    return ds.map_batches(Scorer, fn_constructor_kwargs=plan.scorer_args, batch_size=plan.rows, batch_format="pyarrow",
                          compute=ray.data.ActorPoolStrategy(size=plan.actors), num_cpus=plan.num_cpus,
                          num_gpus=plan.num_gpus)


def score_dataset(ds: ray.data.Dataset, model=None, weights=None, device: str = "auto", precision: str = "auto",
                  batch_size: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS, compile: bool = False,
                  actors: int | None = None, cpus_per_actor: int = 1, rows_per_batch: int | None = None,
                  decode_in_tasks: bool | None = None, runtime: str = "auto",
                  max_side: int | None = None) -> ray.data.Dataset:
    """A Dataset of `path` (+ optional `bytes`) rows -> one of `path, score, width, height, error` rows (lazy,
    like any Ray Dataset). Decoding, view and model are those of `dpiqa score`, so a file gets the same score
    on both paths. Needs a connected Ray (`ray.init(...)`). A Dataset still to be read from storage gets one
    CPU left free for its read tasks."""
    if not ray.is_initialized():
        ray.init()
    cols = ds.columns(fetch_if_missing=False)
    if cols is not None and "path" not in cols:
        raise DpiqaError(f"score_dataset needs a `path` column (and optionally `bytes`), not {cols}")
    spare = 0 if isinstance(ds, MaterializedDataset) else 1
    plan = plan_job(model, weights, device, precision, batch_size, max_pixels, compile, actors, cpus_per_actor,
                    rows_per_batch, decode_in_tasks, spare_cpus=spare, runtime=runtime, max_side=max_side)
    return apply_plan(ds, plan)


def connect(address: str | None) -> bool:
    """Join (or start) Ray; True if this call did, so that the caller shuts it down again."""
    if ray.is_initialized():
        return False
    kw = dict(include_dashboard=False) if address == "local" else {}
    try:
        ray.init(address=None if address in (None, "") else address, logging_level=logging.WARNING,
                 log_to_driver=False, **kw)
    except ConnectionError as exc:
        raise DpiqaError(f"--ray {address}: no Ray cluster there ({str(exc).splitlines()[0]}); start one with "
                         "`ray start --head`, or use --ray local for a Ray on this machine only") from None
    return True


def _own_progress() -> None:
    """dpiqa's progress line counts the images: no Ray Data bars or execution logs beside it."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"


def score_ray(paths, address: str | None = None, model=None, weights=None, device: str = "auto",
              precision: str = "auto", batch_size: int | None = None, workers: int | None = None,
              max_pixels: int | None = DEFAULT_MAX_PIXELS, compile: bool = False, out: str | Path | None = None,
              resume: bool = False, progress: bool = True, flush_every: int = 4, runtime: str = "auto",
              max_side: int | None = None, **plan_opts):
    """`score_paths` on a Ray cluster: the same ranked DataFrame, attrs, outputs and --resume; the store is
    `<stem>.parts/` (Parquet partitions, see `scoring.parquet_parts`). `address` as for `ray.init` (None: RAY_ADDRESS
    or the cluster `ray start` made here, else a new local Ray; `local`, `auto`, `HOST:PORT`, `ray://...`);
    `plan_opts`: actors, cpus_per_actor, rows_per_batch, decode_in_tasks (see `plan_job`)."""
    t0 = time.perf_counter()
    if workers is not None:
        raise DpiqaError("--workers does not apply with --ray: the Ray actors (or tasks, on GPUs) decode")
    out = Path(out) if out is not None else None
    writer = ResultWriter(out, resume, store=PartsStore(out, flush_every) if out is not None else None)
    local = make_runner(model, weights, runtime=runtime, quiet=not progress, max_side=max_side)  # identity and view
    relative = relative_inputs(paths)
    paths = unique_paths(paths)
    todo = writer.open(dict(local.meta, max_pixels=max_pixels), paths)
    view, mos_scale, export_s = local.view, local.mos_scale, local.export_s
    del local
    own = connect(address) if todo else False
    bar = Progress(len(todo), "processed", unit="file", enabled=progress)  # failed files count too
    plan, t_loop, t_first = None, time.perf_counter(), None
    try:
        if todo:
            plan = plan_job(model, weights, device, precision, batch_size, max_pixels, compile, view=view,
                            runtime=runtime, max_side=max_side, **plan_opts)
            _own_progress()
            blocks = [pa.table({"path": pa.array(todo[i:i + plan.rows], pa.string())})
                      for i in range(0, len(todo), plan.rows)]
            t_loop = time.perf_counter()
            for t in apply_plan(ray.data.from_arrow(blocks), plan).iter_batches(batch_size=None,
                                                                               batch_format="pyarrow"):
                rows = list(zip(*(t.column(c).to_pylist() for c in SIDE_COLS)))
                t_first = t_first or time.perf_counter()  # the actors are up: start-up ends here
                writer.add(rows)
                bar.update(len(rows), failed=len(writer.failed))
    except BaseException as exc:  # Ctrl-C, a lost cluster, retries used up: keep what was scored
        bar.close()
        writer.stopped(exc, out)
        raise
    finally:
        if own:
            ray.shutdown()
    bar.close()
    loop_s = time.perf_counter() - t_loop
    n_new = len(writer.scored) - writer.resumed
    df, failed = writer.finish(paths, mos_scale, relative)
    df.attrs["errors"] = failed
    df.attrs["summary"] = dict(scored=len(df), failed=len(failed), resumed=len(df) - n_new, new=n_new,
                               images_per_s=n_new / loop_s if loop_s > 0 and todo else 0.0, loop_s=loop_s,
                               export_s=export_s,
                               wall_s=time.perf_counter() - t0, device=plan.device if plan else device,
                               precision=plan.precision if plan else precision, batch_size=batch_size,
                               actors=plan.actors if plan else 0, ray=plan.describe() if plan else "",
                               first_result_s=(t_first - t_loop) if t_first else 0.0)
    return df


def score_command(inputs, *, address: str | None, **kw) -> int:
    """`dpiqa score --ray ADDRESS`: the CLI's one call, as `pipeline.score_command` with the Ray scorer."""
    return pipeline.score_command(inputs, scorer=functools.partial(score_ray, address=address), **kw)
