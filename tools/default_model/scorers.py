"""Scorers for the build's questions: a dpiqa checkpoint through `dpiqa score`'s own pipeline, and the same
checkpoint's per-crop scores, so that views (crop counts, weights) can be compared without scoring twice."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from dpiqa_cli.data.views import View
from dpiqa_cli.device import device_name
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint import load_model
from dpiqa_cli.models.resolve import resolve_model
from dpiqa_cli.scoring.backend import make_runner
from dpiqa_cli.scoring.loader import make_loader
from dpiqa_cli.scoring.pipeline import score_paths


def checkpoint_scorer(weights: str | Path | None, device: str = "cpu", view: View | None = None):
    """scorer(paths) -> scores of a student checkpoint (None: the bundled default), as `dpiqa score` gives them;
    with `view`, that view instead of the checkpoint's own (to compare views on the same weights)."""
    def score(paths: Sequence[Path]) -> list[float]:
        model = None if weights is None else str(weights)  # a file: `dpiqa score`'s own runtime choice
        if view is not None:  # a view other than the file's: the torch model, its config changed in memory
            model = load_model(None, weights, device="cpu")
            model.config["view"] = view.to_config()
        df = score_paths([str(p) for p in paths], model=model, device=device, workers=0, progress=False)
        if df.attrs.get("errors"):
            raise DpiqaError(f"images failed to score: {df.attrs['errors']}")
        by_path = {str(Path(p).resolve()): float(s) for p, s in zip(df["path"], df["score"])}
        return [by_path[str(Path(p).resolve())] for p in paths]
    return score


def crop_scores(weights: str | Path, paths: Sequence[Path], device: str = "cpu", batch_size: int = 2,
                view: View | None = None, **view_changes) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """(each image's crops' scores, its size) in `paths` order, under the checkpoint's view, or `view`, or the
    checkpoint's view with `view_changes` (e.g. native_crops=3): the runtimes score any crops of the model's
    size, so only the cutting changes. Decode and runtime as in `score`; no calibration."""
    dev = device_name(device)
    runner = make_runner(resolve_model(weights=str(weights)), device=dev, quiet=True)  # the CPU runtime, as score
    runner.view = view or replace(runner.view, **view_changes)
    runner.set_batch(batch_size)
    out: list = [None] * len(paths)
    for batch in make_loader([str(p) for p in paths], runner.view, batch_size, 0, dev):
        if batch.errors:
            raise DpiqaError(f"images failed to score: {batch.errors}")
        crops = runner.crop_scores(batch.x)
        for i, part, size in zip(batch.index, np.split(crops, np.cumsum(batch.counts)[:-1]), batch.sizes):
            out[i] = (part.astype(np.float64), size)
    return out
