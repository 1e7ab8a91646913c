"""Convert the authors' released PyTorch state dicts (RomGai/DP-IQA) into dpiqa checkpoints.

The .pth files are read with `torch.load(weights_only=True)`, which refuses any pickle that would run
code; they are then renamed into our modules and every missing or unexpected key is reported.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from dpiqa_cli.data.catalog import canonical, dataset_info
from dpiqa_cli.data.splits import RECORD, official_record
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint import save_checkpoint
from dpiqa_cli.models.prompts import build_prompts
from dpiqa_cli.models.registry import get_spec
from dpiqa_cli.models.student import map_state_dict_by_order
from dpiqa_cli.models.teacher import compute_prompt_embeddings

log = logging.getLogger(__name__)

# Released decoder modules that its forward never uses (a BatchNorm and a 24-way distortion classifier).
TEACHER_UNUSED = ("QFD.bnc1.", "QFD.classifier_dist.")
# What the authors released: the paper's architectures.
DEFAULT_ENTRY = {"student": "student-b7", "teacher": "teacher"}
# Old diffusers named the VAE attention projections differently; current diffusers expects these.
_OLD_ATTN = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def read_torch_state_dict(src: Path) -> dict[str, torch.Tensor]:
    src = Path(src)
    if not src.is_file():
        raise DpiqaError(f"file not found: {src}")
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for code-carrying pickles, others for corrupt files
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DpiqaError(f"refused to load {src}: not a plain tensor state dict ({reason})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DpiqaError(f"{src} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}  # DataParallel prefix


def _rename_teacher_key(k: str) -> str | None:
    if k.startswith(TEACHER_UNUSED):
        return None
    if k == "gamma":
        return "text_adapter.gamma"
    if k.startswith("text_adapter.fc."):
        return "text_adapter.mlp." + k[len("text_adapter.fc."):]
    if k.startswith("vae.") and any(o in k for o in _OLD_ATTN):
        for old, new in _OLD_ATTN.items():
            k = k.replace(old, new)
        return k
    m = re.match(r"QFD\.(conv|se)([1-4])\.(.*)", k)
    if m:
        part = "0" if m.group(1) == "conv" else "1"
        return f"qfd.branches.{int(m.group(2)) - 1}.{part}.{m.group(3)}"
    for old, new in (("QFD.fuse_conv.", "qfd.fuse.0."), ("QFD.se_fuse.", "qfd.fuse.1."),
                     ("QFD.conv_score1.", "qfd.head.0."), ("QFD.conv_score2.", "qfd.head.2."),
                     ("QFD.conv_score3.", "qfd.head.4."), ("QFD.fc", "regressor.fc")):
        if k.startswith(old):
            return new + k[len(old):]
    return k


def map_teacher(src: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> tuple[dict, list, list]:
    out, unexpected = {}, []
    for k, v in src.items():
        new = _rename_teacher_key(k)
        if new is None:
            continue
        (out.__setitem__(new, v) if new in target else unexpected.append(k))
    missing = [k for k in target if k not in out and k != "prompt_embeds"]
    return out, missing, unexpected


def map_student(src: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> tuple[dict, list, list]:
    backbone_src = {k: v for k, v in src.items() if k.startswith("base_model.features.")}
    backbone_dst = {k: v for k, v in target.items() if k.startswith("backbone.")}
    out = map_state_dict_by_order(backbone_src, backbone_dst, "student backbone")
    unexpected = []
    for k, v in src.items():
        if k.startswith("base_model.features."):
            continue
        new = "regressor." + k if re.match(r"fc[123]\.", k) else k
        (out.__setitem__(new, v) if new in target else unexpected.append(k))
    missing = [k for k in target if k not in out]
    return out, missing, unexpected


def load_embeddings(path: Path | None, prompts: str, dim: int) -> torch.Tensor:
    n = len(build_prompts(prompts))
    if path is None:
        emb = compute_prompt_embeddings(build_prompts(prompts))
    else:
        try:
            emb = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DpiqaError(f"refused to load embeddings {path}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(emb, torch.Tensor) or tuple(emb.shape) != (n, dim):
        got = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
        raise DpiqaError(f"prompt embeddings must be {n}x{dim} for the {prompts!r} set, got {got}")
    return emb.float()


def import_authors_checkpoint(src: Path, kind: str, out: Path, model_name: str | None = None,
                              dataset: str | None = None, embeddings: Path | None = None,
                              prompts: str = "release", quiet: bool = False) -> Path:
    if kind not in {"student", "teacher"}:
        raise DpiqaError(f"--kind must be student or teacher, not {kind!r}")
    spec = get_spec(model_name or DEFAULT_ENTRY[kind])
    if spec.kind != kind:
        raise DpiqaError(f"--model {spec.name} is a {spec.kind}, not a {kind}")
    src_state = read_torch_state_dict(src)
    overrides = {"prompts": prompts} if kind == "teacher" else {}
    with torch.random.fork_rng(devices=[]):
        model = spec.build(**overrides)
    target = model.state_dict()
    mapper = map_teacher if kind == "teacher" else map_student
    mapped, missing, unexpected = mapper(src_state, target)
    if kind == "teacher":
        mapped["prompt_embeds"] = load_embeddings(embeddings, prompts, target["prompt_embeds"].shape[1])
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(target[k].shape):
            raise DpiqaError(f"{src}: {k} has shape {tuple(v.shape)}, {spec.name} needs {tuple(target[k].shape)}")
    if missing:
        raise DpiqaError(f"{src} lacks {len(missing)} tensors of {spec.name}, e.g. {', '.join(missing[:3])}")
    if unexpected and not quiet:
        log.warning("ignored %d unexpected keys, e.g. %s", len(unexpected), ", ".join(unexpected[:5]))
    model.load_state_dict(mapped, strict=True)
    info = {"source": f"authors' release ({Path(src).name})", "dataset": dataset, "unexpected_keys": unexpected,
            **_dataset_facts(dataset)}
    return save_checkpoint(model, out, spec_name=spec.name, info=info)


# What the release says each checkpoint trained on: the authors' README names one checkpoint, trained on
# KonIQ-10k, whose demo tests it on KonIQ's official test set, so its training images are the official
# training set. For the other datasets the paper's splits are random and unseeded: unknown.
RELEASE_SPLITS = {"koniq": {"train": ["train"], "val": [], "test": ["test"]}}
RELEASE_NOTE = "the released scripts chose their best epoch on the test split"


def _dataset_facts(dataset: str | None) -> dict:
    """The MOS scale to map scores back, the view (synthetic datasets were trained on two patches), and what
    the release says of the images it trained on (`split_images`, so bench keeps its test images held out)."""
    if not dataset:
        return {"mos_scale": None, "view": {"name": "whole"},
                "split_images": {"format": RECORD, "dataset": None, "unknown": "imported without --dataset"}}
    info = dataset_info(dataset)  # an unknown name is a one-line error
    name = canonical(dataset)
    if name in RELEASE_SPLITS:
        record = official_record(name, RELEASE_SPLITS[name], "the authors' release (README: trained on KonIQ-10k)",
                                 note=RELEASE_NOTE)
    else:
        record = {"format": RECORD, "dataset": name,
                  "unknown": f"the authors' release does not say which {name} images it trained on"}
    return {"mos_scale": info["scale"], "view": {"name": "patches" if info["synthetic"] else "whole"},
            "split_images": record}
