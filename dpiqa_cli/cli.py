"""The `dpiqa` command line. Thin by design: parse options, call one function per job.

Each command imports its job's module when it runs: torch, timm and diffusers take seconds to import,
and `dpiqa --help`, `--version` or a usage mistake should not wait for them.

Exit codes: the table in docs/scoring.md (0 done, 1 some files failed, 2 a usage mistake or a problem the
user can fix, 3 an internal error, 4 nothing scored, 130 interrupted).
"""
from __future__ import annotations

import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.extras import require
from dpiqa_cli.train.options import cli_parameters
from dpiqa_cli.version import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # the help is rich markup under every Typer the bounds allow (0.20 left it plain)
    help="Blind image quality assessment with DP-IQA (diffusion teacher, EfficientNet student).",
)


class State:
    device: str = "auto"
    verbose: bool = False
    quiet: bool = False


state = State()

# Options shared by several commands.
DeviceOpt = Annotated[
    Optional[str],
    typer.Option("--device", help="auto|cpu|cuda[:N]|mps (default: the global --device, else auto)."),
]
ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Registry name (see `dpiqa models`; default: student, the bundled default "
                                       "scorer) or a .onnx file."),
]
WeightsOpt = Annotated[
    Optional[Path], typer.Option("--weights", "-w", help="Checkpoint (.safetensors + .json) to load; its config names "
                                                         "the architecture, so --model can be left out.")
]


def _device(value: Optional[str]) -> str:
    return value or state.device


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dpiqa {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    device: Annotated[str, typer.Option("--device", help="Default device for every command: auto|cpu|cuda[:N]|mps.")] = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More logging; tracebacks on internal errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the final summary.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    state.device, state.verbose, state.quiet = device, verbose, quiet
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# ---- models / import-weights ---------------------------------------------------------------------


@app.command()
def models() -> None:
    """List the model registry: what each name runs, its parameters, view and where its weights come from."""
    from dpiqa_cli.models.registry import print_models

    print_models()


@app.command("import-weights")
def import_weights(
    src: Annotated[Path, typer.Argument(help="The authors' released PyTorch state dict (.pth/.pt).")],
    kind: Annotated[str, typer.Option("--kind", help="student|teacher")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors; a .json config goes beside it).")],
    model: Annotated[Optional[str], typer.Option("--model", help="Registry entry to map into (default: student-b7 or teacher).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset it was trained on (sets the MOS scale), e.g. koniq.")] = None,
    embeddings: Annotated[Optional[Path], typer.Option("--embeddings", help="Teacher only: the release's prompt embeddings (.pth); default: compute them with CLIP ViT-L/14.")] = None,
    prompts: Annotated[str, typer.Option("--prompts", help="Teacher only: prompt set the embeddings belong to (paper|release).")] = "release",
) -> None:
    """Convert the authors' released state dict into a dpiqa checkpoint (read with weights_only=True)."""
    require("train" if kind == "teacher" else "torch", f"dpiqa import-weights --kind {kind}")
    from dpiqa_cli.models.import_weights import import_authors_checkpoint

    path = import_authors_checkpoint(src, kind=kind, out=out, model_name=model, dataset=dataset,
                                     embeddings=embeddings, prompts=prompts, quiet=state.quiet)
    typer.echo(f"wrote {path} and {path.with_suffix('.json')}")


# ---- score / export --------------------------------------------------------------------------------


@app.command()
def score(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Image files, folders and glob patterns.")] = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Ranked results: .csv, .jsonl or .parquet (default: CSV on stdout, not resumable).")] = None,
    from_list: Annotated[Optional[str], typer.Option("--from-list", help="Text file with one path per line ('-' = stdin).")] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")] = True,
    device: DeviceOpt = None,
    precision: Annotated[str, typer.Option("--precision", help="auto|fp32|bf16|fp16 (auto: bf16 on CUDA, fp32 elsewhere).")] = "auto",
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Images per batch (default on CPU: 2 per OpenVINO stream, 2 for torch and ONNX Runtime; 64 on CUDA for the student).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-j", help="Decoding processes (default: half the cores on CPU, up to 8 on GPU; 0 = in-process).")] = None,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse images with more pixels than this (header check, before decoding); 0 = no limit.")] = 100_000_000,
    max_side: Annotated[Optional[int], typer.Option("--max-side", help="Native and multiscale views: bring larger photos to this long side before cutting their finest crops (default: the model's own limit, see `dpiqa models`); lower is faster on large photos and sees less of their fine detail.")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (falls back to eager if it fails).")] = False,
    runtime: Annotated[str, typer.Option("--runtime", help="auto|torch|onnx|openvino. auto: OpenVINO (else ONNX Runtime) for a student checkpoint on the CPU at fp32 (exported once, cached), torch otherwise; `--runtime torch --precision fp32` is the reference path.")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its <out>.partial.csv (with --ray: <out>.parts/).")] = False,
    flush_every: Annotated[int, typer.Option("--flush-every", help="fsync the sidecar every N batches.")] = 4,
    mos: Annotated[Optional[Path], typer.Option("--mos", help="CSV with a path/name column and a MOS column: also write a correlation report.")] = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report-dir", help="Where the --mos report goes (default: <out stem>.report/).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output; only errors and the summary.")] = False,
    gallery: Annotated[Optional[Path], typer.Option("--gallery", help="Then write an HTML contact sheet of the results (needs --out); see `dpiqa gallery`.")] = None,
    # `\\[`: the help is rich markup, where a bare [ray] would be taken for a style tag and vanish
    ray: Annotated[Optional[str], typer.Option("--ray", help="Score on a Ray cluster (needs `pip install \"dpiqa\\[ray]\"`): local (a Ray on this machine only), auto (the cluster `ray start` made here, or RAY_ADDRESS), HOST:PORT or ray://HOST:PORT; see docs/scaling.md.")] = None,
) -> None:
    """Score images and write them ranked best first (exit 0: all scored, 1: some failed, 4: none)."""
    _gallery_check(gallery, out)
    from dpiqa_cli.scoring.options import ScoreOptions

    options = ScoreOptions(model=model, weights=weights, device=_device(device), precision=precision, runtime=runtime,
                           compile=compile, batch_size=batch_size, workers=workers, max_pixels=max_pixels or None,
                           max_side=max_side, out=out, resume=resume, flush_every=flush_every,
                           progress=not (quiet or state.quiet))
    if ray is None:
        from dpiqa_cli.scoring.pipeline import score_command
        where = {}
    else:  # the optional extra: Ray is imported only for --ray, so the CLI starts as fast without it
        require("ray", "dpiqa score --ray")
        from dpiqa_cli.scoring.ray_job import score_command
        where = {"address": ray}
    rc = score_command(inputs or [], options, **where, from_list=from_list, recursive=recursive, mos=mos,
                       report_dir=report_dir)
    if gallery is not None and out.exists():
        _gallery_run(out, gallery, quiet=quiet or state.quiet, max_pixels=max_pixels or None)
    raise typer.Exit(rc)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write (a .json config goes beside it).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Registry name or checkpoint (default: student).")] = None,
    weights: WeightsOpt = None,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset.")] = 17,
) -> None:
    """Export a model to ONNX (dynamic batch; input `input`, outputs `score`, `feat`)."""
    require("torch", "dpiqa export")
    from dpiqa_cli.scoring.onnx_graph import export_onnx

    config = export_onnx(model, weights, out, opset)
    typer.echo(f"wrote {out} and {out.with_suffix('.json')} (onnxruntime vs torch max |diff| "
               f"{config.get('check_max_abs_diff', float('nan')):.2e})")


# ---- gallery -------------------------------------------------------------------------------------------


def _gallery_check(gallery: Optional[Path], out: Optional[Path]) -> None:
    """score --gallery: refuse a missing --out or a bad page path before anything is scored."""
    if gallery is None:
        return
    if out is None:
        raise DpiqaError("--gallery needs --out: the gallery is made from the results file")
    from dpiqa_cli.gallery import check_gallery_out

    check_gallery_out(gallery)


def _gallery_run(scores: Path, out: Path, quiet: bool, **kw) -> None:
    from dpiqa_cli.gallery import build_gallery, summary_line

    typer.echo(summary_line(build_gallery(scores, out, progress=not quiet, **kw)), err=True)


@app.command("gallery")
def gallery_cmd(
    scores: Annotated[Path, typer.Argument(help="A `dpiqa score` output: .csv, .jsonl or .parquet.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML page to write (default: the scores file with .html).")] = None,
    errors: Annotated[Optional[Path], typer.Option("--errors", help="Failed files (path,reason CSV); default: <stem>.errors.csv beside the scores, if there.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="auto (one file up to 16 MiB of thumbnails, else a folder beside it) | inline | folder.")] = "auto",
    thumb_size: Annotated[int, typer.Option("--thumb-size", help="Longest side of the thumbnails, px.")] = 256,
    workers: Annotated[Optional[int], typer.Option("--workers", "-j", help="Thumbnail processes (default: one per core, up to 8; 0 = in-process).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Page title (default: from the scores file name).")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Where the threshold starts (default: the 10th percentile of the scores).")] = None,
    page_size: Annotated[int, typer.Option("--page-size", help="Photos per page.")] = 200,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="As for score: refuse larger images (their card shows why); 0 = no limit.")] = 100_000_000,
) -> None:
    """A ranked contact sheet of scored photos: thumbnails, score histogram and threshold, failed files."""
    _gallery_run(scores, out if out is not None else scores.with_suffix(".html"), quiet=state.quiet,
                 errors=errors, mode=mode, thumb_size=thumb_size, workers=workers, title=title, threshold=threshold,
                 page_size=page_size, max_pixels=max_pixels or None)


# ---- synth -------------------------------------------------------------------------------------------


@app.command()
def synth(
    src_dir: Annotated[Path, typer.Argument(help="Folder of pristine photos (the files directly inside it).")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder: images/, refs/, synth.csv, synth.json, README.md.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random distortions (noise, motion angle).")] = 0,
    levels: Annotated[int, typer.Option("--levels", help="Levels per distortion type.")] = 5,
    types: Annotated[Optional[str], typer.Option("--types", help="Comma-separated distortion types (default: all).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Downscale so the shorter side is N px (default: keep).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Worker processes (default: min(4, CPUs); 0 = in-process).")] = None,
    label: Annotated[str, typer.Option("--label", help="image: each image's own MS-SSIM (default); tone: that, lowered by its colour and brightness shift; condition: the mean per type and level (KADID-style); mixed: half of image and condition.")] = "image",
    per_ref: Annotated[Optional[int], typer.Option("--per-ref", help="Types per reference: --always plus others drawn per reference (default: every type for every reference).")] = None,
    always: Annotated[Optional[str], typer.Option("--always", help="With --per-ref: comma-separated types every reference gets.")] = None,
    max_strength: Annotated[float, typer.Option("--max-strength", help="Strength of the last level: 1 = each type's fifth anchor (KADID-like); 1.5 continues past it for severe defects.")] = 1.0,
) -> None:
    """Make a synthetic-distortion dataset (generic CSV path,mos,ref,type,level) from pristine photos."""
    from dpiqa_cli.data.synth import synthesize

    df = synthesize(src_dir, out_dir, seed=seed, levels=levels, types=types, size=size, workers=workers,
                    progress=not state.quiet, label=label, per_ref=per_ref, always=always,
                    max_strength=max_strength)
    typer.echo(f"wrote {len(df)} images ({df['ref'].nunique()} references) and {out_dir / 'synth.csv'}")


# ---- train-teacher / distill: options generated from train.options.TrainOptions -------------------------


def _train_done(result: dict) -> None:
    if "median" in result:
        typer.echo(json.dumps(result["median"], indent=2))
        return
    test = result.get("test") or {}
    typer.echo(f"{result['run_dir']}: {result['step']} steps, best val SRCC {result['best_val_srcc']} "
               f"(step {result['best_step']}); test SRCC {test.get('srcc')}, PLCC {test.get('plcc')}")


def _train_command(kind: str, name: str, doc: str) -> None:
    def command(**values) -> None:
        require("train", f"dpiqa {name}")
        from dpiqa_cli.train.protocol import run_training

        _train_done(run_training(kind, values, quiet=state.quiet))

    params = cli_parameters(kind)
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    app.command(name)(command)


_train_command("teacher", "train-teacher", "Train the DP-IQA teacher (SD v1.5 U-Net, adapters, QFD, regressor; VAE frozen).")
_train_command("student", "distill", "Train a student from a teacher's feature maps (MSE + score loss), or on scores "
                                     "alone (--no-teacher).")


# ---- bench -------------------------------------------------------------------------------------------

_SPEED = "Speed (--speed)"


@app.command()
def bench(
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="koniq, clive, spaq, livefb, live, csiq, tid2013, kadid, or csv: a generic CSV of path and mos columns (docs/scoring.md).")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="The dataset's folder, as distributed.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="checkpoint (its own test images: the default for a checkpoint trained on this dataset) | seeds (80/20 per seed: the default otherwise) | official (KonIQ test set) | all (every image: cross-dataset).")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Seeds for --split seeds: a range 0-4 (the default) or a list 0,1,2.")] = None,
    allow_overlap: Annotated[bool, typer.Option("--allow-overlap", help="Bench test splits that share images with the checkpoint's training or validation images (refused otherwise); the report's first line says so.")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder: report.md, report.json, scatter.png, splits/.")] = Path("bench"),
    scores: Annotated[Optional[Path], typer.Option("--scores", help="Evaluate this existing `dpiqa score` output instead of scoring.")] = None,
    mos: Annotated[Optional[Path], typer.Option("--mos", help="With --scores: a CSV of path/name + MOS (instead of --dataset).")] = None,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Skip listed images that are absent (warn with a count).")] = False,
    mos_min: Annotated[Optional[float], typer.Option("--mos-min", help="csv dataset: bottom of the MOS scale (default: data min).")] = None,
    mos_max: Annotated[Optional[float], typer.Option("--mos-max", help="csv dataset: top of the MOS scale (default: data max).")] = None,
    lower_better: Annotated[bool, typer.Option("--lower-better", help="csv dataset: the score is a DMOS (lower = better).")] = False,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Images per batch.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-j", help="Decoding processes (0 = in-process).")] = None,
    device: DeviceOpt = None,
    speed: Annotated[bool, typer.Option("--speed", help="Speed benchmark instead: images/s, latency, peak memory.", rich_help_panel=_SPEED)] = False,
    speed_models: Annotated[Optional[str], typer.Option("--speed-models", help="Comma-separated models (default: --model).", rich_help_panel=_SPEED)] = None,
    speed_batch_sizes: Annotated[str, typer.Option("--speed-batch-sizes", help="Comma-separated batch sizes.", rich_help_panel=_SPEED)] = "1,8",
    precisions: Annotated[str, typer.Option("--precisions", help="Comma-separated auto|fp32|bf16|fp16.", rich_help_panel=_SPEED)] = "auto",
    jpeg_dir: Annotated[Optional[Path], typer.Option("--jpeg-dir", help="Folder of JPEGs (default: 1024x768 ones are generated).", rich_help_panel=_SPEED)] = None,
    images: Annotated[int, typer.Option("--images", help="Images for the end-to-end run.", rich_help_panel=_SPEED)] = 64,
    naive_images: Annotated[int, typer.Option("--naive-images", help="Images for the naive one-at-a-time loop (0: skip it).", rich_help_panel=_SPEED)] = 16,
    rounds: Annotated[int, typer.Option("--rounds", help="Interleaved rounds; best and median are reported.", rich_help_panel=_SPEED)] = 3,
    min_time: Annotated[float, typer.Option("--min-time", help="Seconds per model-only measurement.", rich_help_panel=_SPEED)] = 3.0,
    draft_images: Annotated[int, typer.Option("--draft-images", help="4032x3024 JPEGs for the draft-vs-full decode check (0: skip).", rich_help_panel=_SPEED)] = 6,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model, as `dpiqa score --compile`.", rich_help_panel=_SPEED)] = False,
    runtime: Annotated[str, typer.Option("--runtime", help="auto|torch|onnx|openvino, as `dpiqa score --runtime` (auto: what score runs by default).", rich_help_panel=_SPEED)] = "auto",
) -> None:
    """Correlation report on a dataset's test splits (or --speed: a speed table and JSON)."""
    if speed:
        require("torch", "dpiqa bench --speed")
        from dpiqa_cli.bench.speed import speed_command

        speed_command(speed_models or model or "student", speed_batch_sizes, precisions, device=_device(device),
                      out_dir=out, jpeg_dir=jpeg_dir, n_images=images, naive_images=naive_images, workers=workers,
                      min_time_s=min_time, draft_images=draft_images, rounds=rounds, compile=compile, runtime=runtime)
        return
    from dpiqa_cli.bench.dataset import bench_command

    bench_command(model=model, weights=weights, dataset=dataset, root=root, split=split, seeds=seeds, out_dir=out,
                  device=_device(device), batch_size=batch_size, workers=workers, allow_missing=allow_missing,
                  scores=scores, mos=mos, progress=not state.quiet, allow_overlap=allow_overlap,
                  dataset_opts={"mos_min": mos_min, "mos_max": mos_max, "lower_better": lower_better or None})


# ---- entry point -------------------------------------------------------------------------------------


def _usage_line(exc) -> str:
    """One line: click's message (its 'Did you mean' suggestion included) and where to read more."""
    msg = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {msg}{where}"


def main(argv: Optional[list[str]] = None) -> None:
    """Run the app: one `error:` line on stderr for usage mistakes and user errors, and the exit codes above."""
    command = typer.main.get_command(app)
    # click < 8.2 has no NoArgsIsHelpError: it prints the help and exits 0 itself
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", ())
    try:
        rc = command.main(args=argv, prog_name="dpiqa", standalone_mode=False)
    except DpiqaError as exc:
        if state.verbose:
            logging.exception("details")
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except no_args as exc:  # a bare `dpiqa` (or a group without its command): the help
        print(exc.ctx.get_help())
        sys.exit(0)
    except click.UsageError as exc:
        print(_usage_line(exc), file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # an internal error: one line unless --verbose
        if state.verbose:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (re-run with --verbose for details)", file=sys.stderr)
        sys.exit(3)
    sys.exit(rc if isinstance(rc, int) else 0)
