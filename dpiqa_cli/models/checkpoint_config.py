"""The checkpoint config: the JSON beside every `x.safetensors` (registry name, architecture, view, training
dataset and MOS scale, metrics, package version, sha256). Reading it needs no torch, so the registry and
the reports use it without loading a network."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dpiqa_cli.errors import DpiqaError

FORMAT = "dpiqa-checkpoint/1"
ONNX_FORMAT = "dpiqa-onnx/1"  # the .json beside a graph `dpiqa export` writes
# Training labels that are not human opinion scores: `dpiqa synth`'s MS-SSIM labels (the bundled model's).
SYNTHETIC_LABELS = {"synth"}


def is_mos_scale(scale: dict | None) -> bool:
    """Whether a checkpoint's `mos_scale` is a MOS scale its scores map back onto (`score`'s `mos` column);
    not for a model trained on synthetic labels, whose scores are no MOS."""
    return isinstance(scale, dict) and scale.get("name") not in SYNTHETIC_LABELS


def scores_meaning(config: dict | None) -> str:
    """What a checkpoint's scores are, in words (`dpiqa models` says it for each entry)."""
    scale = (config or {}).get("mos_scale")
    if is_mos_scale(scale):
        lo, hi = (("?" if v is None else f"{v:g}") for v in (scale.get("min"), scale.get("max")))
        flip = ", lower is better there" if scale.get("lower_better") else ""
        return (f"normalised MOS of {scale.get('name')} in [0, 1], higher is better; the mos column maps it "
                f"back to {lo}..{hi}{flip}")
    if isinstance(scale, dict):
        return "in [0, 1], higher is better; trained on synthetic labels, so not MOS (no mos column)"
    return "in [0, 1], higher is better; no MOS scale recorded (no mos column)"



def config_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_json_config(cfg: Path, fmt: str, required: bool = True) -> dict:
    """A JSON config of format `fmt`; with required=False, a missing or foreign file gives {}."""
    cfg = Path(cfg)
    if not cfg.is_file():
        if required:
            raise DpiqaError(f"checkpoint config missing: {cfg} (a dpiqa checkpoint is a .safetensors plus its .json)")
        return {}
    try:
        config = json.loads(cfg.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        if not required:
            return {}
        raise DpiqaError(f"checkpoint config {cfg} is unreadable: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != fmt:
        if not required:
            return {}
        raise DpiqaError(f"{cfg} is not a dpiqa checkpoint config (expected format {fmt})")
    return config


def read_config(path: str | Path) -> tuple[Path, dict]:
    """(the .safetensors path, its config) of a checkpoint named by either file."""
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if path.suffix in {".pth", ".pt", ".bin", ".ckpt"}:
        raise DpiqaError(f"{path} is a PyTorch pickle; convert it first with `dpiqa import-weights {path} --kind ...`")
    if not path.is_file():
        raise DpiqaError(f"checkpoint not found: {path}")
    return path, read_json_config(config_path(path), FORMAT)
