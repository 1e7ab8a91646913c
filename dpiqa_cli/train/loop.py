"""The one training loop shared by `train-teacher` and `distill`, on Hugging Face Accelerate.

`accelerate launch` / `torchrun` give DDP unchanged: every rank takes its slice of the same seeded epoch
permutation, gradients are averaged by DDP, and only rank 0 writes files. Steps count optimiser updates.
Validation uses the VAL split only; the test split is touched once, after training, by the best checkpoint.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from accelerate.utils import gather_object

from dpiqa_cli.atomic import write_json
from dpiqa_cli.data.splits import split_record
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.metrics import compute_metrics
from dpiqa_cli.evaluate.report import write_report
from dpiqa_cli.models.checkpoint import load_checkpoint, save_checkpoint
from dpiqa_cli.progress import Progress
from dpiqa_cli.train.data import TableDataset
from dpiqa_cli.train.ema import WeightEma
from dpiqa_cli.train.logger import Logger
from dpiqa_cli.train.run import Run, to_device
from dpiqa_cli.train.state import EMA_FILE, TrainerState, load_state, save_state


def metrics_of(pred: np.ndarray, mos: np.ndarray) -> dict:
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in compute_metrics(pred, mos).items()}


@torch.no_grad()
def predict(run: Run, model: torch.nn.Module, ds: TableDataset, batch_size: int) -> np.ndarray:
    """Scores of every image of `ds` in order (its crops combined); ranks score a slice each and share them."""
    acc, was_training = run.acc, model.training
    model.eval()
    mine = list(range(len(ds)))[acc.process_index::acc.num_processes]
    batches = [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]
    rows = []
    for b in run.loader(ds, batches):
        with acc.autocast():
            score, _ = model(to_device(acc, b["x"]))
        rows += list(zip(b["idx"].tolist(), score.float().reshape(-1).cpu().tolist()))
    model.train(was_training)
    if acc.num_processes > 1:
        rows = gather_object(rows)
    out = np.full(len(ds), np.nan)
    for i, s in rows:
        out[i] = s
    return ds.per_image(out)


HEAD_MODULES = ("regressor.", "conv_transpose.")


def param_groups(model: torch.nn.Module, lr: float, head_lr: float | None) -> list[dict]:
    """Trainable parameters (not the frozen VAE or blocks), the head in its own group for --head-lr: one Adam
    step moves the 32768-wide first layer's output by about lr x ||F||_1."""
    if head_lr is None:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    body, head = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head if name.startswith(HEAD_MODULES) else body).append(p)
    return [g for g in ({"params": body}, {"params": head, "lr": head_lr}) if g["params"]]


LossFn = Callable[[torch.nn.Module, dict], "tuple[torch.Tensor, dict]"]


def fit(run: Run, model: torch.nn.Module, loss_fn: LossFn, spec_name: str, info: dict,
        cache: torch.Tensor | None = None) -> dict:
    """Train, validate, checkpoint, resume; then evaluate the best checkpoint on the test split."""
    cfg, acc, out = run.cfg, run.acc, run.out
    opt = torch.optim.Adam(param_groups(model, cfg.lr, cfg.head_lr), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=sorted(cfg.milestones or []), gamma=cfg.gamma)
    model, opt = acc.prepare(model.to(memory_format=torch.channels_last), opt)
    net = acc.unwrap_model(model)
    ema = WeightEma(net, cfg.ema) if cfg.ema else None
    t = TrainerState()
    if cfg.resume:
        t = load_state(acc, out)
        sched.last_epoch = t.sched_epoch  # lr itself comes back with the optimiser's param groups
        if ema is not None:
            ema.load(out / "state" / EMA_FILE)
    train_ds = run.dataset("train", train=True, cache=cache)
    n_batches = len(run.train_batches(train_ds, 0))
    if n_batches == 0:
        raise DpiqaError(f"the train split has fewer images ({len(train_ds)}) than processes ({acc.num_processes})")
    # which images it trained, validated and was tested on, so bench can keep its test images held out
    record = split_record(run.split, cfg.dataset, root=Path(cfg.root).resolve(),
                          split_file=(out / "split.json").resolve())
    inherited = info.get("inherited_images")
    meta = {**{k: v for k, v in info.items() if k != "inherited_images"}, "dataset": cfg.dataset,
            "mos_scale": run.scale, "train_config": cfg.to_json(),
            "split": {k: len(run.split[k]) for k in ("train", "val", "test")},
            "split_images": {**record, **({"inherited": inherited} if inherited else {})},
            "input_size": run.input_size, "view": run.view.to_config()}
    log = Logger(out, run.main, keep_until=t.step if cfg.resume else None)
    try:
        _train(run, model, net, opt, sched, loss_fn, train_ds, n_batches, t, log, spec_name, meta, ema)
        result = {"run_dir": str(out), "step": t.step, "epoch": t.epoch, "best_val_srcc": t.best_srcc,
                  "best_step": t.best_step, "seconds": round(time.time() - t.t0, 2)}
        result["test"] = evaluate_test(run, spec_name, meta)
        log({"kind": "test", "step": t.step, "epoch": t.epoch, "srcc": result["test"].get("srcc"),
             "plcc": result["test"].get("plcc"), "seconds": round(time.time() - t.t0, 3)})
    except (DpiqaError, KeyboardInterrupt) as exc:  # the log says why the run stopped; checkpoints stay as they were
        log({"kind": "error", "step": t.step, "epoch": t.epoch, "message": str(exc) or type(exc).__name__})
        raise
    finally:
        log.close()
    if run.main:
        write_json(out / "result.json", result)  # written last: a run without it did not finish
    return result


def _train(run: Run, model, net, opt, sched, loss_fn: LossFn, train_ds: TableDataset, n_batches: int, t: TrainerState,
           log: Logger, spec_name: str, meta: dict, ema: WeightEma | None = None) -> None:
    cfg, acc, out = run.cfg, run.acc, run.out
    val_ds = run.dataset("val")
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    t0 = t.t0 = time.time()

    def check_finite(where: str) -> None:
        # a step can turn the weights to NaN/inf without a NaN loss yet: never checkpoint such weights
        bad = torch.tensor([0.0 if all(torch.isfinite(p).all() for p in net.parameters()) else 1.0], device=acc.device)
        if acc.reduce(bad, "sum").item() > 0:
            raise DpiqaError(f"training diverged at step {t.step}: {where}; lower --lr (now {cfg.lr:g})")

    def validate(kind: str) -> None:
        check_finite("weights are not finite")
        pred = predict(run, net, val_ds, cfg.batch_size)
        if not np.isfinite(pred).all():
            raise DpiqaError(f"training diverged at step {t.step}: validation scores are not finite; "
                             f"lower --lr (now {cfg.lr:g})")
        m = metrics_of(pred, np.asarray(val_ds.mos))
        srcc = m.get("srcc")
        log({"kind": kind, "step": t.step, "epoch": t.epoch, "srcc": srcc, "plcc": m.get("plcc"),
             "seconds": round(time.time() - t0, 3)})
        if srcc is not None and np.isfinite(srcc) and (t.best_srcc is None or srcc > t.best_srcc):
            t.best_srcc, t.best_step = float(srcc), t.step
            if run.main:
                save_checkpoint(net, out / "best.safetensors", spec_name=spec_name,
                                info={**meta, "metrics": {"val": m}, "step": t.step, "epoch": t.epoch})

    def checkpoint_state() -> None:
        t.sched_epoch = sched.last_epoch
        save_state(acc, out, t, ema)

    stop = False
    bar = Progress(total, "train", unit="step", enabled=not cfg.quiet and run.main, initial=t.step, every_s=30.0)
    sums: dict[str, float] = {}
    while t.epoch < cfg.epochs and not stop:
        if cfg.max_steps is not None and t.step >= cfg.max_steps:
            break
        train_ds.set_epoch(t.epoch)
        batches = run.train_batches(train_ds, t.epoch)
        model.train()
        start = t.batch_pos  # batches of this epoch already consumed (resume)
        for k, batch in enumerate(run.loader(train_ds, batches[start:])):
            pos = start + k
            sync = (pos + 1) % cfg.grad_accum == 0 or pos == n_batches - 1
            batch = {key: to_device(acc, v) for key, v in batch.items()}
            with nullcontext() if sync else acc.no_sync(model):
                with acc.autocast():
                    loss, parts = loss_fn(model, batch)
                acc.backward(loss)
            for key, v in {"loss": loss, **parts}.items():
                sums[key] = sums.get(key, 0.0) + float(v.detach()) / cfg.grad_accum
            if not sync:
                continue
            bad = torch.tensor([0.0 if all(math.isfinite(v) for v in sums.values()) else 1.0], device=acc.device)
            if acc.reduce(bad, "sum").item() > 0:  # every rank stops together
                raise DpiqaError(f"training diverged at step {t.step + 1}: loss is {sums.get('loss')}; "
                                 f"lower --lr (now {cfg.lr:g}) or use --precision fp32")
            opt.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(net)
            t.step, t.batch_pos = t.step + 1, pos + 1
            log({"kind": "train", "step": t.step, "epoch": t.epoch, "lr": opt.param_groups[0]["lr"],
                 "seconds": round(time.time() - t0, 3), **{key: round(v, 6) for key, v in sums.items()}})
            bar.update(1, loss=f"{sums['loss']:.4f}", best_srcc=t.best_srcc)
            sums = {}
            if cfg.val_every and t.step % cfg.val_every == 0 and pos != n_batches - 1:
                validate("val")
                checkpoint_state()
            if cfg.max_steps is not None and t.step >= cfg.max_steps:
                stop = True
                break
        if not stop:  # epoch end: schedule, validate, keep state
            sched.step()
            t.epoch, t.batch_pos = t.epoch + 1, 0
            validate("epoch")
        else:
            check_finite("weights are not finite")
        if run.main:
            info = {**meta, "step": t.step, "epoch": t.epoch, "metrics": {}}
            save_checkpoint(net, out / "last.safetensors", spec_name=spec_name, info=info)
            if cfg.keep_epochs and not stop:
                save_checkpoint(net, out / f"epoch-{t.epoch}.safetensors", spec_name=spec_name, info=info)
            if ema is not None:
                info = {**info, "ema_decay": cfg.ema}
                save_checkpoint(ema.model, out / "ema.safetensors", spec_name=spec_name, info=info)
                if cfg.keep_epochs and not stop:
                    save_checkpoint(ema.model, out / f"epoch-{t.epoch}-ema.safetensors", spec_name=spec_name, info=info)
        checkpoint_state()
    bar.close()
    if t.best_srcc is None:  # e.g. --max-steps before any validation (all ranks take part)
        validate("val")
    acc.wait_for_everyone()


def evaluate_test(run: Run, spec_name: str, meta: dict) -> dict:
    """Score the test split with best.safetensors and write RUN/test/ with the shared report writer."""
    best = run.out / "best.safetensors"
    if not best.exists() or not run.split.get("test"):
        return {}
    model, _ = load_checkpoint(best, device=run.acc.device)
    ds = run.dataset("test")
    pred = predict(run, model, ds, run.cfg.batch_size)
    m = metrics_of(pred, np.asarray(ds.mos))
    if run.main:
        table = pd.DataFrame({"path": ds.paths, "id": run.parts["test"]["id"], "score": pred, "mos": ds.mos})
        write_report(run.out / "test", {"model": spec_name, "checkpoint": str(best), "metrics": m, "table": table},
                     {**meta, "split_part": "test"})
    return m
