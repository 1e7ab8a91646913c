"""`--ema DECAY`: an exponential moving average of the weights, kept beside the model during training.

A short fine-tune's last iterate depends on its last few hundred batches; the recent average is steadier.
timm's `ModelEmaV3` keeps it (BatchNorm statistics included); it never feeds back into training.
"""
from __future__ import annotations

from dpiqa_cli import _tv_compat  # noqa: F401  (before timm or diffusers: it fixes torchvision's import)

# isort: split
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from timm.utils.model_ema import ModelEmaV3

from dpiqa_cli.errors import DpiqaError


class WeightEma:
    """The average (`.model`, never trained) and its save/load for the resume state."""

    def __init__(self, net: torch.nn.Module, decay: float):
        self.ema = ModelEmaV3(net, decay=decay)
        self.model = self.ema.module.requires_grad_(False)

    def update(self, net: torch.nn.Module) -> None:
        self.ema.update(net)

    def save(self, path: Path) -> None:
        # cloned: safetensors refuses tensors that share storage
        save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in self.model.state_dict().items()}, str(path))

    def load(self, path: Path) -> None:
        if not path.is_file():
            raise DpiqaError(f"--resume: {path} is missing; the run was started without --ema or its state is torn")
        try:
            self.model.load_state_dict(load_file(str(path)))
        except RuntimeError:
            raise DpiqaError(f"--resume: {path} does not match the model") from None
