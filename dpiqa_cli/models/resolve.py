"""What `--model` / `--weights` name, decided once: a registry entry, a checkpoint or an .onnx graph.

`resolve_model` reads configs only (no torch, no network built), so the CLI, the Ray driver, `bench` and
the Python API all learn a model's identity, view, calibration and score scale the same way.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dpiqa_cli.data.views import View, view_from_config
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint_config import FORMAT, ONNX_FORMAT, is_mos_scale, read_config, read_json_config
from dpiqa_cli.models.registry import ModelSpec, check_compatible, checkpoint_spec, get_spec

CHECKPOINT_SUFFIXES = {".safetensors", ".json"}
GRAPH_DEFAULT_SIZE = 512  # a foreign graph with a dynamic input size: the authors' demo graph's 512 px


@dataclass(frozen=True)
class ResolvedModel:
    """A model as every scoring path needs it; `checkpoint` / `graph` say which file holds it."""

    name: str  # how runners and messages name it (as the user gave it)
    spec: ModelSpec | None  # the architecture's registry entry; None for an .onnx graph
    config: dict  # the checkpoint's (or graph's) config; a random `tiny-*` entry's made-up one
    view: View
    checkpoint: Path | None = None  # the .safetensors file
    graph: Path | None = None  # the .onnx file
    missing: str | None = None  # why there are no weights to load (a weightless registry entry)
    loaded: Any = field(default=None, compare=False)  # an already loaded LoadedModel (benchmarks reuse one)

    @property
    def kind(self) -> str:
        return self.spec.kind if self.spec is not None else "student"

    @property
    def calibration(self) -> dict | None:
        return self.config.get("calibration")

    @property
    def mos_scale(self) -> dict | None:
        return self.config.get("mos_scale")

    @property
    def lower_better(self) -> bool:
        """Never: scores are normalised so that higher is better, a DMOS dataset's included (its scale's
        `lower_better` flips only the mos column)."""
        return False

    @property
    def score_range(self) -> tuple[float, float]:
        """(0, 1) for a calibrated model (a logistic) or one trained on a normalised scale; a model with
        neither (random weights, a foreign graph) has no known range."""
        if self.calibration or isinstance(self.mos_scale, dict):
            return (0.0, 1.0)
        return (-math.inf, math.inf)

    @property
    def has_mos(self) -> bool:
        return is_mos_scale(self.mos_scale)

    @property
    def identity(self) -> dict:
        """What a resumed run must match: the same model, weights, crops and calibration."""
        model = str(self.graph.resolve()) if self.graph is not None else self.name
        return {"model": model, "sha256": self.config.get("sha256"), "input_size": self.view.size,
                "view": self.view.describe(), "calibration": self.calibration}

    def require_weights(self) -> None:
        if self.missing:
            raise DpiqaError(self.missing)

    def with_max_side(self, max_side: int | None) -> ResolvedModel:
        """`--max-side`: another finest working scale for the native and multiscale views."""
        if max_side is None:
            return self
        if self.view.name not in ("native", "multiscale"):
            raise DpiqaError(f"--max-side applies to the native and multiscale views only; {self.name} uses the "
                             f"{self.view.name} view")
        return replace(self, view=replace(self.view, max_side=max_side))  # View checks the limit


def _is_path(model) -> bool:
    return isinstance(model, (str, os.PathLike))


def resolve_model(model=None, weights=None, max_side: int | None = None) -> ResolvedModel:
    """A registry name, checkpoint path (.safetensors or its .json), .onnx graph or loaded model, and
    optionally `weights` (a checkpoint whose config names its architecture; a `model` beside it must
    agree). No name and no weights: the bundled default scorer."""
    if model is not None and not _is_path(model):  # a LoadedModel
        resolved = ResolvedModel(model.spec.name, model.spec, model.config, model.view, loaded=model)
        return resolved.with_max_side(max_side)
    if model is not None and Path(model).suffix.lower() == ".onnx":
        if weights is not None:
            raise DpiqaError("--weights cannot be used with an .onnx model (the weights are inside it)")
        return _graph(Path(model)).with_max_side(max_side)
    name = str(model or "student") if weights is None else (f"{model}:{weights}" if model else str(weights))
    if weights is None and model is not None and Path(model).suffix in CHECKPOINT_SUFFIXES:
        model, weights = None, model
    if weights is not None:
        path, config = read_config(weights)
        if model is not None:
            check_compatible(str(model), weights, config)
        resolved = ResolvedModel(name, checkpoint_spec(config), config, _view(config, checkpoint_spec(config)),
                                 checkpoint=path)
        return resolved.with_max_side(max_side)
    spec = get_spec(str(model or "student"))
    if spec.default_weights is not None:
        if not spec.default_weights.is_file():
            raise DpiqaError(f"bundled checkpoint missing: {spec.default_weights} (reinstall dpiqa, set "
                             "$DPIQA_WEIGHTS_DIR, or pass --weights)")
        path, config = read_config(spec.default_weights)
        return ResolvedModel(name, checkpoint_spec(config), config, _view(config, spec),
                             checkpoint=path).with_max_side(max_side)
    if spec.name.startswith("tiny-"):
        config = random_config(spec)
        return ResolvedModel(name, spec, config, _view(config, spec)).with_max_side(max_side)
    missing = f"no weights for {spec.name!r}: {spec.weights_hint}; then pass --weights CKPT"
    return ResolvedModel(name, spec, {}, View("whole", spec.input_size), missing=missing).with_max_side(max_side)


def random_config(spec: ModelSpec) -> dict:
    """The config of a `tiny-*` entry's seeded random weights (for tests): nothing trained, no scale."""
    return {"format": FORMAT, "model": spec.name, "kind": spec.kind, "arch": dict(spec.arch),
            "input_size": spec.input_size, "feat_size": spec.feat_size, "mos_scale": None, "dataset": None,
            "random_weights": True}


def _view(config: dict, spec: ModelSpec) -> View:
    return view_from_config(config, int(config.get("input_size") or spec.input_size))


def _graph(path: Path) -> ResolvedModel:
    if not path.is_file():
        raise DpiqaError(f"ONNX model not found: {path}")
    config = read_json_config(path.with_suffix(".json"), ONNX_FORMAT, required=False)  # foreign graphs: none
    size = int(config.get("input_size") or _graph_size(path))
    return ResolvedModel(str(path), None, config, view_from_config(config, size), graph=path)


def _graph_size(path: Path) -> int:
    """A foreign graph's input size: its fixed height or width, else GRAPH_DEFAULT_SIZE."""
    try:
        import onnxruntime as ort

        shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    except Exception:  # the runner says what is wrong with the graph
        return GRAPH_DEFAULT_SIZE
    fixed = [d for d in list(shape)[2:4] if isinstance(d, int)]
    return fixed[0] if fixed else GRAPH_DEFAULT_SIZE
