"""The torch runner of scoring (`scoring.runner.Runner`): eager or torch.compile, fp32 or autocast, channels_last."""
from __future__ import annotations

import logging

import numpy as np
import torch

from dpiqa_cli.device import torch_dtype
from dpiqa_cli.scoring.runner import Runner

log = logging.getLogger(__name__)


class TorchRunner(Runner):
    runtime = "torch"

    def __init__(self, loaded, device, precision: str, compile: bool = False, name: str = "", view=None):
        device = torch.device(device)
        spec, config = loaded.spec, loaded.config
        big = spec.kind == "teacher"
        # CPU: small batches measured fastest at 512 px (activations stay in cache; BENCHMARKS.md)
        default = (16 if big else 64) if device.type == "cuda" else (1 if big else 2)
        super().__init__(name or spec.name, view or loaded.view, config.get("mos_scale"), default, precision,
                         calibration=config.get("calibration"))
        self.device, self.dtype = device, torch_dtype(precision)
        # channels_last: faster with cuDNN, and measured 1.6-2x faster with oneDNN on the CPU too (BENCHMARKS.md)
        self.channels_last = device.type in ("cuda", "cpu")
        model = loaded.model.to(device).eval()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.eager = model
        self.model = torch.compile(model) if compile else model
        self.compiled = compile

    def _forward(self, model, x):
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.dtype,
                                                    enabled=self.precision != "fp32"):
            score, _ = model(x)
        return score

    def __call__(self, x) -> np.ndarray:
        n = len(x)
        x = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        if pad := self.padding(n):  # torch.compile then also sees one static shape
            x = torch.cat([x, x.new_zeros((pad,) + tuple(x.shape[1:]))])
        x = x.to(self.device, non_blocking=True)
        x = x.float().div_(255.0)  # keeps the channels_last strides the collate produced
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        try:
            score = self._forward(self.model, x)
        except Exception as exc:
            if not self.compiled:
                raise
            log.warning("torch.compile failed (%s); falling back to eager mode", str(exc).splitlines()[0][:200])
            self.model, self.compiled = self.eager, False
            score = self._forward(self.model, x)
        return score.float().reshape(len(x), -1)[:n, 0].cpu().numpy()
