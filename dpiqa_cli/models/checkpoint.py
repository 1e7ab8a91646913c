"""Checkpoints: safetensors weights + a JSON config beside them (`checkpoint_config`). Nothing is unpickled.

A teacher checkpoint is self-contained (U-Net, VAE, adapters, heads, prompt embeddings), so scoring it
never needs the SD base weights or a text model, at the price of ~2.4 GB in fp16.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from dpiqa_cli.atomic import write_json, write_via
from dpiqa_cli.data.views import View, view_from_config
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint_config import FORMAT, config_path, read_config, sha256_file
from dpiqa_cli.models.registry import ModelSpec, checkpoint_spec, get_spec
from dpiqa_cli.models.resolve import resolve_model
from dpiqa_cli.version import __version__


@dataclass
class LoadedModel:
    model: nn.Module
    spec: ModelSpec  # the architecture's entry
    config: dict

    @property
    def input_size(self) -> int:
        return int(self.config.get("input_size") or self.spec.input_size)

    @property
    def view(self) -> View:
        return view_from_config(self.config, self.input_size)

    @property
    def lower_better(self) -> bool:
        return resolve_model(self).lower_better

    @property
    def score_range(self) -> tuple[float, float]:
        return resolve_model(self).score_range


def save_checkpoint(model: nn.Module, path: str | Path, *, spec_name: str | None = None, info: dict | None = None,
                    dtype: torch.dtype | None = None) -> Path:
    """Write `path` (.safetensors) and its .json config atomically; `dtype` (e.g. fp16) shrinks floats."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise DpiqaError(f"checkpoint path must end in .safetensors: {path}")
    spec = get_spec(spec_name or model.dpiqa_spec)
    state, seen = {}, set()
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        if v.data_ptr() in seen:  # safetensors refuses shared storage
            v = v.clone()
        seen.add(v.data_ptr())
        state[k] = v.contiguous()
    write_via(path, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT}))
    arch = getattr(model, "dpiqa_arch", spec.arch)
    config: dict[str, Any] = {
        "format": FORMAT, "model": spec.arch_name, "kind": spec.kind, "arch": arch,
        "input_size": spec.input_size, "feat_size": arch.get("feat_size", spec.feat_size),
        "prompts": arch.get("prompts") if spec.kind == "teacher" else None,
        "dataset": None, "mos_scale": None, "metrics": {},
    }
    config.update(info or {})
    # facts of this file win over `info`, so a loaded config can be passed back in as it is
    config.update(format=FORMAT, dtype=str(dtype or "float32").replace("torch.", ""), dpiqa_version=__version__,
                  created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), sha256=sha256_file(path))
    write_json(config_path(path), config)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", verify: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild the model from its config and load the weights (no pickle, sha256 checked)."""
    path, config = read_config(path)
    if verify and config.get("sha256") and sha256_file(path) != config["sha256"]:
        raise DpiqaError(f"checkpoint {path} is corrupt or was modified (sha256 differs from its .json)")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DpiqaError(f"checkpoint {path} is not a readable safetensors file: {exc}") from None
    spec = checkpoint_spec(config)
    # Fresh allocations: tensors viewed out of the file's buffer sit at unaligned offsets, and oneDNN/MKL
    # pick a different GEMM path for those, so outputs would differ from the saved model in the last bit.
    state = {k: v.to(torch.float32, copy=True) if v.is_floating_point() else v.clone() for k, v in state.items()}
    with torch.device("meta"):  # build without allocating, then adopt the loaded tensors
        model = spec.build(**config.get("arch", {}))
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise DpiqaError(f"checkpoint {path} does not match its architecture: {' '.join(first[:2])[:300]}") from None
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        raise DpiqaError(f"checkpoint {path} lacks some tensors of {spec.name}")
    return model.to(device).eval(), config


def average_checkpoints(paths: list[str | Path]) -> tuple[nn.Module, dict]:
    """Uniform weight average of checkpoints of one architecture: floating tensors (BatchNorm statistics too)
    in fp32, integer buffers and the config from the last one, the sources under `averaged_from`."""
    if not paths:
        raise DpiqaError("nothing to average: no checkpoints given")
    model, config = load_checkpoint(paths[0])
    total = {k: v.clone() for k, v in model.state_dict().items()}
    for path in paths[1:]:
        other, other_config = load_checkpoint(path)
        if (other_config.get("model"), other_config.get("arch")) != (config.get("model"), config.get("arch")):
            raise DpiqaError(f"cannot average {path} with {paths[0]}: different models or architectures")
        config = other_config
        for k, v in other.state_dict().items():
            total[k] = total[k] + v if v.is_floating_point() else v.clone()
    n = len(paths)
    model.load_state_dict({k: v / n if v.is_floating_point() else v for k, v in total.items()})
    return model, {**config, "averaged_from": [str(p) for p in paths]}


def load_model(model: str | None = None, weights: str | Path | None = None,
               device: str | torch.device = "cpu") -> LoadedModel:
    """What `resolve_model` names (registry name, checkpoint, --weights; no name: the default scorer) as a
    ready, eval-mode torch model."""
    return load_resolved(resolve_model(model, weights), device)


def load_resolved(resolved, device: str | torch.device = "cpu") -> LoadedModel:
    """A `ResolvedModel` as a ready, eval-mode torch model."""
    if resolved.loaded is not None:
        return resolved.loaded
    if resolved.graph is not None:
        raise DpiqaError(f"{resolved.graph} is an ONNX graph; a torch model needs a checkpoint (.safetensors)")
    resolved.require_weights()
    if resolved.checkpoint is not None:
        net, config = load_checkpoint(resolved.checkpoint, device)
        return LoadedModel(net, checkpoint_spec(config), config)
    spec = resolved.spec  # a random `tiny-*` entry
    with torch.random.fork_rng(devices=[]):  # the same random weights in every process
        torch.manual_seed(0)
        net = spec.build()
    return LoadedModel(net.to(device).eval(), spec, resolved.config)
