#!/usr/bin/env python3
"""INTERIM bundled model: frozen ImageNet Lite0 backbone + DP-IQA student head trained on synth labels.

This is how weights/dpiqa-student-lite0-synth.safetensors was produced while `dpiqa distill` was not
yet available. It does NOT meet issue #6's held-out acceptance test (tests/acceptance); see
weights/README.md. The intended rebuild is scripts/build_default_model.sh (`dpiqa distill --no-teacher`).

    python scripts/default_model_photos.py runs/dm/photos
    dpiqa synth runs/dm/photos runs/dm/synth --seed 0
    python scripts/interim_default_model.py runs/dm/synth weights/dpiqa-student-lite0-synth.safetensors
(~6 min of feature extraction and ~3 min of head training on 2 CPU cores.)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dpiqa_cli  # noqa: E402,F401
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dpiqa_cli.checkpoint import save_checkpoint  # noqa: E402
from dpiqa_cli.data.images import decode_image  # noqa: E402
from dpiqa_cli.registry import get_spec  # noqa: E402


def score_loss(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    i, j = torch.triu_indices(len(t), len(t), 1)
    margin = 0.25 * t.std(unbiased=False)
    rank = torch.clamp(-torch.sign(t[i] - t[j]) * (p[i] - p[j]) + margin, min=0).mean()
    return F.mse_loss(p, t) + rank


def main(root: str, out: str, lr: float = 3e-4, epochs: int = 25) -> None:
    torch.manual_seed(0)
    df = pd.read_csv(Path(root) / "synth.csv")
    model = get_spec("student-lite0").build(pretrained=True).eval()
    with torch.inference_mode():  # the backbone is frozen, so its features are computed once
        feats = [model.backbone.forward_features(torch.stack([decode_image(Path(root) / p, 512, None)[0]
                                                              for p in df.path[i:i + 16]])).half()
                 for i in range(0, len(df), 16)]
    feats, y = torch.cat(feats), torch.tensor(df.mos.values, dtype=torch.float32)
    params = list(model.conv_transpose.parameters()) + list(model.regressor.parameters())
    opt = torch.optim.Adam(params, lr=lr)

    def head(f):
        fm = F.interpolate(torch.relu(model.conv_transpose(f.float())), size=(64, 64), mode="nearest")
        return model.regressor(fm).squeeze(1)

    for epoch in range(epochs):
        perm, total = torch.randperm(len(y)), 0.0
        for k in range(0, len(perm), 32):
            b = perm[k:k + 32]
            loss = score_loss(head(feats[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        print(f"epoch {epoch}: loss {total / len(y):.4f}", flush=True)
    info = {"dataset": "dpiqa synth of scikit-image photos", "interim": True,
            "mos_scale": {"name": "synth", "min": 0.0, "max": 1.0, "lower_better": False}}
    save_checkpoint(model, out, spec_name="student-lite0", info=info, dtype=torch.float16)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
