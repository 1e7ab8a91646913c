"""The `dpiqa` command line. Thin by design: parse options, call one function per job.

Every job lives in a module named for it; this file only maps options onto calls.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from dpiqa_cli import __version__
from dpiqa_cli.errors import DpiqaError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registry name (see `dpiqa models`) or a .onnx file.")]
WeightsOpt = Annotated[
    Optional[Path], typer.Option("--weights", "-w", help="Checkpoint (.safetensors + .json) to load instead of the default.")
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


# ---- models / import-weights (registry, checkpoints) -------------------------------------


@app.command()
def models() -> None:
    """List the model registry: parameters (counted on `meta`), input size, weights status."""
    from dpiqa_cli.registry import print_models_table

    print_models_table()


@app.command("import-weights")
def import_weights(
    src: Annotated[Path, typer.Argument(help="The authors' released PyTorch state dict (.pth/.pt).")],
    kind: Annotated[str, typer.Option("--kind", help="student|teacher")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors; a .json config goes beside it).")],
    model: Annotated[Optional[str], typer.Option("--model", help="Registry entry to map into (default: `student` or `teacher`).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset it was trained on (sets the MOS scale), e.g. koniq.")] = None,
    embeddings: Annotated[Optional[Path], typer.Option("--embeddings", help="Teacher only: the release's prompt embeddings (.pth); default: compute them with CLIP ViT-L/14.")] = None,
    prompts: Annotated[str, typer.Option("--prompts", help="Teacher only: prompt set the embeddings belong to (paper|release).")] = "release",
) -> None:
    """Convert the authors' released state dict into a dpiqa checkpoint (read with weights_only=True)."""
    from dpiqa_cli.import_weights import import_authors_checkpoint

    path = import_authors_checkpoint(src, kind=kind, out=out, model_name=model, dataset=dataset,
                                     embeddings=embeddings, prompts=prompts, quiet=state.quiet)
    typer.echo(f"wrote {path} and {path.with_suffix('.json')}")


# ---- score / export (issue #3) ----------------------------------------------------------------


@app.command()
def score(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Image files, folders and glob patterns.")] = None,
    model: ModelOpt = "student",
    weights: WeightsOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Ranked results: .csv, .jsonl or .parquet (default: CSV on stdout, not resumable).")] = None,
    from_list: Annotated[Optional[str], typer.Option("--from-list", help="Text file with one path per line ('-' = stdin).")] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")] = True,
    device: DeviceOpt = None,
    precision: Annotated[str, typer.Option("--precision", help="auto|fp32|bf16|fp16 (auto: bf16 on CUDA, fp32 elsewhere).")] = "auto",
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Images per batch (default: 2 on CPU, 64 on CUDA for the student).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-j", help="Decoding processes (default: half the cores on CPU, up to 8 on GPU; 0 = in-process).")] = None,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse images with more pixels than this (header check, before decoding); 0 = no limit.")] = 100_000_000,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (falls back to eager if it fails).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its <out>.partial.csv.")] = False,
    flush_every: Annotated[int, typer.Option("--flush-every", help="fsync the sidecar every N batches.")] = 4,
    mos: Annotated[Optional[Path], typer.Option("--mos", help="CSV with a path/name column and a MOS column: also write a correlation report.")] = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report-dir", help="Where the --mos report goes (default: <out stem>.report/).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output; only errors and the summary.")] = False,
    gallery: Annotated[Optional[Path], typer.Option("--gallery", help="Then write an HTML contact sheet of the results (needs --out); see `dpiqa gallery`.")] = None,
) -> None:
    """Score images and write them ranked best first (exit 0: all scored, 1: some failed, 2: none)."""
    from dpiqa_cli.score import score_command

    _gallery_check(gallery, out)
    rc = score_command(
        inputs or [], from_list=from_list, recursive=recursive, out=out, mos=mos, report_dir=report_dir,
        quiet=quiet or state.quiet, model=model, weights=weights, device=_device(device), precision=precision,
        batch_size=batch_size, workers=workers, max_pixels=max_pixels or None, compile=compile, resume=resume,
        flush_every=flush_every)
    if gallery is not None and out.exists():
        _gallery_run(out, gallery, quiet=quiet or state.quiet, max_pixels=max_pixels or None)
    raise typer.Exit(rc)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write (a .json config goes beside it).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Registry name or checkpoint.")] = "student",
    weights: WeightsOpt = None,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset.")] = 17,
) -> None:
    """Export a model to ONNX (dynamic batch; input `input`, outputs `score`, `feat`)."""
    from dpiqa_cli.onnx_export import export_onnx

    config = export_onnx(model, weights, out, opset)
    typer.echo(f"wrote {out} and {out.with_suffix('.json')} (onnxruntime vs torch max |diff| "
               f"{config.get('check_max_abs_diff', float('nan')):.2e})")


# ---- gallery -------------------------------------------------------------------------------


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


# ---- synth (issue #6) ----------------------------------------------------------------------


@app.command()
def synth(
    src_dir: Annotated[Path, typer.Argument(help="Folder of pristine photos (the files directly inside it).")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder: images/, refs/, synth.csv, synth.json, README.md.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random distortions (noise, motion angle).")] = 0,
    levels: Annotated[int, typer.Option("--levels", help="Levels per distortion type.")] = 5,
    types: Annotated[Optional[str], typer.Option("--types", help="Comma-separated distortion types (default: all).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Downscale so the shorter side is N px (default: keep).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Worker processes (default: min(4, CPUs); 0 = in-process).")] = None,
) -> None:
    """Make a KADID-style synthetic-distortion dataset (generic CSV path,mos,ref,type,level) from pristine photos."""
    from dpiqa_cli.data.synth import synthesize

    df = synthesize(src_dir, out_dir, seed=seed, levels=levels, types=types, size=size, workers=workers,
                    progress=not state.quiet)
    typer.echo(f"wrote {len(df)} images ({df['ref'].nunique()} references) and {out_dir / 'synth.csv'}")


# ---- train-teacher / distill (issue #5) -----------------------------------------------------

_T = "Training"
DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="Dataset reader name (koniq, clive, ..., csv).", rich_help_panel=_T)]
RootOpt = Annotated[Path, typer.Option("--root", help="Dataset folder.", rich_help_panel=_T)]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default: runs/<kind>-<time>).")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="'official' (the dataset's own split) or a seed.")]
SplitSeedOpt = Annotated[int, typer.Option("--split-seed", help="Seed of the random train/val/test split.")]
ValFracOpt = Annotated[float, typer.Option("--val-frac", help="Random splits: share of images (or references) held out for validation.")]
TestFracOpt = Annotated[float, typer.Option("--test-frac", help="Random splits: share held out for the final test (0: none, the model is tested elsewhere; with --split official, a table without test rows is then accepted).")]
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", help="Epochs (default: 15 teacher, 30 student).")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", "--batch", "-b", help="Images per step per process (default: 12 teacher, 24 student).")]
LrOpt = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate (default: 1e-5 teacher, 1e-4 student).")]
MilestonesOpt = Annotated[Optional[str], typer.Option("--milestones", help="Comma-separated epochs where lr *= gamma (default: the dataset's, paper Table 7).")]
GammaOpt = Annotated[float, typer.Option("--gamma", help="MultiStepLR factor.")]
ValEveryOpt = Annotated[int, typer.Option("--val-every", help="Validate every N steps (0: at epoch ends only).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="bf16|fp16|fp32|no (fp16 needs a GPU).")]
AccumOpt = Annotated[int, typer.Option("--grad-accum", help="Micro-batches per optimiser step.")]
RankOpt = Annotated[Optional[bool], typer.Option("--rank-loss/--no-rank-loss", help="Margin ranking term (default on, as in the paper).")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", help="Decoding processes (0 = in-process).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of initial weights, data order and flips.")]
MaxStepsOpt = Annotated[Optional[int], typer.Option("--max-steps", help="Stop after N optimiser steps in total.")]
PresetOpt = Annotated[str, typer.Option("--preset", help="paper (default) or release (authors' scripts: no rank loss, 30 teacher epochs, release prompts).")]
ProtocolOpt = Annotated[bool, typer.Option("--protocol", help="Run the paper's 5 seeds into OUT/seed-N and write the median table.")]
HeadLrOpt = Annotated[Optional[float], typer.Option("--head-lr", help="Learning rate of the regressor head (and the student's conv_transpose); default: --lr.")]
ImageSizeOpt = Annotated[Optional[int], typer.Option("--image-size", help="Training input size (default: the model's, 512).")]
MosMinOpt = Annotated[Optional[float], typer.Option("--mos-min", help="csv dataset: bottom of the MOS scale (default: data min).")]
MosMaxOpt = Annotated[Optional[float], typer.Option("--mos-max", help="csv dataset: top of the MOS scale (default: data max).")]
LowerBetterOpt = Annotated[bool, typer.Option("--lower-better", help="csv dataset: the score is a DMOS (lower = better).")]
RefRunsOpt = Annotated[int, typer.Option("--ref-runs", help="Build batches from runs of N images of one reference (synthetic data), so the ranking loss compares distortions of the same scene; 0 = random batches (the paper's).")]
CropJitterOpt = Annotated[float, typer.Option("--crop-jitter", help="Training only: cut a random box, each side a random 'this..1' share of the image, before the resize (varied magnification and aspect); 0 = off.")]
KeepEpochsOpt = Annotated[bool, typer.Option("--keep-epochs", help="Also keep each epoch's weights as RUN/epoch-N.safetensors (to choose among them by another measure).")]
PatchesOpt = Annotated[Optional[bool], typer.Option("--patches/--no-patches", help="Two patches from a 2S x 1.5S resize per image (default: on for synthetic datasets).")]


def _train_opts(**kw) -> dict:
    ms = kw.pop("milestones")
    if ms is not None:
        try:
            kw["milestones"] = [int(m) for m in ms.split(",") if m.strip()]
        except ValueError:
            raise DpiqaError(f"--milestones must be comma-separated integers (got {ms!r})") from None
    if kw.get("split") is None:
        kw["split"] = str(kw.pop("split_seed"))
    else:
        kw.pop("split_seed")
    kw["quiet"] = state.quiet
    ds_opts = {"mos_min": kw.pop("mos_min"), "mos_max": kw.pop("mos_max"), "lower_better": kw.pop("lower_better") or None}
    kw["dataset_opts"] = {k: v for k, v in ds_opts.items() if v is not None}
    return kw


def _train_done(result: dict) -> None:
    if "median" in result:
        typer.echo(json.dumps(result["median"], indent=2))
        return
    test = result.get("test") or {}
    typer.echo(f"{result['run_dir']}: {result['step']} steps, best val SRCC {result['best_val_srcc']} "
               f"(step {result['best_step']}); test SRCC {test.get('srcc')}, PLCC {test.get('plcc')}")


@app.command("train-teacher")
def train_teacher_cmd(
    dataset: DatasetOpt, root: RootOpt, out: OutOpt = None,
    model: Annotated[str, typer.Option("--model", "-m", help="teacher or tiny-teacher.")] = "teacher",
    sd_model: Annotated[Optional[str], typer.Option("--sd-model", help="Stable Diffusion v1.5 hub id or local folder.")] = None,
    prompts: Annotated[Optional[str], typer.Option("--prompts", help="paper or release prompt set.")] = None,
    grad_checkpointing: Annotated[bool, typer.Option("--grad-checkpointing", help="Recompute U-Net activations (less memory).")] = False,
    split: SplitOpt = None, split_seed: SplitSeedOpt = 0, val_frac: ValFracOpt = 0.1, test_frac: TestFracOpt = 0.2,
    epochs: EpochsOpt = None, batch_size: BatchOpt = None,
    lr: LrOpt = None, head_lr: HeadLrOpt = None, milestones: MilestonesOpt = None, gamma: GammaOpt = 0.2, val_every: ValEveryOpt = 0,
    resume: ResumeOpt = False, precision: PrecisionOpt = "fp32", grad_accum: AccumOpt = 1, rank_loss: RankOpt = None,
    workers: WorkersOpt = 0, seed: SeedOpt = 0, max_steps: MaxStepsOpt = None, preset: PresetOpt = "paper",
    image_size: ImageSizeOpt = None, patches: PatchesOpt = None, ref_runs: RefRunsOpt = 0, crop_jitter: CropJitterOpt = 0.0, keep_epochs: KeepEpochsOpt = False, mos_min: MosMinOpt = None, mos_max: MosMaxOpt = None,
    lower_better: LowerBetterOpt = False, protocol: ProtocolOpt = False,
) -> None:
    """Train the DP-IQA teacher (SD v1.5 U-Net, adapters, QFD, regressor; VAE frozen)."""
    from dpiqa_cli.train.teacher import run_protocol, train_teacher

    opts = _train_opts(**{k: v for k, v in locals().items() if k not in ("protocol", "run_protocol", "train_teacher")})
    _train_done(run_protocol("train-teacher", **opts) if protocol else train_teacher(**opts))


@app.command()
def distill(
    dataset: DatasetOpt, root: RootOpt, out: OutOpt = None,
    teacher: Annotated[Optional[Path], typer.Option("--teacher", help="Teacher checkpoint (.safetensors).")] = None,
    no_teacher: Annotated[bool, typer.Option("--no-teacher", help="Train on scores alone (the paper's w/o distillation).")] = False,
    cache_teacher: Annotated[bool, typer.Option("--cache-teacher", help="Compute teacher maps once and store them in RUN/teacher_cache.")] = False,
    model: Annotated[str, typer.Option("--model", "-m", help="Student registry entry (student, student-lite0, tiny-student).")] = "student",
    backbone: Annotated[Optional[str], typer.Option("--backbone", help="timm backbone (default: the entry's, efficientnet_b7).")] = None,
    init: Annotated[str, typer.Option("--init", help="random, imagenet (offline: tf_efficientnet_lite0 only) or a student checkpoint .safetensors.")] = "random",
    freeze_blocks: Annotated[int, typer.Option("--freeze-blocks", help="Keep the backbone's stem and first N blocks at their initial weights (BatchNorm statistics too).")] = 0,
    split: SplitOpt = None, split_seed: SplitSeedOpt = 0, val_frac: ValFracOpt = 0.1, test_frac: TestFracOpt = 0.2,
    epochs: EpochsOpt = None, batch_size: BatchOpt = None,
    lr: LrOpt = None, head_lr: HeadLrOpt = None, milestones: MilestonesOpt = None, gamma: GammaOpt = 0.2, val_every: ValEveryOpt = 0,
    resume: ResumeOpt = False, precision: PrecisionOpt = "fp32", grad_accum: AccumOpt = 1, rank_loss: RankOpt = None,
    workers: WorkersOpt = 0, seed: SeedOpt = 0, max_steps: MaxStepsOpt = None, preset: PresetOpt = "paper",
    image_size: ImageSizeOpt = None, patches: PatchesOpt = None, ref_runs: RefRunsOpt = 0, crop_jitter: CropJitterOpt = 0.0, keep_epochs: KeepEpochsOpt = False, mos_min: MosMinOpt = None, mos_max: MosMaxOpt = None,
    lower_better: LowerBetterOpt = False, protocol: ProtocolOpt = False,
) -> None:
    """Train a student from a teacher's feature maps (MSE + score loss), or on scores alone (--no-teacher)."""
    from dpiqa_cli.train.distill import distill as run_distill
    from dpiqa_cli.train.teacher import run_protocol

    opts = _train_opts(**{k: v for k, v in locals().items() if k not in ("protocol", "run_distill", "run_protocol")})
    if opts["teacher"] is not None:
        opts["teacher"] = str(opts["teacher"])
    _train_done(run_protocol("distill", **opts) if protocol else run_distill(**opts))


# ---- bench (issue #4) ---------------------------------------------------------------------


@app.command()
def bench(
    model: ModelOpt = "student",
    weights: WeightsOpt = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="koniq|clive|spaq|livefb|live|csiq|tid2013|kadid|csv.")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="The dataset's folder, as distributed.")] = None,
    split: Annotated[str, typer.Option("--split", help="seeds (80/20 per seed) | official (KonIQ test set) | all (every image: cross-dataset).")] = "seeds",
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds for --split seeds: a range 0-4 or a list 0,1,2.")] = "0-4",
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
    speed: Annotated[bool, typer.Option("--speed", help="Speed benchmark instead: images/s, latency, peak memory.")] = False,
    speed_models: Annotated[Optional[str], typer.Option("--speed-models", help="--speed: comma-separated models (default: --model).")] = None,
    speed_batch_sizes: Annotated[str, typer.Option("--speed-batch-sizes", help="--speed: comma-separated batch sizes.")] = "1,8",
    precisions: Annotated[str, typer.Option("--precisions", help="--speed: comma-separated auto|fp32|bf16|fp16.")] = "auto",
) -> None:
    """Correlation report on a dataset's test splits (or --speed: a speed table and JSON)."""
    if speed:
        from dpiqa_cli.evaluate.speed import run_speed_bench

        try:
            sizes = [int(b) for b in speed_batch_sizes.split(",") if b.strip()]
        except ValueError:
            raise DpiqaError(f"bad --speed-batch-sizes {speed_batch_sizes!r}: use e.g. 1,8") from None
        out.mkdir(parents=True, exist_ok=True)
        run_speed_bench([m.strip() for m in (speed_models or model).split(",") if m.strip()], sizes,
                        [p.strip() for p in precisions.split(",") if p.strip()], device=_device(device),
                        out_json=out / "speed.json", workers=workers)
        return
    from dpiqa_cli.evaluate.bench import run_bench

    opts = {"mos_min": mos_min, "mos_max": mos_max, "lower_better": lower_better or None}
    res = run_bench(model=model, weights=weights, dataset=dataset, root=root, split=split, seeds=seeds, out_dir=out,
                    device=_device(device), batch_size=batch_size, workers=workers, allow_missing=allow_missing,
                    scores=scores, mos=mos, progress=not state.quiet,
                    dataset_opts={k: v for k, v in opts.items() if v is not None})
    med = res["aggregate"]
    typer.echo(f"SRCC {med['srcc']['median']:.4f}  PLCC {med['plcc']['median']:.4f}  "
               f"PLCC(logistic) {med['plcc_logistic']['median']:.4f}  (median of {len(res['splits'])} split(s)); "
               f"report: {out / 'report.md'}", err=True)


# ---- entry point ---------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> None:
    """Run the app; turn user errors into one line on stderr and exit code 2."""
    command = typer.main.get_command(app)
    try:
        rc = command.main(args=argv, prog_name="dpiqa", standalone_mode=False)
    except DpiqaError as exc:
        if state.verbose:
            logging.exception("details")
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # an internal error: one line unless --verbose
        if state.verbose:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (re-run with --verbose for details)", file=sys.stderr)
        sys.exit(3)
    sys.exit(rc if isinstance(rc, int) else 0)
