"""`dpiqa score`: paths -> decode (DataLoader workers) -> batches of crops -> runner -> ranked file.

`score_paths` is the Python API; `score_command` adds discovery, the summary line, the --mos report and the
exit code for the CLI (`scoring.ray_job` runs it with its own scorer: the same decode, runner and writer on a Ray
cluster). Work is never lost: rows go to a sidecar as batches finish (`scoring.writer`), and the final file
replaces nothing until it is complete.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

from dpiqa_cli.data.discover import discover, unique_paths
from dpiqa_cli.data.images import DEFAULT_MAX_PIXELS
from dpiqa_cli.device import default_workers, device_name, device_type, resolve_precision, usable_cpus
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.extras import require
from dpiqa_cli.models.checkpoint_config import read_config
from dpiqa_cli.models.registry import checkpoint_spec, get_spec
from dpiqa_cli.progress import Progress
from dpiqa_cli.scoring.loader import make_loader
from dpiqa_cli.scoring.graph_cache import cached_graph, checkpoint_file, pick_runtime
from dpiqa_cli.scoring.onnx_graph import OnnxRunner
from dpiqa_cli.scoring.openvino_runner import OpenVinoRunner
from dpiqa_cli.scoring.runner import Runner
from dpiqa_cli.scoring.writer import ResultWriter, errors_path, for_output, relative_inputs, shown_path, write_csv

RESULT_COLS = ["rank", "path", "score", "width", "height"]
SMALL_JOB = 4  # images up to which decoding stays in-process by default
NOTHING_SCORED = 4  # apart from 2 (a usage mistake): the arguments were fine, every input failed


def make_runner(model, weights=None, device="cpu", precision: str = "fp32",
                compile: bool = False, runtime: str = "auto", workers: int = 0, quiet: bool = False,
                threads: int | None = None, max_side: int | None = None) -> Runner:
    """`_runner`, with `max_side` (`dpiqa score --max-side`) the native view's working-scale limit replaced."""
    runner = _runner(model, weights, device, precision, compile, runtime, workers, quiet, threads)
    if max_side is not None:
        runner.limit(max_side)
    return runner


def _runner(model, weights, device, precision: str, compile: bool, runtime: str, workers: int, quiet: bool,
            threads: int | None) -> Runner:
    """A registry name, checkpoint, .onnx file or an already loaded `LoadedModel` -> Runner.

    `device` is a torch.device or its name. `runtime` (auto|torch|onnx|openvino, see `scoring.graph_cache`)
    picks what runs a checkpoint; OpenVINO and ONNX Runtime take `threads` cores, by default those the `workers`
    decode processes leave free. torch is imported only for the torch runner."""
    if isinstance(model, (str, os.PathLike)) and Path(model).suffix.lower() == ".onnx":
        if weights is not None:
            raise DpiqaError("--weights cannot be used with an .onnx model (the weights are inside it)")
        return OnnxRunner(Path(model), device)
    if model is not None and not isinstance(model, (str, os.PathLike)):  # a LoadedModel: benchmarks reuse one
        from dpiqa_cli.scoring.torch_runner import TorchRunner

        return TorchRunner(model, device, precision, compile)
    name = str(model or "student") if weights is None else (f"{model}:{weights}" if model else str(weights))
    ckpt = checkpoint_file(model, weights)
    picked = pick_runtime(runtime, device, precision, compile, ckpt)
    if picked in ("onnx", "openvino"):
        threads = threads or max(1, usable_cpus() - workers)
        graph, export_s = cached_graph(ckpt, quiet)
        runner = None
        if picked == "openvino":
            try:
                runner = OpenVinoRunner(graph, threads=threads, name=name)
            except DpiqaError as exc:  # auto falls back to ONNX Runtime, which runs the same graph
                if runtime != "auto":
                    raise DpiqaError(f"{exc}; try --runtime onnx") from None
                print(f"note: {exc}; scoring with ONNX Runtime instead", file=sys.stderr)
        runner = runner or OnnxRunner(graph, device, threads=threads, name=name)
        runner.export_s = export_s
        return runner
    require(_torch_extra(model, weights), _why_torch(name, runtime, device, precision, compile))
    from dpiqa_cli.models.checkpoint import load_model
    from dpiqa_cli.scoring.torch_runner import TorchRunner

    loaded = load_model(None if model is None else str(model), weights, device="cpu")
    return TorchRunner(loaded, device, precision, compile, name=name)


def _torch_extra(model, weights) -> str:
    """The extra a torch runner of this model needs: a teacher's also imports diffusers and transformers."""
    try:
        if weights is not None or Path(str(model)).suffix in {".safetensors", ".json"}:
            kind = checkpoint_spec(read_config(weights if weights is not None else model)[1]).kind
        else:
            kind = get_spec(str(model or "student")).kind
    except DpiqaError:  # a bad name or file: load_model says what is wrong once the extra is there
        kind = "student"
    return "train" if kind == "teacher" else "torch"


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


def prepare_runner(model, weights, device, precision: str, compile: bool = False,
                   batch_size: int | None = None, **runner_opts) -> tuple[Runner, int]:
    """make_runner plus `dpiqa score`'s batch policy: (runner, images per batch). Every forward pass gets the
    same number of crops (`runner.chunk`), so a score depends neither on its batch mates nor on which
    process (a DataLoader loop, a Ray actor) scores it."""
    if batch_size is not None and batch_size < 1:
        raise DpiqaError("--batch-size must be at least 1")
    runner = make_runner(model, weights, device, precision, compile, **runner_opts)
    batch_size = batch_size or runner.default_batch
    runner.set_batch(batch_size)
    return runner, batch_size


def score_paths(paths, model=None, weights=None, device: str = "auto", precision: str = "auto",
                batch_size: int | None = None, workers: int | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS, compile: bool = False, out: str | Path | None = None,
                resume: bool = False, progress: bool = True, flush_every: int = 4,
                runtime: str = "auto", max_side: int | None = None) -> pd.DataFrame:
    """Score image paths; returns the ranked DataFrame (rank, path, score, width, height[, mos]), with
    absolute paths and every bit of the scores (the files written hold 6 significant digits, and paths
    given as relative ones relative to the output's folder: `writer.for_output`).

    `model` is a registry name (default: the bundled default scorer), a checkpoint, an .onnx file or a
    LoadedModel; `weights` a checkpoint whose own config names its architecture. `runtime` auto|torch|onnx:
    auto runs a student checkpoint on the CPU at fp32 with OpenVINO, else ONNX Runtime (`scoring.graph_cache`);
    torch at fp32 is the reference path. `max_side` replaces a native-view model's working-scale limit.
    `df.attrs['errors']` is a dict {path: reason} of the files that failed and `df.attrs['summary']`
    a dict (scored, failed, resumed, new, images_per_s = new / loop_s, loop_s, export_s, wall_s, ...).
    With `out`, results also go to that file (.csv/.jsonl/.parquet), failures to `<stem>.errors.csv`, and a
    sidecar makes the run resumable.
    """
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    writer = ResultWriter(out, resume, flush_every)
    if workers is not None and workers < 0:
        raise DpiqaError("--workers must be 0 or more")
    dev = device_name(device)
    relative = relative_inputs(paths)
    paths = unique_paths(paths)
    if workers is None:  # a worker process costs more to start than a few decodes take
        workers = 0 if len(paths) <= SMALL_JOB else default_workers(dev)
    runner, batch_size = prepare_runner(model, weights, dev, resolve_precision(precision, dev), compile, batch_size,
                                        runtime=runtime, workers=workers, quiet=not progress, max_side=max_side)
    todo = writer.open(dict(runner.meta, max_pixels=max_pixels), paths)

    bar = Progress(len(todo), "processed", unit="file", enabled=progress)  # failed files count too
    delay = float(os.environ.get("DPIQA_TEST_BATCH_DELAY", "0"))  # tests: makes a mid-run kill deterministic
    t_loop = time.perf_counter()
    try:
        for batch in make_loader(todo, runner.view, batch_size, workers, dev, max_pixels):
            rows = [(todo[i], None, 0, 0, reason) for i, reason in batch.errors]
            if batch.x is not None:
                scores = runner.score_images(batch.x, batch.counts, batch.sizes)
                rows += [(todo[i], float(s), w, h, None) for i, s, (w, h) in zip(batch.index, scores, batch.sizes)]
            writer.add(rows)
            bar.update(len(rows), failed=len(writer.failed))
            if delay:
                time.sleep(delay)
    except BaseException as exc:  # Ctrl-C, out of memory, a model error: keep what was scored
        bar.close()
        writer.stopped(exc, out)
        torch = sys.modules.get("torch")  # imported only if a torch runner ran
        if torch is not None and isinstance(exc, torch.OutOfMemoryError):
            raise DpiqaError(f"out of {device_type(dev).upper()} memory at --batch-size {batch_size}; "
                             "try a smaller one") from None
        raise
    bar.close()
    loop_s = time.perf_counter() - t_loop
    n_new = len(writer.scored) - writer.resumed
    df, failed = writer.finish(paths, runner.mos_scale, relative)
    df.attrs["errors"] = failed  # a dict: pandas compares attrs on merge/concat
    df.attrs["summary"] = dict(scored=len(df), failed=len(failed), resumed=len(df) - n_new, new=n_new,
                               images_per_s=n_new / loop_s if loop_s > 0 else 0.0, loop_s=loop_s,
                               export_s=runner.export_s,
                               wall_s=time.perf_counter() - t0, device=str(dev), precision=runner.precision,
                               runtime=runner.runtime,
                               batch_size=batch_size, workers=workers)
    return df


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


def score_command(inputs, *, from_list=None, recursive=True, out=None, mos=None, report_dir=None,
                  quiet=False, scorer=None, **kw) -> int:
    """The CLI's one call: discover, score, write, report; returns the exit code (0 all scored, 1 some failed,
    4 none scored). `scorer` replaces `score_paths` (the Ray path passes its own)."""
    out = Path(out) if out is not None else None
    if mos is not None and not Path(mos).is_file():
        raise DpiqaError(f"--mos file not found: {mos}")
    if not inputs and from_list is None:
        raise DpiqaError("nothing to score: give files, folders, globs or --from-list FILE")
    paths = discover(inputs, recursive=recursive, from_list=from_list)
    if not paths:
        raise DpiqaError("no images found (extensions: jpg jpeg png webp bmp tif tiff)")
    df = (scorer or score_paths)(paths, out=out, progress=not quiet, **kw)
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
