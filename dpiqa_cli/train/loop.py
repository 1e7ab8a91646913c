"""The one training loop shared by `train-teacher` and `distill`, on Hugging Face Accelerate.

`accelerate launch` / `torchrun` give DDP unchanged: every rank takes its slice of the same seeded epoch
permutation, gradients are averaged by DDP, and only rank 0 writes files. Steps count optimiser updates.
Validation uses the VAL split only; the test split is touched once, after training, by the best checkpoint.
"""
from __future__ import annotations

import csv
import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from dpiqa_cli.atomic import write_json
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.train.data import TableDataset, dataset_defaults, epoch_batches, load_table, resolve_split
from dpiqa_cli.train.state import load_state, save_state

PRECISIONS = {"bf16": "bf16", "fp16": "fp16", "fp32": "no", "no": "no"}
LOG_COLUMNS = ["kind", "step", "epoch", "loss", "loss_score", "loss_feat", "lr", "srcc", "plcc", "seconds", "message"]


@dataclass
class TrainConfig:
    dataset: str
    root: Path
    out: Path
    epochs: int
    batch_size: int
    lr: float
    head_lr: float | None = None  # the regressor (+ student conv_transpose); None: same as lr
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.2
    split_seed: int = 0
    split_official: bool = False
    by_ref: bool | None = None
    val_frac: float = 0.1  # of the images/references, carved from the training part (random splits)
    test_frac: float = 0.2  # 0: no test part (the model is tested elsewhere)
    val_every: int = 0  # optimiser steps; 0 = at epoch ends only
    resume: bool = False
    precision: str = "fp32"
    grad_accum: int = 1
    rank_loss: bool = True
    workers: int = 0
    seed: int = 0
    max_steps: int | None = None
    image_size: int | None = None  # None: the registry entry's input size
    patches: bool | None = None  # None: two patches per image on synthetic datasets (design.md)
    ref_runs: int = 0  # > 1: batches built from runs of this many images of one reference (needs a ref column)
    crop_jitter: float = 0.0  # > 0: training crops a random box (each side this..1 of the image) before the resize
    keep_epochs: bool = False  # also keep each epoch's weights as RUN/epoch-N.safetensors (for selection elsewhere)
    quiet: bool = False
    dataset_opts: dict = field(default_factory=dict)


class Run:
    """Everything fixed before the model exists: accelerator, table, split, datasets."""

    def __init__(self, cfg: TrainConfig, input_size: int):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        if cfg.ref_runs < 0 or cfg.ref_runs == 1:
            raise DpiqaError(f"--ref-runs must be 0 (off) or at least 2 (got {cfg.ref_runs})")
        if not 0 <= cfg.crop_jitter < 1:
            raise DpiqaError(f"--crop-jitter must be 0 (off) or a side fraction in (0, 1) (got {cfg.crop_jitter})")
        for name, value in (("--epochs", cfg.epochs), ("--batch-size", cfg.batch_size), ("--grad-accum", cfg.grad_accum)):
            if value < 1:
                raise DpiqaError(f"{name} must be at least 1 (got {value})")
        for name, value in (("--lr", cfg.lr), ("--head-lr", cfg.lr if cfg.head_lr is None else cfg.head_lr)):
            if not value > 0 or not math.isfinite(value):
                raise DpiqaError(f"{name} must be a positive number (got {value})")
        if cfg.precision not in PRECISIONS:
            raise DpiqaError(f"--precision must be one of {', '.join(PRECISIONS)} (got {cfg.precision!r})")
        cpu = not torch.cuda.is_available()
        if cpu and cfg.precision == "fp16":
            raise DpiqaError("--precision fp16 needs a GPU; use bf16 or fp32 on CPU")
        self.cfg, self.out = cfg, Path(cfg.out)
        if not cfg.resume and ((self.out / "state").exists() or (self.out / "best.safetensors").exists()):
            raise DpiqaError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        # find_unused_parameters: a score-only student never uses its feature head
        self.acc = Accelerator(mixed_precision=PRECISIONS[cfg.precision], gradient_accumulation_steps=cfg.grad_accum,
                               cpu=cpu, kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.main = self.acc.is_main_process
        df = load_table(cfg.dataset, cfg.root, **cfg.dataset_opts)
        self.scale = df.attrs.get("scale")
        self.split = resolve_split(df, cfg.split_seed, cfg.split_official, cfg.by_ref, self.out, cfg.val_frac,
                                   cfg.test_frac)
        if self.main:
            write_json(self.out / "split.json", self.split)
        by_id = df.set_index("id")
        self.parts = {p: by_id.loc[list(self.split[p])].reset_index() for p in ("train", "val", "test")}
        self.input_size = int(cfg.image_size or input_size)
        if cfg.image_size is not None and cfg.image_size < 32:
            raise DpiqaError(f"--image-size must be at least 32 (got {cfg.image_size})")
        synthetic = bool(dataset_defaults(cfg.dataset).get("synthetic"))
        self.patches = synthetic if cfg.patches is None else bool(cfg.patches)
        if cfg.ref_runs > 1 and ("ref" not in df or df["ref"].isna().any()):
            raise DpiqaError(f"--ref-runs needs a reference image for every image; {cfg.dataset!r} has none")

    def train_batches(self, ds: TableDataset, epoch: int) -> list[list[int]]:
        """This process's batches of `epoch` over the train part (grouped by reference with --ref-runs)."""
        cfg, acc = self.cfg, self.acc
        groups = None
        if cfg.ref_runs > 1:
            refs = self.parts["train"]["ref"].astype(str).tolist()
            groups = [refs[i] for i in ds.item_image]
        return epoch_batches(len(ds), cfg.batch_size, cfg.seed, epoch, acc.process_index, acc.num_processes,
                             groups=groups, run=cfg.ref_runs)

    def dataset(self, part: str, train: bool = False, cache: torch.Tensor | None = None) -> TableDataset:
        t = self.parts[part]
        return TableDataset(t["path"].tolist(), t["mos"].tolist(), self.input_size, train=train,
                            seed=self.cfg.seed, cache=cache, patches=self.patches, crop_jitter=self.cfg.crop_jitter)

    def loader(self, ds, batches) -> DataLoader:
        # a private generator: creating an iterator must not draw from the global RNG (exact resume)
        return DataLoader(ds, batch_sampler=batches, num_workers=self.cfg.workers, generator=torch.Generator())


def to_device(acc, x: torch.Tensor) -> torch.Tensor:
    """Image batches go channels_last, like the model: measured 1.3-1.5x faster training steps with oneDNN on
    the CPU (Lite0, 512 px), and the layout cuDNN's fast convolution kernels want on CUDA."""
    x = x.to(acc.device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def metrics_of(pred: np.ndarray, mos: np.ndarray) -> dict:
    from dpiqa_cli.evaluate.metrics import compute_metrics

    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in compute_metrics(pred, mos).items()}


@torch.no_grad()
def predict(run: Run, model: torch.nn.Module, ds: TableDataset, batch_size: int) -> np.ndarray:
    """Scores of every image of `ds` in order (patch mean); ranks score a slice each and share the results."""
    from accelerate.utils import gather_object

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


class Logger:
    """log.jsonl (every field) + log.csv (fixed columns), appended across resumes; TensorBoard if installed."""

    def __init__(self, run_dir: Path, enabled: bool, keep_until: int | None = None):
        """keep_until None: a fresh run (old logs dropped); a step: a resume (rows after that step dropped,
        they belong to work the resumed run repeats)."""
        self.dir, self.enabled, self.tb = Path(run_dir), enabled, None
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = []
        if keep_until is not None and (self.dir / "log.jsonl").exists():
            rows = [r for r in map(json.loads, (self.dir / "log.jsonl").read_text().splitlines())
                    if r.get("step", 0) <= keep_until and r.get("kind") not in ("test", "error")]
        self.jsonl = open(self.dir / "log.jsonl", "w")
        self.csv_file = open(self.dir / "log.csv", "w", newline="")
        self.csv = csv.DictWriter(self.csv_file, LOG_COLUMNS, extrasaction="ignore")
        self.csv.writeheader()
        for r in rows:
            self.jsonl.write(json.dumps(r) + "\n")
            self.csv.writerow(r)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.dir / "tb"), purge_step=None if keep_until is None else keep_until + 1)
        except ImportError:  # optional dependency
            pass

    def __call__(self, row: dict) -> None:
        if self.enabled:
            self.jsonl.write(json.dumps(row, default=float) + "\n")
            self.jsonl.flush()
            self.csv.writerow(row)
            self.csv_file.flush()
            if self.tb is not None:
                for key, v in row.items():
                    if key not in ("kind", "step", "epoch") and isinstance(v, (int, float)) and math.isfinite(v):
                        self.tb.add_scalar(f"{row['kind']}/{key}", v, row.get("step", 0))

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.csv_file.close()
            if self.tb is not None:
                self.tb.close()


HEAD_MODULES = ("regressor.", "conv_transpose.")


def param_groups(model: torch.nn.Module, lr: float, head_lr: float | None) -> list[dict]:
    """Trainable parameters (the frozen VAE and frozen blocks stay out), the head in its own group.

    The regressor's first layer reads 32768 features: one Adam step moves its output by about
    lr x ||F||_1 (every weight moves by ~lr, coherently), so on small data a lower --head-lr keeps the score
    from jumping between batches. Default: one lr for everything, as in the paper.
    """
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
    t = {"step": 0, "epoch": 0, "batch_pos": 0, "best_srcc": None, "best_step": None, "sched_epoch": 0}
    if cfg.resume:
        t = load_state(out, net, opt)
        sched.last_epoch = t["sched_epoch"]  # lr itself comes back with the optimiser's param groups
    train_ds = run.dataset("train", train=True, cache=cache)
    n_batches = len(run.train_batches(train_ds, 0))
    if n_batches == 0:
        raise DpiqaError(f"the train split has fewer images ({len(train_ds)}) than processes ({acc.num_processes})")
    meta = {**info, "dataset": cfg.dataset, "mos_scale": run.scale, "train_config": _jsonable(asdict(cfg)),
            "split": {k: len(run.split[k]) for k in ("train", "val", "test")}, "input_size": run.input_size,
            "patches": run.patches}
    log = Logger(out, run.main, keep_until=t["step"] if cfg.resume else None)
    try:
        _train(run, model, net, opt, sched, loss_fn, train_ds, n_batches, t, log, spec_name, meta)
        result = {"run_dir": str(out), "step": t["step"], "epoch": t["epoch"], "best_val_srcc": t["best_srcc"],
                  "best_step": t["best_step"], "seconds": round(time.time() - t["t0"], 2)}
        result["test"] = evaluate_test(run, spec_name, meta)
        log({"kind": "test", "step": t["step"], "epoch": t["epoch"], "srcc": result["test"].get("srcc"),
             "plcc": result["test"].get("plcc"), "seconds": round(time.time() - t["t0"], 3)})
    except (DpiqaError, KeyboardInterrupt) as exc:  # the log says why the run stopped; checkpoints stay as they were
        log({"kind": "error", "step": t["step"], "epoch": t["epoch"], "message": str(exc) or type(exc).__name__})
        raise
    finally:
        log.close()
    if run.main:
        write_json(out / "result.json", result)  # written last: a run without it did not finish
    return result


def _train(run: Run, model, net, opt, sched, loss_fn: LossFn, train_ds: TableDataset, n_batches: int, t: dict,
           log: Logger, spec_name: str, meta: dict) -> None:
    from dpiqa_cli.checkpoint import save_checkpoint
    from dpiqa_cli.progress import progress_bar

    cfg, acc, out = run.cfg, run.acc, run.out
    val_ds = run.dataset("val")
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    t0 = t["t0"] = time.time()

    def check_finite(where: str) -> None:
        # a step can turn the weights to NaN/inf without a NaN loss yet: never checkpoint such weights
        bad = torch.tensor([0.0 if all(torch.isfinite(p).all() for p in net.parameters()) else 1.0], device=acc.device)
        if acc.reduce(bad, "sum").item() > 0:
            raise DpiqaError(f"training diverged at step {t['step']}: {where}; lower --lr (now {cfg.lr:g})")

    def validate(kind: str) -> None:
        check_finite("weights are not finite")
        pred = predict(run, net, val_ds, cfg.batch_size)
        if not np.isfinite(pred).all():
            raise DpiqaError(f"training diverged at step {t['step']}: validation scores are not finite; "
                             f"lower --lr (now {cfg.lr:g})")
        m = metrics_of(pred, np.asarray(val_ds.mos))
        srcc = m.get("srcc")
        log({"kind": kind, "step": t["step"], "epoch": t["epoch"], "srcc": srcc, "plcc": m.get("plcc"),
             "seconds": round(time.time() - t0, 3)})
        if srcc is not None and np.isfinite(srcc) and (t["best_srcc"] is None or srcc > t["best_srcc"]):
            t["best_srcc"], t["best_step"] = float(srcc), t["step"]
            if run.main:
                save_checkpoint(net, out / "best.safetensors", spec_name=spec_name,
                                info={**meta, "metrics": {"val": m}, "step": t["step"], "epoch": t["epoch"]})

    def checkpoint_state() -> None:
        acc.wait_for_everyone()
        if run.main:
            save_state(out, net, opt, {k: v for k, v in t.items() if k != "t0"} | {"sched_epoch": sched.last_epoch})

    stop = False
    bar = progress_bar(total=total, initial=t["step"], disable=cfg.quiet or not run.main, desc="train", unit="step")
    sums: dict[str, float] = {}
    while t["epoch"] < cfg.epochs and not stop:
        if cfg.max_steps is not None and t["step"] >= cfg.max_steps:
            break
        train_ds.set_epoch(t["epoch"])
        batches = run.train_batches(train_ds, t["epoch"])
        model.train()
        start = t["batch_pos"]  # batches of this epoch already consumed (resume)
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
                raise DpiqaError(f"training diverged at step {t['step'] + 1}: loss is {sums.get('loss')}; "
                                 f"lower --lr (now {cfg.lr:g}) or use --precision fp32")
            opt.step()
            opt.zero_grad(set_to_none=True)
            t["step"], t["batch_pos"] = t["step"] + 1, pos + 1
            log({"kind": "train", "step": t["step"], "epoch": t["epoch"], "lr": opt.param_groups[0]["lr"],
                 "seconds": round(time.time() - t0, 3), **{key: round(v, 6) for key, v in sums.items()}})
            bar.set_postfix(loss=f"{sums['loss']:.4f}", best=t["best_srcc"])
            bar.update(1)
            sums = {}
            if cfg.val_every and t["step"] % cfg.val_every == 0 and pos != n_batches - 1:
                validate("val")
                checkpoint_state()
            if cfg.max_steps is not None and t["step"] >= cfg.max_steps:
                stop = True
                break
        if not stop:  # epoch end: schedule, validate, keep state
            sched.step()
            t["epoch"], t["batch_pos"] = t["epoch"] + 1, 0
            validate("epoch")
        else:
            check_finite("weights are not finite")
        if run.main:
            info = {**meta, "step": t["step"], "epoch": t["epoch"], "metrics": {}}
            save_checkpoint(net, out / "last.safetensors", spec_name=spec_name, info=info)
            if cfg.keep_epochs and not stop:
                save_checkpoint(net, out / f"epoch-{t['epoch']}.safetensors", spec_name=spec_name, info=info)
        checkpoint_state()
    bar.close()
    if t["best_srcc"] is None:  # e.g. --max-steps before any validation (all ranks take part)
        validate("val")
    acc.wait_for_everyone()


def evaluate_test(run: Run, spec_name: str, meta: dict) -> dict:
    """Score the test split with best.safetensors and write RUN/test/ with the shared report writer."""
    from dpiqa_cli.checkpoint import load_checkpoint

    best = run.out / "best.safetensors"
    if not best.exists() or not run.split.get("test"):
        return {}
    model, _ = load_checkpoint(best, device=run.acc.device)
    ds = run.dataset("test")
    pred = predict(run, model, ds, run.cfg.batch_size)
    m = metrics_of(pred, np.asarray(ds.mos))
    if run.main:
        from dpiqa_cli.evaluate.report import write_report

        import pandas as pd

        table = pd.DataFrame({"path": ds.paths, "id": run.parts["test"]["id"], "score": pred, "mos": ds.mos})
        write_report(run.out / "test", {"model": spec_name, "checkpoint": str(best), "metrics": m, "table": table},
                     {**meta, "split_part": "test"})
    return m


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))
