"""The options of one scoring run, as `dpiqa score` takes them: one record from the CLI to the runner, the
local pipeline and the Ray actors."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.resolve import ResolvedModel, resolve_model


@dataclass(frozen=True)
class ScoreOptions:
    """What to score with, how, and where the results go; None leaves a default to the run."""

    model: Any = None  # registry name, checkpoint, .onnx file or a loaded model (`models.resolve`)
    weights: str | Path | None = None
    device: str = "auto"
    precision: str = "auto"
    runtime: str = "auto"  # auto|torch|onnx|openvino (`scoring.graph_cache.pick_runtime`)
    compile: bool = False
    batch_size: int | None = None  # images per batch (the runner's default)
    workers: int | None = None  # decoding processes (by the job's size)
    threads: int | None = None  # ONNX Runtime / OpenVINO threads (the cores the workers leave free)
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_side: int | None = None  # the view override: native and multiscale views' finest working scale
    out: Path | None = None  # .csv/.jsonl/.parquet; None: nothing written
    resume: bool = False
    flush_every: int = 4  # fsync the store every N batches
    progress: bool = True

    def __post_init__(self):
        if self.out is not None and not isinstance(self.out, Path):
            object.__setattr__(self, "out", Path(self.out))
        if self.batch_size is not None and self.batch_size < 1:
            raise DpiqaError("--batch-size must be at least 1")
        if self.workers is not None and self.workers < 0:
            raise DpiqaError("--workers must be 0 or more")

    @classmethod
    def of(cls, options: ScoreOptions | None = None, **changes) -> ScoreOptions:
        """`options` (default: the defaults) with `changes`; an unknown option is a TypeError."""
        return replace(options or cls(), **changes)

    def resolve(self) -> ResolvedModel:
        """The model these options name, with the --max-side override applied."""
        return resolve_model(self.model, self.weights, self.max_side)
