"""`dpiqa score`: paths -> decode (DataLoader workers) -> batches -> model -> ranked file.

`score_paths` is the Python API; `score_command` adds discovery, the summary line, the --mos report
and the exit code for the CLI. Work is never lost: rows go to a sidecar as batches finish (see
outputs.py), and the final file replaces nothing until it is complete.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from dpiqa_cli import outputs as O
from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS, discover
from dpiqa_cli.data.loader import default_workers, make_loader
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.runners import make_runner, resolve_device, resolve_precision

log = logging.getLogger(__name__)
RESULT_COLS = ["rank", "path", "score", "width", "height"]


def _dist() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def to_mos(score, scale: dict | None):
    """Map normalised scores (higher = better, [0, 1]) back onto the training dataset's MOS scale."""
    lo, hi = float(scale["min"]), float(scale["max"])
    return hi - score * (hi - lo) if scale.get("lower_better") else lo + score * (hi - lo)


def rank_table(scored: dict, mos_scale: dict | None) -> pd.DataFrame:
    """{path: (score, w, h)} -> best first; ties broken by path so the order is reproducible."""
    df = pd.DataFrame([(p, s, w, h) for p, (s, w, h) in scored.items()], columns=["path", "score", "width", "height"])
    df = df.sort_values(["score", "path"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    if mos_scale and len(df):
        df["mos"] = to_mos(df["score"], mos_scale)
    return df.astype({"width": "int64", "height": "int64"})


class Feedback:
    """A rich bar on a terminal; plain periodic lines when stderr is a file or pipe; nothing if quiet."""

    def __init__(self, total: int, enabled: bool, every_s: float = 10.0):
        self.total, self.done, self.failed, self.t0 = total, 0, 0, time.perf_counter()
        self.mode = "off" if not enabled or total == 0 else ("bar" if sys.stderr.isatty() else "log")
        self.every_s, self.last = every_s, self.t0
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]:.1f} img/s"), TextColumn("{task.fields[failed]} failed"),
                                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task("score", total=total, rate=0.0, failed=0)
            self.bar.start()

    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.t0, 1e-9)

    def update(self, n: int, failed: int) -> None:
        self.done += n
        self.failed += failed
        if self.mode == "bar":
            self.bar.update(self.task, advance=n, rate=self.rate(), failed=self.failed)
        elif self.mode == "log" and (time.perf_counter() - self.last >= self.every_s or self.done == self.total):
            self.last = time.perf_counter()
            eta = (self.total - self.done) / max(self.rate(), 1e-9)
            print(f"processed {self.done}/{self.total} ({self.failed} failed), {self.rate():.1f} img/s, ETA {eta:.0f} s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.mode == "bar":
            self.bar.stop()


def _dedupe(paths) -> list[str]:
    seen, out = set(), []
    for p in paths:
        p = os.path.abspath(os.fspath(p))
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _init_dist(world: int, device: torch.device) -> bool:
    """Join torchrun's process group; True if this call created it (and so must destroy it)."""
    import torch.distributed as dist

    if world <= 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL barriers run on the current device: one GPU per rank
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def score_paths(paths, model="student", weights=None, device: str = "auto", precision: str = "auto",
                batch_size: int | None = None, workers: int | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS, compile: bool = False, out: str | Path | None = None,
                resume: bool = False, progress: bool = True, flush_every: int = 4) -> pd.DataFrame:
    """Score image paths; returns the ranked DataFrame (rank, path, score, width, height[, mos]).

    `df.attrs['errors']` is a dict {path: reason} of the files that failed and `df.attrs['summary']`
    a dict (scored, failed, resumed, images_per_s, wall_s, ...). With `out`, results also go to that
    file (.csv/.jsonl/.parquet), failures to `<stem>.errors.csv`, and a sidecar makes the run resumable.
    Under torchrun (WORLD_SIZE > 1) every rank scores paths[rank::world] of the sorted list and rank 0
    writes the merged file; other ranks return their own shard.
    """
    t0 = time.perf_counter()
    rank, world, local_rank = _dist()
    out = Path(out) if out is not None else None
    if world > 1 and out is None:
        raise DpiqaError("under torchrun, pass --out: the ranks merge their shards through files")
    O.check_out(out)
    dev = resolve_device(device, local_rank if world > 1 else None)
    prec = resolve_precision(precision, dev)
    runner = make_runner(model, weights, dev, prec, compile)
    if batch_size is not None and batch_size < 1:
        raise DpiqaError("--batch-size must be at least 1")
    batch_size = batch_size or runner.default_batch
    runner.pad_to = batch_size * runner.views
    workers = default_workers(dev) if workers is None else workers
    if workers < 0:
        raise DpiqaError("--workers must be 0 or more")
    paths = _dedupe(paths)
    own_group = _init_dist(world, dev)
    shard = sorted(paths)[rank::world] if world > 1 else paths

    done: dict = {}
    sidecar = None
    if out is not None:
        meta = dict(runner.meta, max_pixels=max_pixels)
        O.check_meta(out, meta, resume)
        if resume:
            done, _ = O.read_sidecars(O.all_sidecars(out))
        if world > 1:
            import torch.distributed as dist

            dist.barrier()  # every rank has read the old sidecars before any is written
        if rank == 0:
            O.write_meta(out, meta)
        sidecar = O.Sidecar(O.sidecar_path(out, rank if world > 1 else None), flush_every, append=resume)
    todo = [p for p in shard if p not in done]
    scored: dict = {p: done[p] for p in shard if p in done}
    failed: dict = {}
    fb = Feedback(len(todo), progress)
    delay = float(os.environ.get("DPIQA_TEST_BATCH_DELAY", "0"))  # tests: makes a mid-run kill deterministic
    t_loop = time.perf_counter()
    try:
        for batch in make_loader(todo, runner.input_size, batch_size, workers, dev, max_pixels, runner.view):
            rows = [(todo[i], None, 0, 0, reason) for i, reason in batch.errors]
            if batch.x is not None:
                for i, s, (w, h) in zip(batch.index, runner.score_images(batch.x), batch.sizes):
                    rows.append((todo[i], float(s), w, h, None))
            for p, s, w, h, err in rows:
                if err is None:
                    scored[p] = (s, w, h)
                else:
                    failed[p] = err
            if sidecar is not None:
                sidecar.add(rows)
            fb.update(len(rows), len(batch.errors))
            if delay:
                time.sleep(delay)
    except BaseException as exc:  # Ctrl-C, out of memory, a model error: keep what was scored
        fb.close()
        if sidecar is not None:
            sidecar.close()
            what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped by an error"
            print(f"\n{what}: {len(scored)} results are safe in {sidecar.path}; run the same command with "
                  "--resume to continue", file=sys.stderr)
        if isinstance(exc, torch.OutOfMemoryError):
            raise DpiqaError(f"out of {dev.type.upper()} memory at --batch-size {batch_size}; "
                             "try a smaller one") from None
        raise
    fb.close()
    loop_s = time.perf_counter() - t_loop
    n_new = len(scored) - sum(1 for p in shard if p in done)

    if out is not None:
        sidecar.close()
        if world > 1:
            import torch.distributed as dist

            dist.barrier()  # every shard is on disk
        if rank == 0:
            sides = O.all_sidecars(out)
            all_scored, all_failed = O.read_sidecars(sides)
            scored = {p: all_scored[p] for p in paths if p in all_scored}
            failed = {p: all_failed.get(p, "no result") for p in paths if p not in all_scored}
    df = rank_table(scored, runner.mos_scale)
    errors = pd.DataFrame(sorted(failed.items()), columns=["path", "reason"])
    if out is not None and rank == 0:
        O.write_results(df, out)
        O.write_errors(errors, out)
        O.cleanup(out, O.all_sidecars(out))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # no rank exits before rank 0 has written the merged file
        if own_group:
            dist.destroy_process_group()
    wall = time.perf_counter() - t0
    df.attrs["errors"] = dict(sorted(failed.items()))  # a dict: pandas compares attrs on merge/concat
    df.attrs["summary"] = dict(scored=len(df), failed=len(errors), resumed=len(scored) - n_new if rank == 0 else 0,
                               new=n_new, images_per_s=n_new / loop_s if loop_s > 0 else 0.0, loop_s=loop_s,
                               wall_s=wall, device=str(dev), precision=getattr(runner, "precision", "fp32"),
                               batch_size=batch_size, workers=workers, rank=rank, world_size=world)
    return df


def summary_line(s: dict, out: Path | None) -> str:
    line = f"scored {s['scored']}"
    if s.get("resumed"):
        line += f" ({s['resumed']} from the earlier run)"
    line += f", failed {s['failed']}"
    if s["failed"] and out is not None:
        line += f" (see {O.errors_path(out)})"
    if s.get("world_size", 1) > 1:
        line += f", {s['world_size']} ranks"
    return line + f", {s['images_per_s']:.1f} img/s, wall {s['wall_s']:.1f} s"


def score_command(inputs, *, from_list=None, recursive=True, out=None, mos=None, report_dir=None,
                  quiet=False, **kw) -> int:
    """The CLI's one call: discover, score, write, report; returns the exit code (0 / 1 / 2)."""
    out = Path(out) if out is not None else None
    O.check_out(out)
    if mos is not None and not Path(mos).is_file():
        raise DpiqaError(f"--mos file not found: {mos}")
    if not inputs and from_list is None:
        raise DpiqaError("nothing to score: give files, folders, globs or --from-list FILE")
    paths = discover(inputs, recursive=recursive, from_list=from_list)
    if not paths:
        raise DpiqaError("no images found (extensions: jpg jpeg png webp bmp tif tiff)")
    df = score_paths(paths, out=out, progress=not quiet, **kw)
    s = df.attrs["summary"]
    if s["rank"] != 0:
        return 0
    if out is None:
        cols = [c for c in df.columns if c in RESULT_COLS + ["mos"]]
        df[cols].to_csv(sys.stdout, index=False)
        for p, reason in df.attrs["errors"].items():
            print(f"failed: {p}: {reason}", file=sys.stderr)
    print(summary_line(s, out), file=sys.stderr)
    if mos is not None and len(df):
        from dpiqa_cli.mos_report import mos_report

        where = mos_report(df, Path(mos), Path(report_dir) if report_dir else None, out)
        print(f"correlation report: {where}", file=sys.stderr)
    if s["scored"] == 0:
        return 2
    return 1 if s["failed"] else 0
