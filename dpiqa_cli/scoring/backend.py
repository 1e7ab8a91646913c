"""The runner of a resolved model: torch, ONNX Runtime or OpenVINO (`scoring.graph_cache.pick_runtime`),
with `dpiqa score`'s batch policy. torch is imported only for the torch runner."""
from __future__ import annotations

import sys

from dpiqa_cli.device import device_type, resolve_precision, usable_cpus
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.extras import require
from dpiqa_cli.models.resolve import ResolvedModel
from dpiqa_cli.scoring.graph_cache import cached_graph, pick_runtime
from dpiqa_cli.scoring.onnx_graph import OnnxRunner
from dpiqa_cli.scoring.openvino_runner import OpenVinoRunner
from dpiqa_cli.scoring.options import ScoreOptions
from dpiqa_cli.scoring.runner import Runner


def make_runner(resolved: ResolvedModel, device="cpu", precision: str = "fp32", compile: bool = False,
                runtime: str = "auto", workers: int = 0, quiet: bool = False, threads: int | None = None) -> Runner:
    """The runner of `resolved` on `device` (a torch.device or its name). OpenVINO and ONNX Runtime take
    `threads` cores, by default those the `workers` decode processes leave free."""
    if resolved.graph is not None:
        return OnnxRunner(resolved.graph, device, view=resolved.view)
    if resolved.loaded is not None:
        from dpiqa_cli.scoring.torch_runner import TorchRunner

        return TorchRunner(resolved.loaded, device, precision, compile, view=resolved.view)
    picked = pick_runtime(runtime, device, precision, compile, resolved.checkpoint)
    if picked in ("onnx", "openvino"):
        threads = threads or max(1, usable_cpus() - workers)
        graph, export_s = cached_graph(resolved.checkpoint, quiet)
        runner = None
        if picked == "openvino":
            try:
                runner = OpenVinoRunner(graph, threads=threads, name=resolved.name, view=resolved.view)
            except DpiqaError as exc:  # auto falls back to ONNX Runtime, which runs the same graph
                if runtime != "auto":
                    raise DpiqaError(f"{exc}; try --runtime onnx") from None
                print(f"note: {exc}; scoring with ONNX Runtime instead", file=sys.stderr)
        runner = runner or OnnxRunner(graph, device, threads=threads, name=resolved.name, view=resolved.view)
        runner.export_s = export_s
        return runner
    require("train" if resolved.kind == "teacher" else "torch", _why_torch(resolved.name, runtime, device,
                                                                           precision, compile))
    from dpiqa_cli.models.checkpoint import load_resolved
    from dpiqa_cli.scoring.torch_runner import TorchRunner

    return TorchRunner(load_resolved(resolved, "cpu"), device, precision, compile, name=resolved.name,
                       view=resolved.view)


def _why_torch(name: str, runtime: str, device, precision: str, compile: bool) -> str:
    """What made this run take the torch runner, for the missing-extra error."""
    if (runtime or "auto").lower() == "torch":
        return "--runtime torch"
    if compile:
        return "--compile"
    if precision != "fp32":
        return f"--precision {precision}"
    if device_type(device) != "cpu":
        return f"scoring on {device}"
    return f"scoring {name} (no checkpoint for the CPU runtime: it runs on torch)"


def prepare_runner(resolved: ResolvedModel, options: ScoreOptions, device, workers: int = 0,
                   quiet: bool = True) -> tuple[Runner, int]:
    """make_runner with the run's options on `device`, plus `dpiqa score`'s batch policy: (runner, images
    per batch). Every forward pass gets the same number of crops (`runner.chunk`), so a score depends
    neither on its batch mates nor on which process (a DataLoader loop, a Ray actor) scores it."""
    runner = make_runner(resolved, device, resolve_precision(options.precision, device), options.compile,
                         options.runtime, workers, quiet, options.threads)
    batch_size = options.batch_size or runner.default_batch
    runner.set_batch(batch_size)
    return runner, batch_size
