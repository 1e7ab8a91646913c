"""Resume state in RUN/state/, written by Accelerate's `save_state` and read by its `load_state`
(model, optimiser, every process's RNG, loaded with `weights_only=True`).

Our own counters (step, epoch, batches consumed, scheduler epoch, best validation score) go to
`trainer.json` beside them: plain JSON, because Accelerate unpickles custom objects with
`weights_only=False`. The folder is replaced as a whole (state.tmp -> state), so a crash mid-save leaves
the previous state intact.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dpiqa_cli.errors import DpiqaError

EMA_FILE = "ema.safetensors"


@dataclass
class TrainerState:
    """Where a run has got to: what `trainer.json` holds (`t0`, the wall clock of this process, is not saved)."""

    step: int = 0
    epoch: int = 0
    batch_pos: int = 0  # batches of the current epoch already consumed
    best_srcc: float | None = None
    best_step: int | None = None
    sched_epoch: int = 0  # the scheduler's last_epoch
    t0: float = field(default=0.0, compare=False)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "t0"}

    @classmethod
    def from_json(cls, data: dict) -> "TrainerState":
        known = {f.name for f in fields(cls)} - {"t0"}
        return cls(**{k: v for k, v in data.items() if k in known})


def save_state(acc, run_dir: Path, trainer: TrainerState, ema=None) -> None:
    """Every process calls this (each writes its own RNG file); the main process swaps the folder in."""
    final, tmp, old = Path(run_dir) / "state", Path(run_dir) / "state.tmp", Path(run_dir) / "state.old"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp), safe_serialization=True)
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / "trainer.json").write_text(json.dumps(trainer.to_json(), indent=2, default=str))
        if ema is not None:
            ema.save(tmp / EMA_FILE)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def load_state(acc, run_dir: Path) -> TrainerState:
    """Restore model, optimiser and this process's RNG in place; return where the run had got to."""
    d = Path(run_dir) / "state"
    if not (d / "trainer.json").is_file():
        raise DpiqaError(f"--resume: no training state in {d} (was the run started with this --out?)")
    try:
        acc.load_state(str(d))
        return TrainerState.from_json(json.loads((d / "trainer.json").read_text()))
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise DpiqaError(f"--resume: training state in {d} is unreadable or does not match the model: "
                         f"{str(exc).splitlines()[0][:200]}") from None
