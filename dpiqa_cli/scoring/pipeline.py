"""`dpiqa score`: paths -> decode (DataLoader workers) -> batches of crops -> runner -> ranked file.

`score_paths` scores paths on this machine; `score_command` adds discovery, the summary line, the --mos
report and the exit code for the CLI (`scoring.ray_job` feeds the same loop from a Ray cluster). Work is
never lost: rows go to a sidecar as batches finish (`scoring.writer`), and the final file replaces nothing
until it is complete.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

from dpiqa_cli.data.discover import discover, unique_paths
from dpiqa_cli.device import default_workers, device_name, device_type
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.scoring.backend import prepare_runner
from dpiqa_cli.scoring.loader import make_loader
from dpiqa_cli.scoring.options import ScoreOptions
from dpiqa_cli.scoring.result_loop import run_loop
from dpiqa_cli.scoring.runner import Runner
from dpiqa_cli.scoring.writer import (
    ResultRow,
    ResultWriter,
    errors_path,
    for_output,
    relative_inputs,
    shown_path,
    write_csv,
)

RESULT_COLS = ["rank", "path", "score", "width", "height"]
SMALL_JOB = 4  # images up to which decoding stays in-process by default
NOTHING_SCORED = 4  # apart from 2 (a usage mistake): the arguments were fine, every input failed


class LocalFeed:
    """Rows from this machine: DataLoader (or in-process) decoding, then the runner."""

    def __init__(self, runner: Runner, batch_size: int, workers: int, device, max_pixels: int | None):
        self.runner, self.batch_size, self.workers, self.device = runner, batch_size, workers, device
        self.max_pixels = max_pixels

    def start(self, todo: list[str]) -> None:
        pass

    def rows(self, todo: list[str]):
        delay = float(os.environ.get("DPIQA_TEST_BATCH_DELAY", "0"))  # tests: makes a mid-run kill deterministic
        for batch in make_loader(todo, self.runner.view, self.batch_size, self.workers, self.device, self.max_pixels):
            rows = [ResultRow(todo[i], None, 0, 0, reason) for i, reason in batch.errors]
            if batch.x is not None:
                scores = self.runner.score_images(batch.x, batch.counts, batch.sizes)
                rows += [ResultRow(todo[i], float(s), w, h, None)
                         for i, s, (w, h) in zip(batch.index, scores, batch.sizes)]
            yield rows
            if delay:
                time.sleep(delay)

    def failure(self, exc: BaseException) -> BaseException | None:
        torch = sys.modules.get("torch")  # imported only if a torch runner ran
        if torch is not None and isinstance(exc, torch.OutOfMemoryError):
            return DpiqaError(f"out of {device_type(self.device).upper()} memory at --batch-size {self.batch_size}; "
                              "try a smaller one")
        return None

    def close(self) -> None:
        pass

    def summary(self) -> dict:
        return dict(export_s=self.runner.export_s, device=str(self.device), precision=self.runner.precision,
                    runtime=self.runner.runtime, batch_size=self.batch_size, workers=self.workers)


def score_paths(paths, options: ScoreOptions | None = None, **changes) -> pd.DataFrame:
    """Score image paths with `options` (a `ScoreOptions`; keyword arguments replace its fields) ->
    the ranked DataFrame (rank, path, score, width, height[, mos]), absolute paths and every bit of the
    scores (files written hold 6 significant digits: `writer.for_output`). `attrs['errors']`: {path: reason}
    of the files that failed; `attrs['summary']`: scored, failed, resumed, new, images_per_s, loop_s,
    export_s, wall_s, ... With `out`, results also go to that file, failures to `<stem>.errors.csv`, and a
    sidecar makes the run resumable."""
    t0 = time.perf_counter()
    opts = ScoreOptions.of(options, **changes)
    writer = ResultWriter(opts.out, opts.resume, opts.flush_every)
    resolved = opts.resolve()
    dev = device_name(opts.device)
    workers = opts.workers
    if workers is None:  # a worker process costs more to start than a few decodes take
        workers = 0 if len(unique_paths(paths)) <= SMALL_JOB else default_workers(dev)
    runner, batch_size = prepare_runner(resolved, opts, dev, workers, quiet=not opts.progress)
    feed = LocalFeed(runner, batch_size, workers, dev, opts.max_pixels)
    return run_loop(writer, paths, feed, resolved.identity, runner.mos_scale, opts, t0)


def summary_line(s: dict, out: Path | None) -> str:
    """What was done: `scored 7, failed 2 (see x.errors.csv)`; the same for every run of the same files."""
    line = f"scored {s['scored']}"
    if s.get("resumed"):
        line += f" ({s['resumed']} from the earlier run)"
    line += f", failed {s['failed']}"
    if s["failed"] and out is not None:
        line += f" (see {errors_path(out)})"
    return line


def speed_line(s: dict) -> str:
    """How fast: photos scored (failures are not) per second of the scoring loop, then the wall time, and
    apart from the rate the one-time ONNX export of a checkpoint's first use and Ray's start-up."""
    if s["new"]:
        line = f"speed: {s['images_per_s']:.1f} img/s ({s['new']} scored in {s['loop_s']:.1f} s)"
    else:
        line = "speed: none scored in this run"
    if s.get("actors"):
        line += f", {s['actors']} Ray actors (first result after {s['first_result_s']:.1f} s)"
    line += f"; wall {s['wall_s']:.1f} s"
    if s.get("export_s"):
        line += f", of which {s['export_s']:.1f} s a one-time ONNX export (first use of this model)"
    return line


def score_command(inputs, options: ScoreOptions, *, from_list=None, recursive=True, mos=None, report_dir=None,
                  scorer=None) -> int:
    """The CLI's one call: discover, score, write, report; returns the exit code (0 all scored, 1 some failed,
    4 none scored). `scorer` replaces `score_paths` (the Ray path passes its own)."""
    out = options.out
    if mos is not None and not Path(mos).is_file():
        raise DpiqaError(f"--mos file not found: {mos}")
    if not inputs and from_list is None:
        raise DpiqaError("nothing to score: give files, folders, globs or --from-list FILE")
    paths = discover(inputs, recursive=recursive, from_list=from_list)
    if not paths:
        raise DpiqaError("no images found (extensions: jpg jpeg png webp bmp tif tiff)")
    df = (scorer or score_paths)(paths, options)
    s = df.attrs["summary"]
    if out is None:
        relative = relative_inputs(paths)
        cols = [c for c in df.columns if c in RESULT_COLS + ["mos"]]
        write_csv(for_output(df[cols], relative), sys.stdout)
        for p, reason in df.attrs["errors"].items():
            print(f"failed: {shown_path(p, relative, None)}: {reason}", file=sys.stderr)
    print(summary_line(s, out), file=sys.stderr)
    print(speed_line(s), file=sys.stderr)
    if mos is not None and len(df):
        from dpiqa_cli.evaluate.mos import mos_report  # scipy's statistics take ~1 s to import: only for --mos

        where = mos_report(df, Path(mos), Path(report_dir) if report_dir else None, out)
        print(f"correlation report: {where}", file=sys.stderr)
    if s["scored"] == 0:
        return NOTHING_SCORED
    return 1 if s["failed"] else 0
