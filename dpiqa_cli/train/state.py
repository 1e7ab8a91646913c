"""Resume state in RUN/state/: model (safetensors), optimiser, RNG (torch.save, read back weights_only), and
trainer.json (step, epoch, batches consumed, scheduler position, best so far). No foreign pickles are read.

The folder is replaced as a whole (state.tmp -> state), so a crash mid-save leaves the previous state intact.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from dpiqa_cli.errors import DpiqaError


def _rng_state() -> dict:
    np_state = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "python": random.getstate(),
           "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    v, gauss_next = s["python"][0], s["python"][2]
    random.setstate((v, tuple(s["python"][1]), gauss_next))
    name, keys, *rest = s["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_state(run_dir: Path, model: torch.nn.Module, optimizer, trainer: dict) -> None:
    from safetensors.torch import save_model

    final, tmp, old = Path(run_dir) / "state", Path(run_dir) / "state.tmp", Path(run_dir) / "state.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(_rng_state(), tmp / "rng.pt")
    (tmp / "trainer.json").write_text(json.dumps(trainer, indent=2, default=str))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_state(run_dir: Path, model: torch.nn.Module, optimizer) -> dict:
    """Restore model, optimiser and RNG in place; return trainer.json."""
    from safetensors.torch import load_model

    d = Path(run_dir) / "state"
    if not (d / "trainer.json").is_file():
        raise DpiqaError(f"--resume: no training state in {d} (was the run started with this --out?)")
    try:
        load_model(model, str(d / "model.safetensors"), strict=True)
        optimizer.load_state_dict(torch.load(d / "optimizer.pt", weights_only=True))
        _set_rng_state(torch.load(d / "rng.pt", weights_only=True))
        return json.loads((d / "trainer.json").read_text())
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise DpiqaError(f"--resume: training state in {d} is unreadable or does not match the model: "
                         f"{str(exc).splitlines()[0][:200]}") from None
