"""A run's log: log.jsonl (every field) and log.csv (fixed columns), appended across resumes; TensorBoard too
when it is installed."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

LOG_COLUMNS = ["kind", "step", "epoch", "loss", "loss_score", "loss_feat", "lr", "srcc", "plcc", "seconds", "message"]


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
        try:  # optional dependency
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.dir / "tb"), purge_step=None if keep_until is None else keep_until + 1)
        except ImportError:
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
