"""`dpiqa distill`: train a student from a teacher's feature maps (or on scores alone with --no-teacher).

--cache-teacher computes F_quality once per training item in both orientations (fp16, RUN/teacher_cache/).
On synthetic data a cache cannot follow random patch positions, so they stay fixed; the log says so.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file

from dpiqa_cli.atomic import write_json, write_via
from dpiqa_cli.data.splits import inherited_images
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint import load_checkpoint
from dpiqa_cli.models.registry import get_spec
from dpiqa_cli.train import frozen_cache
from dpiqa_cli.train.loop import fit
from dpiqa_cli.train.losses import distill_loss, score_only_loss
from dpiqa_cli.train.options import TrainOptions
from dpiqa_cli.train.run import Run, to_device


@torch.no_grad()
def build_teacher_cache(run, teacher, teacher_id: str) -> torch.Tensor:
    """N x 2 x C x F x F fp16 maps ([plain, flipped]) for the train split; reused when RUN already has them."""
    ds = run.dataset("train")  # no augmentation: both orientations are computed explicitly
    key = hashlib.sha256(json.dumps([teacher_id, ds.paths, ds.size, ds.patches]).encode()).hexdigest()[:16]
    path = run.out / "teacher_cache" / f"feats-{key}.safetensors"
    if run.main and not path.exists():
        t0 = time.perf_counter()
        maps = []
        batches = [list(range(i, min(i + run.cfg.batch_size, len(ds)))) for i in range(0, len(ds), run.cfg.batch_size)]
        for b in run.loader(ds, batches):
            x = to_device(run.acc, b["x"])
            with run.acc.autocast():
                f0, f1 = teacher(x)[1], teacher(x.flip(-1))[1]
            maps.append(torch.stack([f0, f1], 1).half().cpu())
        feats = torch.cat(maps).contiguous()
        secs = time.perf_counter() - t0
        write_via(path, lambda tmp: save_file({"feat": feats}, tmp, metadata={"teacher": teacher_id}))
        info = {"items": len(ds), "build_seconds": round(secs, 3), "bytes": path.stat().st_size,
                "teacher_seconds_per_epoch_estimate": round(secs / 2, 3),  # one orientation per item per epoch
                "fixed_patches": ds.patches}
        write_json(path.parent / "cache.json", info)
        if not run.cfg.quiet:
            print(f"teacher cache: {len(ds)} items x 2 orientations in {secs:.1f} s ({info['bytes'] / 2**20:.1f} MiB);"
                  f" a live teacher would cost ~{secs / 2:.1f} s per epoch, ~{secs / 2 * run.cfg.epochs:.0f} s over "
                  f"{run.cfg.epochs} epochs" + ("; patches stay at fixed positions" if ds.patches else ""))
    run.acc.wait_for_everyone()
    return load_file(str(path))["feat"]


def distill(cfg: TrainOptions) -> dict:
    """Build the student (and teacher), then run the shared loop. Returns the run's result dict."""
    teacher, init, backbone = cfg.teacher, cfg.init, cfg.backbone
    if cfg.no_teacher == (teacher is not None):
        raise DpiqaError("give either --teacher CKPT or --no-teacher")
    if cfg.cache_teacher and cfg.no_teacher:
        raise DpiqaError("--cache-teacher needs --teacher")
    if cfg.cache_teacher and cfg.crop_jitter:  # fail before the (long) cache is built
        raise DpiqaError("--crop-jitter cannot be used with --cache-teacher: cached maps are of the fixed view")
    if cfg.cache_frozen and not (cfg.no_teacher and cfg.freeze_blocks > 0 and not cfg.crop_jitter):
        raise DpiqaError("--cache-frozen needs --no-teacher and --freeze-blocks N (N >= 1), and no --crop-jitter")
    if init not in ("random", "imagenet") and not str(init).endswith(".safetensors"):
        raise DpiqaError(f"--init must be random, imagenet or a student checkpoint .safetensors (got {init!r})")
    spec = get_spec(cfg.model)
    if spec.kind != "student":
        raise DpiqaError(f"--model {cfg.model} is a {spec.kind}; distill trains a student")
    run = Run(cfg, spec.input_size)
    set_seed(cfg.seed)  # same initial weights on every rank and every rerun
    overrides = {"backbone": backbone} if backbone else {}
    try:
        student = spec.build(pretrained=init == "imagenet", **overrides)
    except RuntimeError as exc:  # timm: unknown backbone name
        raise DpiqaError(f"cannot build --backbone {backbone}: {str(exc).splitlines()[0][:200]}") from None
    inherited = []  # the images its teacher or its starting checkpoint saw count as seen by it too
    if init.endswith(".safetensors"):  # start from a trained student (fine-tuning, another dataset)
        src, src_cfg = load_checkpoint(init)
        inherited.append(inherited_images("init", init, src_cfg))
        try:
            student.load_state_dict(src.state_dict(), strict=True)
        except RuntimeError as exc:
            raise DpiqaError(f"--init {init} does not fit {spec.name}"
                             f"{' with --backbone ' + backbone if backbone else ''}: {str(exc).splitlines()[0][:200]}") from None
    student.freeze_blocks(cfg.freeze_blocks)
    if init == "imagenet":  # a pretrained backbone under a new head: start from the mean training score
        student.regressor.start_at(float(run.parts["train"]["mos"].mean()))
    info = {"trainer": "distill", "teacher": None if cfg.no_teacher else str(teacher), "init": init,
            "rank_loss": cfg.rank_loss, "freeze_blocks": cfg.freeze_blocks, "inherited_images": inherited}
    cache = None
    if cfg.cache_frozen:
        folder = Path(cfg.frozen_cache) if cfg.frozen_cache else run.out / "frozen_cache"
        run.features = {part: frozen_cache.build(run, student, part, folder, quiet=cfg.quiet) for part in ("train", "val")}
        student.input_block = cfg.freeze_blocks
        info["cached_frozen_blocks"] = cfg.freeze_blocks  # fixed crops, no flips
    if cfg.no_teacher:
        loss_fn = score_only_loss(cfg.rank_loss)
    else:
        t_model, t_cfg = load_checkpoint(teacher, device=run.acc.device)
        inherited.append(inherited_images("teacher", teacher, t_cfg))
        t_model.requires_grad_(False).eval().to(memory_format=torch.channels_last)
        x = torch.zeros(1, 3, run.input_size, run.input_size, device=run.acc.device)
        with torch.no_grad():
            ft, fs = t_model(x)[1].shape, student.to(run.acc.device).eval()(x)[1].shape  # eval: BN stats untouched
        if t_cfg.get("input_size") != run.input_size or ft != fs:
            raise DpiqaError(f"teacher {teacher} ({t_cfg.get('model')}, {t_cfg.get('input_size')} px, feature map "
                             f"{tuple(ft)[1:]}) does not match student {spec.name} ({run.input_size} px, {tuple(fs)[1:]})")
        if cfg.cache_teacher:
            cache = build_teacher_cache(run, t_model, t_cfg.get("sha256") or str(teacher))
            t_model = None  # not needed any more: free its memory
        loss_fn = distill_loss(t_model, cfg.rank_loss)
        info["teacher_sha256"] = t_cfg.get("sha256")
    return fit(run, student, loss_fn, spec.arch_name, info, cache=cache)
