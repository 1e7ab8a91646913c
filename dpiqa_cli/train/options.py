"""Every training option, defined once: `TrainOptions`'s fields (flags, help and commands in their
metadata) generate the CLI's parameters, and a run saves them in RUN/config.json and every checkpoint.
A default of None means the paper's setting, filled in by `make_options` (per kind, preset and dataset).
"""
from __future__ import annotations

import inspect
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from dpiqa_cli.data.catalog import dataset_info
from dpiqa_cli.errors import DpiqaError

KINDS = ("teacher", "student")
PER_KIND = {  # paper, Appendix C; `model`: the paper's architectures
    "teacher": {"epochs": 15, "batch_size": 12, "lr": 1e-5, "model": "teacher"},
    "student": {"epochs": 30, "batch_size": 24, "lr": 1e-4, "model": "student-b7"},
}
# The authors' release differs from the paper; offered as a named preset.
PRESETS = {"paper": {"rank_loss": True},
           "release": {"rank_loss": False, "teacher_epochs": 30, "prompts": "release"}}
# --help at 80 columns: the required and common options in the first panel (no panel given), the rest grouped
_MODEL, _DATA, _OPTIM, _RUN = "Model", "Data and split", "Optimisation", "Running and outputs"


def opt(*flags: str, help: str, default: Any = None, kinds: tuple = KINDS, type: Any = None, panel: str | None = None):
    """A TrainOptions field that is also a CLI option of the commands of `kinds`."""
    return field(default=default, metadata=dict(flags=flags, help=help, kinds=kinds, type=type, panel=panel))


T, S = ("teacher",), ("student",)



def _scale_end(end: str, where: str):
    """--mos-min / --mos-max: one end of a csv dataset's MOS scale."""
    return opt(f"--mos-{end}", panel=_DATA, type=float, help=f"csv dataset: {where} of the MOS scale (default: data {end}).")


@dataclass
class TrainOptions:
    dataset: str = opt("--dataset", "-d", default=MISSING, type=str,
                       help="Dataset reader: koniq, clive, spaq, livefb, live, csiq, tid2013, kadid or csv.")
    root: Path = opt("--root", default=MISSING, type=Path, help="Dataset folder (csv: a folder or FILE.csv).")
    kind: str = field(default="student", metadata={"cli": False})
    out: Optional[Path] = opt("--out", "-o", type=Path, help="Run folder (default: runs/<kind>-<time>).")
    model: Optional[str] = opt("--model", "-m", type=str,
                               help="Registry entry to train (default: teacher, or the paper's student-b7).")
    # teacher only
    sd_model: Optional[str] = opt("--sd-model", panel=_MODEL, kinds=T, type=str,
                                  help="Stable Diffusion v1.5 hub id or local folder.")
    prompts: Optional[str] = opt("--prompts", panel=_MODEL, kinds=T, type=str, help="paper or release prompt set.")
    grad_checkpointing: bool = opt("--grad-checkpointing", panel=_MODEL, default=False, kinds=T,
                                   help="Recompute U-Net activations (less memory).")
    # student only
    teacher: Optional[Path] = opt("--teacher", kinds=S, type=Path, help="Teacher checkpoint (.safetensors).")
    no_teacher: bool = opt("--no-teacher", default=False, kinds=S,
                           help="Train on scores alone (the paper's w/o distillation).")
    cache_teacher: bool = opt("--cache-teacher", panel=_MODEL, default=False, kinds=S,
                              help="Compute teacher maps once and store them in RUN/teacher_cache.")
    cache_frozen: bool = opt("--cache-frozen", panel=_MODEL, default=False, kinds=S,
                             help="With --no-teacher and --freeze-blocks: the frozen blocks run once per item "
                                  "(fixed crops, no flips).")
    frozen_cache: Optional[str] = opt("--frozen-cache", panel=_MODEL, kinds=S, type=str,
                                      help="That cache's folder, shared by runs (default: RUN/frozen_cache).")
    backbone: Optional[str] = opt("--backbone", panel=_MODEL, kinds=S, type=str,
                                  help="timm backbone (default: the entry's).")
    init: str = opt("--init", panel=_MODEL, default="random", kinds=S, type=str,
                    help="random, imagenet (offline: tf_efficientnet_lite0 only) or a student checkpoint .safetensors.")
    freeze_blocks: int = opt("--freeze-blocks", panel=_MODEL, default=0, kinds=S, type=int,
                             help="Keep the backbone's stem and first N blocks at their initial weights "
                                  "(BatchNorm statistics too).")
    # data and split
    split: str = opt("--split", panel=_DATA, default="0", type=str,
                     help="'official' (the dataset's own split) or the seed of a random one.")
    val_frac: float = opt("--val-frac", panel=_DATA, default=0.1, type=float,
                          help="Random splits: share of images (or references) held out for validation.")
    test_frac: float = opt("--test-frac", panel=_DATA, default=0.2, type=float,
                           help="Random splits: share held out for the final test (0: none, the model is tested "
                                "elsewhere; with --split official, a table without test rows is then accepted).")
    image_size: Optional[int] = opt("--image-size", panel=_DATA, type=int,
                                    help="Training input size (default: the model's, 512).")
    view: Optional[str] = opt("--view", panel=_DATA, type=str,
                              help="How the model sees an image, recorded in its checkpoint: whole (S x S resize), "
                                   "patches (two S x S halves of a 2S x 1.5S resize), native (S x S crops at the "
                                   "image's own scale, long side at most --max-side) or multiscale (a few crops "
                                   "at display scale and a few at its own pixels). Default: patches for "
                                   "synthetic datasets, else whole.")
    max_side: Optional[int] = opt("--max-side", panel=_DATA, type=int,
                                  help="--view native or multiscale: the finest working scale's long side (larger "
                                       "images are downscaled to it; default 1024 native, 4000 multiscale).")
    combine: str = opt("--combine", panel=_DATA, default="mean", type=str,
                       help="--view native or multiscale: an image's score from its crops' scores, mean or q25.")
    ref_runs: int = opt("--ref-runs", panel=_DATA, default=0, type=int,
                        help="Build batches from runs of N images of one reference (synthetic data), so the ranking "
                             "loss compares distortions of the same scene; 0 = random batches (the paper's).")
    crop_jitter: float = opt("--crop-jitter", panel=_DATA, default=0.0, type=float,
                             help="Training only: cut a random box, each side a random 'this..1' share of the image, "
                                  "before the resize (varied magnification and aspect); 0 = off.")
    mos_min: Optional[float] = _scale_end("min", "bottom")
    mos_max: Optional[float] = _scale_end("max", "top")
    lower_better: bool = opt("--lower-better", panel=_DATA, default=False,
                             help="csv dataset: the score is a DMOS (lower = better).")
    # optimisation
    epochs: Optional[int] = opt("--epochs", type=int, help="Epochs (default: 15 teacher, 30 student).")
    batch_size: Optional[int] = opt("--batch-size", "--batch", "-b", type=int,
                                    help="Images per step per process (default: 12 teacher, 24 student).")
    lr: Optional[float] = opt("--lr", panel=_OPTIM, type=float,
                              help="Adam learning rate (default: 1e-5 teacher, 1e-4 student).")
    head_lr: Optional[float] = opt("--head-lr", panel=_OPTIM, type=float,
                                   help="Learning rate of the regressor head (and the student's conv_transpose); "
                                        "default: --lr.")
    milestones: Optional[list] = opt("--milestones", panel=_OPTIM, type=str,
                                     help="Comma-separated epochs where lr *= gamma (default: the dataset's, paper Table 7).")
    gamma: float = opt("--gamma", panel=_OPTIM, default=0.2, type=float, help="MultiStepLR factor.")
    rank_loss: Optional[bool] = opt("--rank-loss/--no-rank-loss", panel=_OPTIM, type=bool,
                                    help="Margin ranking term (default on, as in the paper).")
    grad_accum: int = opt("--grad-accum", panel=_OPTIM, default=1, type=int, help="Micro-batches per optimiser step.")
    precision: str = opt("--precision", panel=_OPTIM, default="fp32", type=str,
                         help="fp32, bf16 or fp16 (fp16 needs a GPU).")
    seed: int = opt("--seed", default=0, type=int, help="Seed of initial weights, data order and flips.")
    data_seed: Optional[int] = opt("--data-seed", panel=_OPTIM, type=int,
                                   help="Seed of data order and flips alone (default: --seed): runs that start "
                                        "from the same weights but see the data in another order, e.g. to "
                                        "average their weights.")
    preset: str = opt("--preset", panel=_OPTIM, default="paper", type=str,
                      help="paper (default) or release (authors' scripts: no rank loss, 30 teacher epochs, release prompts).")
    # running
    workers: int = opt("--workers", "-j", panel=_RUN, default=0, type=int, help="Decoding processes (0 = in-process).")
    val_every: int = opt("--val-every", panel=_RUN, default=0, type=int,
                         help="Validate every N steps (0: at epoch ends only).")
    max_steps: Optional[int] = opt("--max-steps", panel=_RUN, type=int, help="Stop after N optimiser steps in total.")
    keep_epochs: bool = opt("--keep-epochs", panel=_RUN, default=False,
                            help="Also keep each epoch's weights as RUN/epoch-N.safetensors (to choose among them "
                                 "by another measure).")
    ema: float = opt("--ema", panel=_OPTIM, default=0.0, type=float,
                     help="Also keep an exponential moving average of the weights with this decay per step "
                          "(e.g. 0.995) as RUN/ema.safetensors, and RUN/epoch-N-ema.safetensors with "
                          "--keep-epochs; 0 = off. Training itself is unchanged.")
    resume: bool = opt("--resume", default=False, help="Continue the run in --out exactly where it stopped.")
    protocol: bool = opt("--protocol", panel=_RUN, default=False,
                         help="Run the paper's 5 seeds into OUT/seed-N and write the median table.")
    quiet: bool = field(default=False, metadata={"cli": False})

    @property
    def split_official(self) -> bool:
        return self.split == "official"

    @property
    def split_seed(self) -> int:
        return 0 if self.split_official else int(self.split)

    @property
    def dataset_opts(self) -> dict:
        opts = {"mos_min": self.mos_min, "mos_max": self.mos_max, "lower_better": self.lower_better or None}
        return {k: v for k, v in opts.items() if v is not None}

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def cli_parameters(kind: str) -> list[inspect.Parameter]:
    """The Typer parameters of the command that trains `kind`, generated from TrainOptions's fields."""
    params = []
    for f in fields(TrainOptions):
        meta = f.metadata
        if meta.get("cli") is False or kind not in meta["kinds"]:
            continue
        typ = meta["type"] or bool
        required = f.default is MISSING
        kw = {"help": meta["help"]} | ({"rich_help_panel": meta["panel"]} if meta["panel"] else {})
        ann = Annotated[typ if required or f.default is not None else Optional[typ], typer.Option(*meta["flags"], **kw)]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=ann,
                                        default=inspect.Parameter.empty if required else f.default))
    return params


def default_run_dir(kind: str) -> Path:
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def make_options(kind: str, values: dict) -> TrainOptions:
    """TrainOptions from option values; None means the paper's setting for this kind, preset and dataset."""
    if kind not in KINDS:
        raise ValueError(kind)
    v = {k: val for k, val in values.items() if val is not None}
    preset = v.get("preset", "paper")
    if preset not in PRESETS:
        raise DpiqaError(f"--preset must be paper or release (got {preset!r})")
    p = PRESETS[preset]
    for key, value in PER_KIND[kind].items():
        v.setdefault(key, value)
    if kind == "teacher" and "teacher_epochs" in p and values.get("epochs") is None:
        v["epochs"] = p["teacher_epochs"]
    v.setdefault("rank_loss", p["rank_loss"])
    if kind == "teacher":
        v.setdefault("prompts", p.get("prompts", "paper"))
    ms = v.get("milestones")
    if isinstance(ms, str):
        try:
            v["milestones"] = [int(m) for m in ms.split(",") if m.strip()]
        except ValueError:
            raise DpiqaError(f"--milestones must be comma-separated integers (got {ms!r})") from None
    elif ms is None:
        info = dataset_info(v["dataset"]) if "dataset" in v else {}
        v["milestones"] = list(info.get(f"milestones_{kind}") or [])
    split = str(v.get("split", "0"))
    if split != "official":
        try:
            int(split)
        except ValueError:
            raise DpiqaError(f"--split must be 'official' or a seed (got {split!r})") from None
    v["split"] = split
    if v.get("protocol") and v.get("data_seed") is not None:
        raise DpiqaError("--data-seed cannot be used with --protocol: each of its seeds sets its own data order")
    if not 0.0 <= v.get("ema", 0.0) < 1.0:
        raise DpiqaError(f"--ema must be a decay in [0, 1), e.g. 0.995; 0 = off (got {v['ema']:g})")
    v["root"] = Path(v["root"])
    v["out"] = Path(v.get("out") or default_run_dir(kind))
    unknown = set(v) - {f.name for f in fields(TrainOptions)}
    if unknown:
        raise DpiqaError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    return TrainOptions(kind=kind, **v)
