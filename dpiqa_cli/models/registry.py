"""The one model registry every command uses: name -> architecture, input size, score scale, weights.

Names follow timm's `arch.tag` (`student-lite0.synth`: the Lite0 architecture with the bundled weights);
`student` is an alias of the default scorer. Parameter counts are stored, so listing builds nothing. The
bundled checkpoint is looked for in `$DPIQA_WEIGHTS_DIR`, then the `dpiqa_cli.weights` package data, then a
source checkout's `weights/`.
"""
from __future__ import annotations

import copy
import difflib
import importlib.util
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpiqa_cli.data.views import view_from_config
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models import architectures as C
from dpiqa_cli.models.checkpoint_config import read_config, scores_meaning

BUNDLED_FILE = "dpiqa-student-lite0-synth.safetensors"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "teacher" | "student"
    architecture: str  # what runs, in words
    arch: dict  # the builder's configuration
    params: int  # parameters (the teacher's include its CLIP text tower); checked by a test on `meta`
    input_size: int
    feat_size: int
    description: str
    weights: str | None = None  # file name of a bundled checkpoint, None: random or --weights
    weights_hint: str = ""  # where real weights come from (score direction and range: `models.resolve`)

    @property
    def arch_name(self) -> str:
        """The architecture entry: the name without its weights tag (`student-lite0.synth` -> `student-lite0`)."""
        return self.name.split(".")[0]

    @property
    def default_weights(self) -> Path | None:
        return weights_dir()[0] / self.weights if self.weights else None

    def build(self, pretrained: bool = False, **overrides: Any):
        """A model with this spec's architecture (random weights unless `pretrained`)."""
        arch = {**copy.deepcopy(self.arch), **overrides}
        # the architectures import torch, timm or diffusers: only when a model is really built
        if self.kind == "teacher":
            from dpiqa_cli.models.teacher import build_teacher

            model = build_teacher(arch, pretrained=pretrained)
        else:
            from dpiqa_cli.models.student import build_student

            model = build_student(arch, pretrained=pretrained)
        model.dpiqa_spec, model.dpiqa_arch = self.arch_name, arch  # what save_checkpoint records
        return model


def weights_dir() -> tuple[Path, str]:
    """(folder holding the bundled checkpoint, where that folder came from)."""
    env = os.environ.get("DPIQA_WEIGHTS_DIR")
    if env:
        return Path(env), "$DPIQA_WEIGHTS_DIR"
    spec = importlib.util.find_spec("dpiqa_cli.weights")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]), "installed package data"
    return Path(__file__).resolve().parents[2] / "weights", "source checkout"


def _teacher_arch(unet: dict, vae: dict, adapter: dict, clip: dict, feat: int, width: int, hidden: int) -> dict:
    return dict(unet=unet, vae=vae, adapter=adapter, clip_text=clip, feat_size=feat, qfd_width=width,
                hidden=hidden, prompts="paper")


_SD = "SD v1.5 U-Net + VAE, T2I adapter, CLIP ViT-L/14 prompts, QFD"
_HINT_TEACHER = (f"train it with `dpiqa train-teacher` (needs {C.SD15_HUB_ID}) or convert the authors' "
                 "release with `dpiqa import-weights --kind teacher`")
_HINT_B7 = "train with `dpiqa distill` or convert the authors' release with `dpiqa import-weights --kind student`"
_LITE0 = dict(backbone="tf_efficientnet_lite0", feat_size=64, hidden=512, bn_eps=C.TORCHVISION_BN_EPS)

_SPECS = [
    ModelSpec("teacher", "teacher", _SD,
              _teacher_arch(C.SD15_UNET, C.SD15_VAE, C.SD15_ADAPTER, C.CLIP_L14_TEXT, 64, 512, 512),
              1_188_311_060, 512, 64, "the DP-IQA teacher (paper)", weights_hint=_HINT_TEACHER),
    ModelSpec("student-b7", "student", "EfficientNet-B7 + DP-IQA head",
              dict(backbone="efficientnet_b7", feat_size=64, hidden=512, bn_eps=C.TORCHVISION_BN_EPS,
                   bn_momentum=C.TORCHVISION_BN_MOMENTUM),
              81_012_185, 512, 64, "the paper's DP-IQA student", weights_hint=_HINT_B7),
    ModelSpec("student-lite0", "student", "EfficientNet-Lite0 + DP-IQA head", _LITE0, 20_504_073, 512, 64,
              "small student (ImageNet Lite0 init offline)",
              weights_hint="train with `dpiqa distill --model student-lite0 --init imagenet`"),
    ModelSpec("student-lite0.synth", "student", "EfficientNet-Lite0 + DP-IQA head", _LITE0, 20_504_073, 512, 64,
              "the bundled default scorer, trained by dpiqa on synthetic distortions (weights/README.md)",
              weights=BUNDLED_FILE, weights_hint="rebuild with tools/default_model/build.sh"),
    ModelSpec("tiny-teacher", "teacher", "miniature teacher (same topology)",
              _teacher_arch(C.TINY_UNET, C.TINY_VAE, C.TINY_ADAPTER, C.TINY_CLIP_TEXT, 8, 128, 64),
              4_340_276, 64, 8, "for tests (random weights, 64 px, 8x8 feature map)"),
    ModelSpec("tiny-student", "student", "miniature student (same topology)",
              dict(backbone="test_efficientnet", feat_size=8, hidden=32, bn_eps=1e-3), 135_141, 64, 8,
              "for tests (random weights, 64 px, 8x8 feature map)"),
]
REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}
ALIASES = {"student": "student-lite0.synth"}  # the default scorer


def list_specs() -> list[ModelSpec]:
    return list(REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[ALIASES.get(name, name)]
    except KeyError:
        known = [*ALIASES, *REGISTRY]
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise DpiqaError(f"unknown model {name!r}{hint}; known: {', '.join(known)} "
                         "(or a checkpoint/.onnx path)") from None


def count_parameters(spec: ModelSpec) -> int:
    """Parameters counted on the meta device (nothing is allocated); the teacher includes its CLIP text tower."""
    import torch  # counting builds the model

    with torch.device("meta"):
        model = spec.build()
        n = sum(p.numel() for p in model.parameters())
        if spec.kind == "teacher":
            from transformers import CLIPTextConfig, CLIPTextModelWithProjection

            n += sum(p.numel() for p in CLIPTextModelWithProjection(CLIPTextConfig(**spec.arch["clip_text"])).parameters())
    return n


def weights_status(spec: ModelSpec) -> tuple[str, str]:
    """(a word for the table, the sentence `dpiqa models` prints below it) on where the weights come from."""
    if spec.weights:
        path, where = spec.default_weights, weights_dir()[1]
        if path.is_file():
            return "bundled", f"found through the {where}: {path}"
        return "MISSING", f"not found through the {where}: {path}; {spec.weights_hint}"
    if spec.name.startswith("tiny-"):
        return "random", "random weights, for tests"
    return "none", f"{spec.weights_hint}; then pass --weights CKPT"


def view_name(spec: ModelSpec) -> str:
    """The view a bundled checkpoint records, else `whole` (the authors' resize); short, for the table."""
    if spec.weights and spec.default_weights.is_file():
        return view_from_config(read_config(spec.default_weights)[1], spec.input_size).label()
    return "whole"


def _scores(spec: ModelSpec) -> str:
    """What an entry's scores are: the bundled checkpoint says it; other entries score what they are given."""
    if spec.weights and spec.default_weights.is_file():
        return scores_meaning(read_config(spec.default_weights)[1])
    if spec.name.startswith("tiny-"):
        return "random, for tests"
    return ("those of the checkpoint you pass: trained on a MOS dataset, normalised MOS in [0, 1] (higher is "
            "better) and a mos column on that dataset's scale")


def models_text(width: int = 80) -> str:
    """`dpiqa models`: one block per entry, wrapped to `width` columns (a path is never cut)."""
    def para(label: str, text: str) -> list[str]:
        return textwrap.wrap(f"{label}: {text}" if label else text, width, initial_indent="  ",
                             subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)

    lines = textwrap.wrap("dpiqa model registry: what each --model name runs, its view and where its weights "
                          "come from", width, break_long_words=False)
    aliases = {target: alias for alias, target in ALIASES.items()}
    for spec in list_specs():
        status, note = weights_status(spec)
        alias = f" (alias {aliases[spec.name]}: the default scorer)" if spec.name in aliases else ""
        lines += ["", spec.name + alias]
        lines += para("", spec.description)
        lines += para("", f"{spec.architecture}, {spec.params / 1e6:,.2f} M parameters, {spec.input_size} px "
                          f"input, view {view_name(spec)}")
        lines += para("weights", f"{status}, {note}" if status in ("bundled", "MISSING") else note)
        lines += para("scores", _scores(spec))
    return "\n".join(lines) + "\n"


def print_models() -> None:
    """`dpiqa models` on stdout: nothing is built or loaded."""
    print(models_text(), end="")


# Checkpoints written before the registry's arch.tag names called the paper's B7 student `student`.
LEGACY_NAMES = {"student": "student-b7"}


def checkpoint_spec(config: dict) -> ModelSpec:
    """The registry entry of the architecture a checkpoint config names."""
    return get_spec(LEGACY_NAMES.get(config.get("model", ""), config.get("model", "")))


def check_compatible(model: str, weights, config: dict) -> None:
    """A --model given beside --weights must agree with what the checkpoint says it is."""
    spec, found = get_spec(model), checkpoint_spec(config)
    generic = model in ALIASES  # `student`: any student checkpoint will do
    same_arch = spec.arch == found.arch or spec.name == found.name
    if spec.kind != found.kind or not (generic or same_arch):
        raise DpiqaError(f"{weights} holds a {found.kind} ({found.name}: {found.architecture}) but --model {model} "
                         f"is a {spec.kind} ({spec.architecture}); drop --model: the checkpoint says what it is")
