"""An exponential moving average of the weights, kept beside the model during training (`--ema DECAY`).

A short fine-tune's last iterate depends on its last few hundred batches: two seeds of one recipe can end
far apart. The average of the recent iterates is a steadier estimate of where the run has got to (Polyak
averaging; the EMA kept by timm's and many detectors' recipes). Floating tensors, BatchNorm statistics
included, follow ema = decay * ema + (1 - decay) * weight after every optimiser step; integer buffers are
copied. It never feeds back into training, so the run's own weights are bit for bit those of a run without it.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dpiqa_cli.errors import DpiqaError


class WeightEma:
    def __init__(self, net: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(net).eval().requires_grad_(False)
        # frozen weights never move, so their average is themselves: only these tensors are updated
        kept = self.model.state_dict()
        names = [k for k, p in net.named_parameters() if p.requires_grad] + [k for k, _ in net.named_buffers()]
        self.moving = [k for k in names if k in kept]  # non-persistent buffers are not in a state dict

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        live, own = net.state_dict(), self.model.state_dict()
        for k in self.moving:
            e = own[k]
            if e.is_floating_point():
                e.lerp_(live[k].detach(), 1.0 - self.decay)
            else:
                e.copy_(live[k])

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
