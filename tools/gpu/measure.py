#!/usr/bin/env python3
"""Real-size speed, memory and agreement measurements for a GPU, in one call.

Random weights at the real sizes (SD v1.5 teacher, B7 student, lite0 default): no downloads needed.
Writes one JSON (and prints tables) with:
  - model-only inference: images/s, latency, peak memory for batch sizes x fp32/bf16 x eager/compile
    x channels_last on/off;
  - training steps: the teacher at batch 12 (bf16, with/without gradient checkpointing) and one
    distillation step of the B7 student at batch 24;
  - agreement: CUDA vs CPU scores on the same inputs (fp32 and bf16).
`--smoke` runs the same code paths with the tiny registry models on the CPU (CI keeps it from rotting).
End-to-end (JPEG decode included) numbers come from `dpiqa bench --speed`; see tools/gpu/bench.sh.

    python -m tools.gpu.measure [--smoke] [--only agreement,train,inference] [--out OUT.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from dpiqa_cli.models.registry import get_spec
from dpiqa_cli.train.losses import score_loss, student_loss


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def build(name: str, device: torch.device, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_spec(name).build().to(device)


def time_inference(model, size, batch, device, precision, compile_, channels_last, iters, warmup):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().to(memory_format=fmt)
    fn = torch.compile(model) if compile_ else model
    x = torch.rand(batch, 3, size, size, device=device).to(memory_format=fmt)
    dtype = torch.bfloat16 if precision == "bf16" else None
    reset_peak(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for _ in range(warmup):
            fn(x)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            fn(x)
        sync(device)
    dt = (time.perf_counter() - t0) / iters
    return {"batch": batch, "precision": precision, "compile": compile_, "channels_last": channels_last,
            "latency_ms": dt * 1e3, "images_per_s": batch / dt, "peak_gib": peak_gib(device)}


def inference_grid(args, device) -> list[dict]:
    rows = []
    for name in args.models:
        spec = get_spec(name)
        model = build(name, device)
        for batch in args.batch_sizes:
            for precision in args.precisions:
                for compile_ in args.compile:
                    for cl in args.channels_last:
                        try:
                            r = time_inference(model, spec.input_size, batch, device, precision, compile_, cl,
                                               args.iters, args.warmup)
                        except torch.OutOfMemoryError:
                            r = {"batch": batch, "precision": precision, "compile": compile_,
                                 "channels_last": cl, "error": "out of memory"}
                        r["model"] = name
                        rows.append(r)
                        print(json.dumps(r), flush=True)
        del model
        reset_peak(device)
    return rows


def train_step_stats(name, batch, device, precision, grad_ckpt, teacher_name=None, steps=3) -> dict:
    spec = get_spec(name)
    model = build(name, device).train()
    if grad_ckpt and hasattr(model, "unet"):
        model.unet.enable_gradient_checkpointing()
    elif grad_ckpt and hasattr(model, "backbone"):
        model.backbone.set_grad_checkpointing(True)
    teacher = build(teacher_name, device).eval() if teacher_name else None
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    x = torch.rand(batch, 3, spec.input_size, spec.input_size, device=device)
    y = torch.rand(batch, device=device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    reset_peak(device)
    times = []
    try:
        for _ in range(steps):
            sync(device)
            t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=precision == "bf16"):
                if teacher is not None:
                    with torch.inference_mode():
                        _, f_t = teacher(x)
                    f_t = f_t.clone()
                    pred, f_s = model(x)
                    loss = student_loss(pred.squeeze(1).float(), y, f_s.float(), f_t.float())
                else:
                    pred, _ = model(x)
                    loss = score_loss(pred.squeeze(1).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sync(device)
            times.append(time.perf_counter() - t0)
    except torch.OutOfMemoryError:
        return {"model": name, "batch": batch, "grad_checkpointing": grad_ckpt, "error": "out of memory"}
    finally:
        del model, teacher, opt
    return {"model": name, "teacher": teacher_name, "batch": batch, "precision": precision,
            "grad_checkpointing": grad_ckpt, "step_s_first": times[0], "step_s": min(times[1:] or times),
            "peak_gib": peak_gib(device)}


def agreement(name: str, device: torch.device, batch: int = 4) -> dict:
    spec = get_spec(name)
    cpu_model = build(name, torch.device("cpu")).eval()
    x = torch.rand(batch, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = cpu_model(x)[0].squeeze(1)
        dev_model = cpu_model.to(device)
        out32 = dev_model(x.to(device))[0].squeeze(1).float().cpu()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out16 = dev_model(x.to(device))[0].squeeze(1).float().cpu()
    return {"model": name, "fp32_max_abs_diff": float((out32 - ref).abs().max()),
            "bf16_max_abs_diff": float((out16 - ref).abs().max()), "score_std": float(ref.std())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("gpu_measure.json"))
    ap.add_argument("--smoke", action="store_true", help="tiny models on the CPU: checks the script, measures nothing")
    ap.add_argument("--only", default="inference,train,agreement")
    ap.add_argument("--models", default="student-lite0,student-b7,teacher", help="inference grid models")
    ap.add_argument("--batch-sizes", default="1,8,16,32,64")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile half of the grid")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if args.smoke:
        args.models, args.batch_sizes, args.precisions = ["tiny-student", "tiny-teacher"], [1, 2], ["fp32"]
        args.compile, args.channels_last, args.iters, args.warmup = [False], [False, True], 2, 1
        train = [("tiny-teacher", 2, "fp32", False, None), ("tiny-teacher", 2, "fp32", True, None),
                 ("tiny-student", 2, "fp32", False, "tiny-teacher")]
        agree = ["tiny-student"]
    else:
        if device.type != "cuda":
            sys.exit("no CUDA device: run with --smoke on the CPU")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        models, batches = args.models.split(","), [int(b) for b in args.batch_sizes.split(",")]
        args.models, args.batch_sizes = models, batches
        args.precisions, args.channels_last = ["fp32", "bf16"], [False, True]
        args.compile = [False] if args.no_compile else [False, True]
        args.iters, args.warmup = 10, 3
        train = [("teacher", 12, "bf16", False, None), ("teacher", 12, "bf16", True, None),
                 ("student-b7", 24, "bf16", False, "teacher")]
        agree = ["student-lite0", "student-b7", "teacher"]
    result = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (smoke)",
              "torch": torch.__version__}
    parts = set(args.only.split(","))
    if "agreement" in parts:
        result["agreement"] = [agreement(n, device) for n in agree]
        print(json.dumps(result["agreement"]), flush=True)
    if "train" in parts:
        result["train"] = []
        for name, batch, prec, ckpt, teacher in train:
            r = train_step_stats(name, batch, device, prec, ckpt, teacher)
            result["train"].append(r)
            print(json.dumps(r), flush=True)
            reset_peak(device)
    if "inference" in parts:
        result["inference"] = inference_grid(args, device)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
