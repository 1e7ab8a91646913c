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
from dataclasses import dataclass, replace

import numpy as np
import torch

from dpiqa_cli.data.views import View
from dpiqa_cli.device import resolve_device, resolve_precision
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.resolve import ResolvedModel
from dpiqa_cli.scoring import pipeline
from dpiqa_cli.scoring.backend import prepare_runner
from dpiqa_cli.scoring.decode import Batch, Decoded, collate, decode_item
from dpiqa_cli.scoring.graph_cache import cached_graph, pick_runtime
from dpiqa_cli.scoring.options import ScoreOptions
from dpiqa_cli.scoring.parquet_parts import PartsStore
from dpiqa_cli.scoring.result_loop import run_loop
from dpiqa_cli.scoring.writer import SIDE_COLS, ResultRow, ResultWriter

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


class ScoringActor:
    """The Ray actor: one runner, loaded once; scores a batch of rows (decoding them first if needed)."""

    def __init__(self, options: ScoreOptions, exit_hook: str | None = None):
        if options.threads:
            torch.set_num_threads(options.threads)
        dev = resolve_device(options.device)
        self.runner, _ = prepare_runner(options.resolve(), options, dev)
        self.max_pixels, self.exit_hook, self.calls = options.max_pixels, exit_hook, 0

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


def plan_job(options: ScoreOptions, view: View, actors: int | None = None, cpus_per_actor: int = 1,
             rows_per_batch: int | None = None, decode_in_tasks: bool | None = None, spare_cpus: int = 0) -> Plan:
    """Resources from the connected cluster: a GPU per actor when the cluster has GPUs (and --device allows),
    else `cpus_per_actor` CPUs per actor; `spare_cpus` are left for upstream read tasks."""
    if cpus_per_actor < 1 or (actors is not None and actors < 1):
        raise DpiqaError("Ray actors need at least 1 CPU each, and there must be at least 1 actor")
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
    dev = (options.device or "auto").lower()
    if dev.startswith("cuda") and not gpus:
        raise DpiqaError(f"--device {options.device}: the Ray cluster has no GPUs")
    use_gpu = gpus > 0 and (dev == "auto" or dev.startswith("cuda"))
    actor_dev = "cuda" if use_gpu else ("cpu" if dev == "auto" else dev)  # each actor sees its own GPU as cuda:0
    prec = resolve_precision(options.precision, torch.device(actor_dev))
    decode_in_tasks = use_gpu if decode_in_tasks is None else decode_in_tasks
    if use_gpu:  # a CPU each for the actors' Python, unless the decoding tasks would have none left
        n, num_cpus, num_gpus, threads = actors or gpus, 1 if cpus > gpus else 0, 1, None
    else:
        free = cpus - spare_cpus - (1 if decode_in_tasks else 0)
        n, num_cpus, num_gpus, threads = actors or max(1, free // cpus_per_actor), cpus_per_actor, 0, cpus_per_actor
    rows = max(rows_per_batch or (128 if use_gpu else 16), options.batch_size or 1)
    actor = replace(options, device=actor_dev, precision=prec, threads=threads, out=None, resume=False, progress=False)
    args = dict(options=actor, exit_hook=os.environ.get(EXIT_HOOK))
    return Plan(args, view, n, num_cpus, num_gpus, rows, decode_in_tasks, actor_dev, prec)


def apply_plan(ds: ray.data.Dataset, plan: Plan) -> ray.data.Dataset:
    max_pixels = plan.scorer_args["options"].max_pixels
    if plan.decode_in_tasks:
        ds = ds.map_batches(_decode_task, fn_kwargs=dict(view=plan.view, max_pixels=max_pixels), batch_size=plan.rows,
                            batch_format="pyarrow", num_cpus=1)
    return ds.map_batches(ScoringActor, fn_constructor_kwargs=plan.scorer_args, batch_size=plan.rows,
                          batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=plan.actors),
                          num_cpus=plan.num_cpus, num_gpus=plan.num_gpus)


def score_dataset(ds: ray.data.Dataset, options: ScoreOptions | None = None, *, actors: int | None = None,
                  cpus_per_actor: int = 1, rows_per_batch: int | None = None, decode_in_tasks: bool | None = None,
                  **changes) -> ray.data.Dataset:
    """A Dataset of `path` (+ optional `bytes`) rows -> one of `path, score, width, height, error` rows (lazy,
    like any Ray Dataset). Decoding, view and model are those of `dpiqa score` (`options`, or keyword
    arguments replacing its fields), so a file gets the same score on both paths. Needs a connected Ray
    (`ray.init(...)`). A Dataset still to be read from storage gets one CPU left free for its read tasks."""
    opts = ScoreOptions.of(options, **changes)
    if not ray.is_initialized():
        ray.init()
    cols = ds.columns(fetch_if_missing=False)
    if cols is not None and "path" not in cols:
        raise DpiqaError(f"score_dataset needs a `path` column (and optionally `bytes`), not {cols}")
    resolved = opts.resolve()
    resolved.require_weights()
    spare = 0 if isinstance(ds, MaterializedDataset) else 1
    plan = plan_job(opts, resolved.view, actors, cpus_per_actor, rows_per_batch, decode_in_tasks, spare_cpus=spare)
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


class RayFeed:
    """Rows from Ray actors: the driver only resolves the model and plans; the actors load and score it."""

    def __init__(self, opts: ScoreOptions, resolved: ResolvedModel, address: str | None, plan_opts: dict):
        self.opts, self.resolved, self.address, self.plan_opts = opts, resolved, address, plan_opts
        self.own, self.plan, self.export_s = False, None, 0.0
        ckpt = resolved.checkpoint  # a CPU actor runs its graph: export it once here, not once per actor
        if pick_runtime(opts.runtime, "cpu", "fp32", False, ckpt) != "torch":
            self.export_s = cached_graph(ckpt, quiet=not opts.progress)[1]

    def start(self, todo: list[str]) -> None:
        self.own = connect(self.address) if todo else False

    def rows(self, todo: list[str]):
        if not todo:
            return
        self.plan = plan_job(self.opts, self.resolved.view, **self.plan_opts)
        _own_progress()
        blocks = [pa.table({"path": pa.array(todo[i:i + self.plan.rows], pa.string())})
                  for i in range(0, len(todo), self.plan.rows)]
        for t in apply_plan(ray.data.from_arrow(blocks), self.plan).iter_batches(batch_size=None,
                                                                               batch_format="pyarrow"):
            yield [ResultRow(*r) for r in zip(*(t.column(c).to_pylist() for c in SIDE_COLS))]

    def failure(self, exc: BaseException) -> BaseException | None:
        return None

    def close(self) -> None:
        if self.own:
            ray.shutdown()
            self.own = False

    def summary(self) -> dict:
        plan = self.plan
        return dict(export_s=self.export_s, device=plan.device if plan else self.opts.device,
                    precision=plan.precision if plan else self.opts.precision, batch_size=self.opts.batch_size,
                    actors=plan.actors if plan else 0, ray=plan.describe() if plan else "")


def score_ray(paths, options: ScoreOptions | None = None, *, address: str | None = None,
              actors: int | None = None, cpus_per_actor: int = 1, rows_per_batch: int | None = None,
              decode_in_tasks: bool | None = None, **changes):
    """`score_paths` on a Ray cluster: the same ranked DataFrame, attrs, outputs and --resume; the store is
    `<stem>.parts/` (Parquet partitions, see `scoring.parquet_parts`). `address` as for `ray.init` (None:
    RAY_ADDRESS or the cluster `ray start` made here, else a new local Ray; `local`, `auto`, `HOST:PORT`,
    `ray://...`); actors, cpus_per_actor, rows_per_batch, decode_in_tasks: see `plan_job`."""
    t0 = time.perf_counter()
    opts = ScoreOptions.of(options, **changes)
    if opts.workers is not None:
        raise DpiqaError("--workers does not apply with --ray: the Ray actors (or tasks, on GPUs) decode")
    out = opts.out
    writer = ResultWriter(out, opts.resume, store=PartsStore(out, opts.flush_every) if out is not None else None)
    resolved = opts.resolve()
    resolved.require_weights()
    feed = RayFeed(opts, resolved, address, dict(actors=actors, cpus_per_actor=cpus_per_actor,
                                                 rows_per_batch=rows_per_batch, decode_in_tasks=decode_in_tasks))
    return run_loop(writer, paths, feed, resolved.identity, resolved.mos_scale, opts, t0)


def score_command(inputs, options: ScoreOptions, *, address: str | None, **kw) -> int:
    """`dpiqa score --ray ADDRESS`: the CLI's one call, as `pipeline.score_command` with the Ray scorer."""
    return pipeline.score_command(inputs, options, scorer=functools.partial(score_ray, address=address), **kw)
