"""Building blocks of the DP-IQA heads: text adapter, SE layer, quality feature decoder, regressor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def he_init(*modules: nn.Module) -> None:
    """He (Kaiming) init, zero bias: under PyTorch's default the QFD's output barely depends on the image at
    the start, so almost no gradient reaches the U-Net (docs/design.md)."""
    for m in modules:
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class TextAdapter(nn.Module):
    """C = E + gamma * MLP(E); gamma starts tiny (1e-4) so training begins from the raw CLIP prompts."""

    def __init__(self, dim: int = 768, gamma_init: float = 1e-4):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), gamma_init))

    def forward(self, embeds: torch.Tensor, batch: int) -> torch.Tensor:
        cond = embeds + self.gamma * self.mlp(embeds)
        return cond.unsqueeze(0).expand(batch, -1, -1)


class SELayer(nn.Module):
    """Squeeze-and-excitation; bias-free linears as in the released decoder (so weights import 1:1)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, channels, bias=False), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean(dim=(2, 3)))
        return x * w[:, :, None, None]


class QualityFeatureDecoder(nn.Module):
    """Fuse the four up-block maps into F_quality (feat_channels x feat_size^2): per map bicubic resize and
    Conv3x3 + SE, concatenation, Conv3x3 + SE, then 1x1 convs width -> width/4 -> width/16 -> 8 with ReLU."""

    def __init__(self, in_channels=(320, 640, 1280, 1280), width: int = 512, feat_channels: int = 8,
                 feat_size: int = 64, reduction: int = 16):
        super().__init__()
        self.feat_size = feat_size
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 3, padding=1), SELayer(width, reduction)) for c in in_channels
        )
        self.fuse = nn.Sequential(nn.Conv2d(width * len(in_channels), width, 3, padding=1), SELayer(width, reduction))
        mid1, mid2 = width // 4, width // 16
        self.head = nn.Sequential(
            nn.Conv2d(width, mid1, 1), nn.ReLU(), nn.Conv2d(mid1, mid2, 1), nn.ReLU(),
            nn.Conv2d(mid2, feat_channels, 1), nn.ReLU(),
        )
        he_init(*(m for m in self.modules() if isinstance(m, nn.Conv2d)))

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        size = (self.feat_size, self.feat_size)
        parts = [
            branch(F.interpolate(m, size=size, mode="bicubic", align_corners=False))
            for branch, m in zip(self.branches, maps)
        ]
        return self.head(self.fuse(torch.cat(parts, dim=1)))


class Regressor(nn.Module):
    """Flatten the feature map, then Linear -> ReLU -> Linear -> ReLU -> Linear(1)."""

    def __init__(self, in_features: int, hidden: int = 512):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 1)  # default init: small initial scores
        he_init(self.fc1, self.fc2)
        self.rowwise = True  # eval: one-row products; an ONNX export turns it off (see `_rowwise_linear`)

    @torch.no_grad()
    def start_at(self, score: float) -> None:
        """Predict `score` for every input at first (fc3 weight 0, bias = score), so that a pretrained
        backbone's random head does not start from scores spread over several units; every layer still trains."""
        nn.init.zeros_(self.fc3.weight)
        nn.init.constant_(self.fc3.bias, float(score))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        layer = _rowwise_linear if self.rowwise and not self.training else F.linear
        x = torch.relu(layer(feat.flatten(1), self.fc1.weight, self.fc1.bias))
        x = torch.relu(layer(x, self.fc2.weight, self.fc2.bias))
        return layer(x, self.fc3.weight, self.fc3.bias)


def _rowwise_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x @ W.T + b as one-row products: CPU GEMM rounds a row by its place in the batch, and a score must not
    depend on its batch mates (~1 % of a Lite0 forward; training keeps the batched GEMM)."""
    b = x.shape[0]
    out = torch.baddbmm(bias.expand(b, 1, -1), x.unsqueeze(1), weight.t().unsqueeze(0).expand(b, -1, -1))
    return out.squeeze(1)
