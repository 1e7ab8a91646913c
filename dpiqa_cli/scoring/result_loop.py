"""The one scoring loop: batches of `ResultRow`s from a feed (the local pipeline or Ray actors) into the
writer, with the progress line, the interrupted-run notice and the run's summary."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

import pandas as pd

from dpiqa_cli.data.discover import unique_paths
from dpiqa_cli.progress import Progress
from dpiqa_cli.scoring.options import ScoreOptions
from dpiqa_cli.scoring.writer import ResultRow, ResultWriter, relative_inputs


class Feed(Protocol):
    """Where result rows come from."""

    def start(self, todo: list[str]) -> None:
        """Get ready to score `todo` (Ray: join the cluster); the clock starts after this."""

    def rows(self, todo: list[str]) -> Iterator[list[ResultRow]]:
        """The rows of `todo`, a batch at a time, in any order."""

    def failure(self, exc: BaseException) -> BaseException | None:
        """A clearer error to raise instead of `exc`, if any."""

    def close(self) -> None:
        """Always called at the end (Ray: leave the cluster this run joined)."""

    def summary(self) -> dict:
        """What the run's summary adds: device, precision, batch_size and the feed's own counts."""


def run_loop(writer: ResultWriter, paths, feed: Feed, identity: dict, mos_scale: dict | None,
             opts: ScoreOptions, t0: float) -> pd.DataFrame:
    """Score `paths` (or what an interrupted run left of them) -> the ranked DataFrame, with
    `attrs['errors']` ({path: reason}) and `attrs['summary']` (counts and timings)."""
    relative = relative_inputs(paths)
    paths = unique_paths(paths)
    todo = writer.open(dict(identity, max_pixels=opts.max_pixels), paths)
    bar = Progress(len(todo), "processed", unit="file", enabled=opts.progress)  # failed files count too
    t_first = None
    feed.start(todo)
    try:
        t_loop = time.perf_counter()
        for rows in feed.rows(todo):
            t_first = t_first or time.perf_counter()  # start-up (workers, Ray actors) ends here
            writer.add(rows)
            bar.update(len(rows), failed=len(writer.failed))
    except BaseException as exc:  # Ctrl-C, out of memory, a model or cluster error: keep what was scored
        bar.close()
        writer.stopped(exc, opts.out)
        better = feed.failure(exc)
        if better is not None:
            raise better from None
        raise
    finally:
        feed.close()
    bar.close()
    loop_s = time.perf_counter() - t_loop
    n_new = len(writer.scored) - writer.resumed
    df, failed = writer.finish(paths, mos_scale, relative)
    df.attrs["errors"] = failed  # a dict: pandas compares attrs on merge/concat
    df.attrs["summary"] = dict(scored=len(df), failed=len(failed), resumed=len(df) - n_new, new=n_new,
                               images_per_s=n_new / loop_s if loop_s > 0 and todo else 0.0, loop_s=loop_s,
                               wall_s=time.perf_counter() - t0,
                               first_result_s=(t_first - t_loop) if t_first else 0.0, **feed.summary())
    return df
