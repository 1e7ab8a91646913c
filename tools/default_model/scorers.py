"""Scorers for the level benchmark (`dpiqa_cli.evaluate.levels`): a dpiqa checkpoint through `dpiqa score`'s own
pipeline, and the same checkpoint's per-crop scores (to compare ways of combining crops without scoring twice)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from dpiqa_cli.data.views import View
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint import load_model
from dpiqa_cli.scoring.decode import make_loader
from dpiqa_cli.scoring.pipeline import make_runner, score_paths
from dpiqa_cli.device import device_name


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
                max_side: int | None = None) -> list[np.ndarray]:
    """Each image's crops' scores under the checkpoint's view (with `max_side`, the native view with that
    working-scale limit: the runtimes score any crops of the model's size, so only the cutting changes), in
    `paths` order (decode and runtime as in score)."""
    dev = device_name(device)
    runner = make_runner(str(weights), device=dev, quiet=True, max_side=max_side)  # the CPU runtime, as score
    runner.set_batch(batch_size)
    out: list = [None] * len(paths)
    for batch in make_loader([str(p) for p in paths], runner.view, batch_size, 0, dev):
        if batch.errors:
            raise DpiqaError(f"images failed to score: {batch.errors}")
        crops = runner.crop_scores(batch.x)
        for i, part in zip(batch.index, np.split(crops, np.cumsum(batch.counts)[:-1])):
            out[i] = part.astype(np.float64)
    return out
