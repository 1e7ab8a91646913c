"""Estimate the memory to train a DP-IQA model (default: the real-size teacher, batch 12, 512 px) on one GPU.

Method (CPU only, nothing is allocated: the model is built and run on PyTorch's `meta` device):
- parameters, split into trainable (requires_grad) and frozen (the VAE, the U-Net's unused output head),
  counted from the registry's architecture; the CLIP text tower is not part of training (its prompt
  embeddings are a fixed buffer) and is left out;
- weights fp32 (4 B/param, all of them), gradients fp32 (4 B/trainable), Adam exp_avg + exp_avg_sq
  (8 B/trainable): mixed precision (autocast) keeps fp32 master weights, so these do not shrink with bf16;
- activations: one forward pass under `torch.autograd.graph.saved_tensors_hooks` sums the bytes of every
  distinct storage autograd saves for the backward pass (parameters excluded: counted above). On `meta` the
  attention runs as a fused SDPA kernel, which keeps O(tokens) per head, as flash/memory-efficient attention
  does on a GPU. fp32 is measured; bf16 is measured with the model cast to bf16 (a lower bound for
  autocast, which keeps norms/softmax in fp32);
- gradient checkpointing (diffusers `enable_gradient_checkpointing`): the hooks then see only tensors saved
  outside checkpointed blocks; the inputs each checkpointed block keeps for its recomputation are added
  (forward pre-hooks), plus the largest single block's activations (recomputed during backward).
Not modelled: the CUDA context (~0.5 GiB), allocator fragmentation, temporary buffers inside kernels
(cuDNN workspaces), the peak inside the backward pass beyond the saved tensors. Confirm on a GPU with
`scripts/gpu_measure.py --only train` (measured peak).

    python scripts/estimate_train_memory.py [--model teacher] [--batch 12] [--size 512] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import dpiqa_cli  # noqa: E402,F401  (torchvision compatibility first)
from dpiqa_cli.registry import get_spec  # noqa: E402

GIB = 2 ** 30


def _sid(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata  # the StorageImpl: views of one storage count once


def _nbytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


def saved_activation_bytes(model: torch.nn.Module, x: torch.Tensor, ckpt_modules=()) -> dict:
    """Bytes autograd keeps for backward after one forward (+ the inputs checkpointed blocks keep)."""
    skip = {_sid(p) for p in list(model.parameters()) + list(model.buffers())}
    saved: dict[int, int] = {}
    kept: dict[int, int] = {}
    per_block: list[int] = []

    def pack(t):
        if isinstance(t, torch.Tensor) and _sid(t) not in skip:
            saved[_sid(t)] = _nbytes(t)
        return t

    def pre(_m, args, kwargs):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, torch.Tensor) and _sid(a) not in skip:  # kept alive for the recomputation
                kept[_sid(a)] = _nbytes(a)

    handles = [m.register_forward_pre_hook(pre, with_kwargs=True) for m in ckpt_modules]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    for h in handles:
        h.remove()
    if ckpt_modules:  # the biggest block's own saved tensors exist again while it is recomputed
        for m in ckpt_modules:
            block: dict[int, int] = {}

            def pack_b(t, block=block):
                if isinstance(t, torch.Tensor) and _sid(t) not in skip:
                    block[_sid(t)] = _nbytes(t)
                return t

            args = _block_inputs.get(id(m))
            if args is None:
                continue
            with torch.autograd.graph.saved_tensors_hooks(pack_b, lambda t: t):
                m(*args[0], **args[1])
            per_block.append(sum(block.values()))
    return {"saved": sum(saved.values()), "checkpoint_inputs": sum(v for k, v in kept.items() if k not in saved),
            "largest_block": max(per_block, default=0)}


_block_inputs: dict[int, tuple] = {}


def checkpointed_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules diffusers wraps in torch.utils.checkpoint: every resnet/attention of the U-Net's blocks."""
    unet = model.unet
    out = []
    for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks]:
        for name in ("resnets", "attentions"):
            out += list(getattr(block, name, None) or [])
    return out


def record_block_inputs(model: torch.nn.Module, x: torch.Tensor, blocks) -> None:
    def pre(m, args, kwargs):
        _block_inputs[id(m)] = (tuple(args), dict(kwargs))

    handles = [m.register_forward_pre_hook(pre, with_kwargs=True) for m in blocks]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()


def estimate(model_name: str, batch: int, size: int | None) -> dict:
    spec = get_spec(model_name)
    size = size or spec.input_size
    with torch.device("meta"):
        model = spec.build().train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    buffers = sum(b.numel() for b in model.buffers())
    x = torch.empty(batch, 3, size, size, device="meta")
    static = 4 * (trainable + frozen + buffers) + 4 * trainable + 8 * trainable  # weights, grads, Adam m and v
    out = {"model": model_name, "batch": batch, "size": size, "params_trainable": trainable,
           "params_frozen": frozen, "buffers": buffers,
           "weights_gib": 4 * (trainable + frozen + buffers) / GIB, "grads_gib": 4 * trainable / GIB,
           "adam_gib": 8 * trainable / GIB, "static_gib": static / GIB, "runs": []}
    for dtype in (torch.float32, torch.bfloat16):
        model = model.to(dtype)
        xd = x.to(dtype)
        for ckpt in (False, True) if spec.kind == "teacher" else (False,):
            blocks = []
            if ckpt:
                model.unet.enable_gradient_checkpointing()
                blocks = checkpointed_blocks(model)
                model.unet.disable_gradient_checkpointing()
                record_block_inputs(model, xd, blocks)
                model.unet.enable_gradient_checkpointing()
            try:
                act = saved_activation_bytes(model, xd, blocks)
            finally:
                if spec.kind == "teacher":
                    model.unet.disable_gradient_checkpointing()
                _block_inputs.clear()
            act_total = act["saved"] + act["checkpoint_inputs"] + act["largest_block"]
            out["runs"].append({"dtype": str(dtype).replace("torch.", ""), "grad_checkpointing": ckpt,
                                "activations_gib": act_total / GIB, **{k + "_gib": v / GIB for k, v in act.items()},
                                "total_gib": (static + act_total) / GIB})
    return out


def markdown(r: dict) -> str:
    lines = [f"`{r['model']}`, batch {r['batch']}, {r['size']}x{r['size']}: "
             f"{r['params_trainable'] / 1e6:.1f} M trainable + {r['params_frozen'] / 1e6:.1f} M frozen parameters, "
             f"{r['buffers'] / 1e6:.2f} M buffer values.", "",
             "| activations dtype | grad. checkpointing | weights | grads | Adam | activations | **total** |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for run in r["runs"]:
        lines.append(f"| {run['dtype']} | {'yes' if run['grad_checkpointing'] else 'no'} | {r['weights_gib']:.2f} | "
                     f"{r['grads_gib']:.2f} | {r['adam_gib']:.2f} | {run['activations_gib']:.2f} | "
                     f"**{run['total_gib']:.2f}** |")
    return "\n".join(lines) + "\n\n(GiB)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="teacher")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    r = estimate(args.model, args.batch, args.size)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    print(markdown(r))


if __name__ == "__main__":
    main()
