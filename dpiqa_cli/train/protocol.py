"""What `train-teacher` and `distill` run: one training run, or with `--protocol` the paper's protocol, 5 seeds
(split and initial weights), each a full run in OUT/seed-N, then the median table (`protocol.json` and the
shared report)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dpiqa_cli.atomic import write_json
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate.metrics import aggregate
from dpiqa_cli.evaluate.report import write_report
from dpiqa_cli.train.distill import distill
from dpiqa_cli.train.options import TrainOptions, make_options
from dpiqa_cli.train.teacher import train_teacher

PROTOCOL_SEEDS = (0, 1, 2, 3, 4)


def run_protocol(cfg: TrainOptions, train) -> dict:
    """`train(cfg)` once per seed; returns the summary with the median of each test metric."""
    if cfg.split_official:
        raise DpiqaError("--protocol draws its own 5 random splits; drop --split official")
    command = "train-teacher" if cfg.kind == "teacher" else "distill"
    out = Path(cfg.out)
    per_seed = []
    for seed in PROTOCOL_SEEDS:
        r = train(replace(cfg, split=str(seed), seed=seed, out=out / f"seed-{seed}", protocol=False))
        per_seed.append({"seed": seed, **(r.get("test") or {})})
    table = aggregate([{k: v for k, v in m.items() if k != "seed"} for m in per_seed])
    summary = {"command": command, "seeds": list(PROTOCOL_SEEDS), "per_seed": per_seed, "median": table}
    write_json(out / "protocol.json", summary)
    write_report(out, {"protocol": summary, "metrics": {k: v["median"] for k, v in table.items()
                                                         if isinstance(v, dict) and "median" in v}},
                 {"command": command, "dataset": cfg.dataset})
    return summary


def run_training(kind: str, values: dict, quiet: bool = False) -> dict:
    """`dpiqa train-teacher` / `dpiqa distill`: option values -> one run, or the 5-seed protocol."""
    cfg = replace(make_options(kind, values), quiet=quiet)
    train = train_teacher if kind == "teacher" else distill
    return run_protocol(cfg, train) if cfg.protocol else train(cfg)
