"""The CPU scoring runtime: a student checkpoint's ONNX graph, run by OpenVINO or ONNX Runtime.

`--runtime auto` (the default) picks OpenVINO where it is installed, else ONNX Runtime, for a student
checkpoint on the CPU at fp32 (measured fastest with the same ranking: BENCHMARKS.md, "CPU runtime");
everything else, and `--runtime torch`, runs the torch model.

The graph comes from one of two places. A checkpoint may ship its own: `x.graph.onnx` and `x.graph.json`
beside `x.safetensors`, as the bundled model does (`python -m tools.bundle_graph` writes them), so that the
first score needs neither an export nor torch, and every install scores it on the same graph. It is used
when its .json names this checkpoint's sha256, view, MOS scale and dataset and its own sha256 holds.
Otherwise the checkpoint is exported once (with torch) into the user's cache folder, named by a key over
everything that decides its contents: the checkpoint's sha256, its view, and the dpiqa, torch and
onnxruntime versions. A cached graph is trusted only when its record matches that key and its own sha256;
anything else (a torn file, an edited one, another version's) is rebuilt, with a one-line notice.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

from dpiqa_cli.data.views import view_from_config
from dpiqa_cli.device import device_type
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.extras import require
from dpiqa_cli.models.checkpoint_config import read_config, read_json_config, sha256_file
from dpiqa_cli.models.registry import list_specs
from dpiqa_cli.scoring.onnx_graph import ONNX_FORMAT, export_onnx
from dpiqa_cli.scoring.openvino_runner import openvino_version as _openvino_version
from dpiqa_cli.version import __version__

RUNTIMES = ("auto", "torch", "onnx", "openvino")
CACHE_FORMAT = "dpiqa-graph-cache/1"
SHIPPED_SUFFIX = ".graph.onnx"
# What a shipped graph's .json must say for it to stand for a checkpoint (values as `_expected` has them).
SHIPPED_KEYS = {"source_sha256": "checkpoint_sha256", "input_size": "input_size", "view": "view",
                "mos_scale": "mos_scale", "dataset": "dataset"}


def cache_dir() -> Path:
    """$DPIQA_CACHE_DIR, else the platform's user cache folder (platformdirs: ~/.cache/dpiqa, or under
    $XDG_CACHE_HOME, on Linux; ~/Library/Caches/dpiqa on macOS; %LOCALAPPDATA%\\dpiqa\\Cache on Windows);
    graphs go in its `onnx/`."""
    base = os.environ.get("DPIQA_CACHE_DIR")
    if base:
        return Path(base) / "onnx"
    from platformdirs import user_cache_dir  # only when no folder is set: start-up stays lean

    return Path(user_cache_dir("dpiqa", appauthor=False)) / "onnx"


def _ort_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def _torch_version() -> str | None:
    """The installed torch's version, read from its metadata: a cached graph is used without importing torch."""
    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def pick_runtime(runtime: str, device, precision: str, compile: bool, ckpt: Path | None) -> str:
    """`torch`, `onnx` or `openvino` for this run. `auto` takes the fastest runtime measured to give the fp32
    scores (OpenVINO, else ONNX Runtime) for a student checkpoint on the CPU at fp32, torch for all else."""
    runtime = (runtime or "auto").lower()
    if runtime not in RUNTIMES:
        raise DpiqaError(f"--runtime must be {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime in ("onnx", "openvino"):
        if ckpt is None:
            raise DpiqaError(f"--runtime {runtime} needs a student checkpoint (a registry entry with weights, "
                             "or --weights)")
        if precision != "fp32" or compile:
            raise DpiqaError(f"--runtime {runtime} runs fp32 without --compile; use --runtime torch for those")
        if device_type(device) != "cpu" and runtime == "openvino":
            raise DpiqaError("--runtime openvino runs on the CPU; use --device cpu, or --runtime torch on a GPU")
        if _ort_version() is None:  # the graph is exported and checked with onnxruntime either way
            raise DpiqaError(f"--runtime {runtime} needs onnxruntime (`pip install onnxruntime`)")
        if runtime == "openvino" and _openvino_version() is None:
            raise DpiqaError("--runtime openvino needs OpenVINO (`pip install openvino`)")
        return runtime
    if runtime == "auto" and ckpt is not None and device_type(device) == "cpu" and precision == "fp32" and not compile \
            and _ort_version() is not None:
        return "openvino" if _openvino_version() is not None else "onnx"
    return "torch"


def _expected(ckpt: Path) -> dict:
    """What a graph for this checkpoint must have been built from."""
    _, config = read_config(ckpt)
    size = int(config.get("input_size") or 0)
    # the graph's .json carries the MOS scale and dataset too: the same weights with another scale are another graph
    return {"checkpoint_sha256": sha256_file(ckpt), "model": config.get("model"), "input_size": size,
            "view": view_from_config(config, size).to_config(), "mos_scale": config.get("mos_scale"),
            "dataset": config.get("dataset"), "calibration": config.get("calibration"), "dpiqa": __version__,
            "torch": _torch_version(),
            "onnxruntime": _ort_version()}


def _key(expected: dict) -> str:
    return hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:32]


class GraphCheck(NamedTuple):
    """What stands where a graph should be: nothing (`found` False), a usable graph, or one that cannot be
    used and why (`problem`)."""

    found: bool
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.found and self.problem is None


def _check_cached(graph: Path, record: Path, expected: dict) -> GraphCheck:
    """Whether a cached graph can be used: its record names what it was built from and its files' sha256."""
    if not graph.is_file() and not record.is_file():
        return GraphCheck(False)
    try:
        rec = json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return GraphCheck(True, "its record is missing or unreadable")
    if not isinstance(rec, dict) or rec.get("format") != CACHE_FORMAT or rec.get("built_from") != expected:
        return GraphCheck(True, "it was built from another checkpoint or version")
    if not graph.is_file():
        return GraphCheck(True, "the graph file is missing")
    if sha256_file(graph) != rec.get("sha256"):
        return GraphCheck(True, "the graph file is corrupt (sha256 differs from its record)")
    config = graph.with_suffix(".json")  # input size, view and MOS scale: as much a part of it as the graph
    if not config.is_file() or sha256_file(config) != rec.get("config_sha256"):
        return GraphCheck(True, "its config is missing or was modified")
    return GraphCheck(True)


def shipped_graph(ckpt: Path) -> Path:
    """Where a checkpoint's own graph ships: `x.graph.onnx` (its config `x.graph.json`) beside `x.safetensors`."""
    return ckpt.with_name(ckpt.stem + SHIPPED_SUFFIX)


def _check_shipped(graph: Path, expected: dict) -> GraphCheck:
    """Whether the graph shipped beside a checkpoint stands for it: its .json names the checkpoint's facts."""
    config_file = graph.with_suffix(".json")
    if not graph.is_file() and not config_file.is_file():
        return GraphCheck(False)
    config = read_json_config(config_file, ONNX_FORMAT, required=False)
    if not config:
        return GraphCheck(True, f"{config_file.name} is missing or unreadable")
    differ = [key for key, ours in SHIPPED_KEYS.items() if config.get(key) != expected[ours]]
    if differ:
        return GraphCheck(True, f"it was exported from another checkpoint ({', '.join(differ)} differ)")
    if not graph.is_file():
        return GraphCheck(True, f"{graph.name} is missing")
    if sha256_file(graph) != config.get("sha256"):
        return GraphCheck(True, f"{graph.name} is corrupt (sha256 differs from its .json)")
    return GraphCheck(True)


def shipped_check(ckpt: Path) -> GraphCheck:
    """Whether a graph ships beside `ckpt` and can stand for it."""
    return _check_shipped(shipped_graph(ckpt), _expected(ckpt))


def _bundled(ckpt: Path) -> bool:
    return any(s.weights and s.default_weights.resolve() == ckpt.resolve() for s in list_specs())


def cached_graph(ckpt: Path, quiet: bool = False) -> tuple[Path, float]:
    """(the ONNX graph of `ckpt`: the one shipped beside it, else a trusted cached export, else one exported
    now; seconds spent exporting it now, 0.0 when none was)."""
    from dpiqa_cli.atomic import write_json

    expected = _expected(ckpt)
    shipped = shipped_graph(ckpt)
    ship = _check_shipped(shipped, expected)
    if ship.usable:
        return shipped, 0.0
    unshipped = ship.problem or ""
    if not ship.found and _bundled(ckpt):  # the bundled model always ships its graph
        unshipped = f"{shipped.name} is missing"
    folder = cache_dir()
    graph = folder / f"{_key(expected)}.onnx"
    record = graph.with_suffix(".record.json")
    cached = _check_cached(graph, record, expected)
    if cached.usable:
        return graph, 0.0
    problem = cached.problem
    why = f" (its shipped graph cannot be used: {unshipped})" if unshipped else ""
    require("torch", f"scoring {ckpt.name} on the CPU{why} exports its ONNX graph once, which")
    t0 = time.perf_counter()
    if problem:
        print(f"note: rebuilding the cached ONNX graph {graph}: {problem}", file=sys.stderr)
    elif unshipped:
        print(f"note: the ONNX graph shipped with {ckpt.name} cannot be used ({unshipped}); exporting one "
              f"(once; cached in {folder})", file=sys.stderr)
    elif not quiet:
        print(f"note: exporting {ckpt.name} to ONNX for the CPU runtime (once; cached in {folder})", file=sys.stderr)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        record.unlink(missing_ok=True)  # a graph without a valid record is never trusted, even if we die here
        config = export_onnx(weights=ckpt, model=None, out=graph)
    except OSError as exc:
        raise DpiqaError(f"cannot write the ONNX cache in {folder}: {exc.strerror or exc}; set $DPIQA_CACHE_DIR "
                         "or pass --runtime torch") from None
    write_json(record, {"format": CACHE_FORMAT, "built_from": expected, "sha256": config["sha256"],
                        "config_sha256": sha256_file(graph.with_suffix(".json")),
                        "check_max_abs_diff": config.get("check_max_abs_diff")})
    return graph, time.perf_counter() - t0
