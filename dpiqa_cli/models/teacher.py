"""The DP-IQA teacher: Stable Diffusion v1.5 as a quality-prior extractor.

x in [0, 1] --VAE(mean)--> latent --U-Net(t=1, prompts, T2I adapter residuals)--> 4 up-block maps
--QFD--> F_quality (8 x 64 x 64) --regressor--> score. The image goes to the VAE and the adapter
unnormalised, exactly as the released code does, so released checkpoints behave the same.
"""
from __future__ import annotations

from dpiqa_cli import _tv_compat  # noqa: F401  (before timm or diffusers: it fixes torchvision's import)

# isort: split
import copy
import os
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.adapter import FullAdapter
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.architectures import CLIP_HUB_ID, SD15_HUB_ID
from dpiqa_cli.models.layers import QualityFeatureDecoder, Regressor, TextAdapter
from dpiqa_cli.models.prompts import build_prompts


class Teacher(nn.Module):
    def __init__(self, unet: dict, vae: dict, adapter: dict, n_prompts: int, feat_size: int = 64,
                 qfd_width: int = 512, hidden: int = 512, gamma_init: float = 1e-4, **_: Any):
        super().__init__()
        self.vae = AutoencoderKL(**vae)
        self.vae.requires_grad_(False)  # frozen, as in the paper
        self.unet = UNet2DConditionModel(**unet)
        # The U-Net's output head runs after the up blocks we read, so it never gets a gradient:
        # mark it frozen rather than let the optimiser carry dead parameters.
        for head in (self.unet.conv_norm_out, self.unet.conv_out):
            if head is not None:
                head.requires_grad_(False)
        self.img_adapter = FullAdapter(**adapter)
        dim = unet["cross_attention_dim"]
        self.text_adapter = TextAdapter(dim, gamma_init)
        # Fixed CLIP prompt embeddings E (k x dim): stored in the checkpoint, so scoring needs no text model.
        self.register_buffer("prompt_embeds", torch.zeros(n_prompts, dim))
        up_channels = list(reversed(unet["block_out_channels"]))  # output channels of up blocks 0..3
        self.qfd = QualityFeatureDecoder(tuple(reversed(up_channels)), qfd_width, 8, feat_size)
        self.regressor = Regressor(8 * feat_size * feat_size, hidden)
        self.sample_latents = False  # the release samples the VAE posterior; we use its mean unless asked
        self._maps: list[torch.Tensor] = []
        for block in self.unet.up_blocks:  # read the up-block outputs without re-implementing the U-Net
            block.register_forward_hook(self._keep_output)

    def _keep_output(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self._maps.append(output)

    def train(self, mode: bool = True) -> "Teacher":
        super().train(mode)
        self.vae.eval()  # frozen parts never switch to training behaviour
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            dist = self.vae.encode(x).latent_dist
            latent = dist.sample() if (self.training and self.sample_latents) else dist.mode()
        return latent * self.vae.config.scaling_factor

    def up_block_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four U-Net up-block outputs (at 512 px: 1280@16, 1280@32, 640@64, 320@64)."""
        latent = self.encode(x)
        cond = self.text_adapter(self.prompt_embeds.to(latent.dtype), x.shape[0])
        residuals = list(self.img_adapter(x))
        t = torch.ones(x.shape[0], dtype=torch.long, device=x.device)
        self._maps = []
        self.unet(latent, t, encoder_hidden_states=cond, down_intrablock_additional_residuals=residuals,
                  return_dict=False)
        maps, self._maps = self._maps, []
        return maps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.up_block_maps(x)
        feat = self.qfd(maps[::-1])  # QFD takes the finest map first: 320, 640, 1280, 1280 channels
        return self.regressor(feat), feat


def text_config(arch: dict):
    return CLIPTextConfig(**arch["clip_text"])


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def _missing(what: str, source: str, exc: Exception) -> DpiqaError:
    hint = (f"pass a local diffusers folder, or download it first (`huggingface-cli download {source}`)"
            if not os.path.isdir(str(source)) else "the folder lacks the expected files")
    return DpiqaError(f"{what} not available from {source!r} ({type(exc).__name__}); {hint}")


def load_stable_diffusion(model: Teacher, sd_model: str = SD15_HUB_ID, local_files_only: bool | None = None) -> None:
    """Load SD v1.5 U-Net and VAE weights into `model` from a hub id or a local diffusers folder."""
    local = _offline() if local_files_only is None else local_files_only
    try:
        unet = UNet2DConditionModel.from_pretrained(sd_model, subfolder="unet", local_files_only=local)
        vae = AutoencoderKL.from_pretrained(sd_model, subfolder="vae", local_files_only=local)
    except Exception as exc:  # hub, network and missing-file errors all mean "weights missing"
        raise _missing("Stable Diffusion v1.5 U-Net/VAE weights", sd_model, exc) from None
    model.unet.load_state_dict(unet.state_dict())
    model.vae.load_state_dict(vae.state_dict())


def compute_prompt_embeddings(prompts: list[str], clip_model: str = CLIP_HUB_ID,
                              local_files_only: bool | None = None, batch: int = 128) -> torch.Tensor:
    """E = CLIP ViT-L/14 `get_text_features` of each prompt (pooled + projected)."""
    local = _offline() if local_files_only is None else local_files_only
    try:
        tokenizer = CLIPTokenizer.from_pretrained(clip_model, local_files_only=local)
        text = CLIPTextModelWithProjection.from_pretrained(clip_model, local_files_only=local)
    except Exception as exc:
        raise _missing("CLIP ViT-L/14 text model", clip_model, exc) from None
    return embed_prompts(prompts, text, tokenizer, batch)


@torch.inference_mode()
def embed_prompts(prompts: list[str], text_model: nn.Module, tokenizer: Any, batch: int = 128) -> torch.Tensor:
    text_model.eval()
    out = []
    for i in range(0, len(prompts), batch):
        tokens = tokenizer(prompts[i:i + batch], padding=True, truncation=True, return_tensors="pt")
        out.append(text_model(**tokens).text_embeds.float())
    return torch.cat(out)


def build_teacher(arch: dict, pretrained: bool = False, sd_model: str | None = None,
                  clip_model: str | None = None) -> Teacher:
    """Build a teacher from an arch config; with `pretrained`, load SD v1.5 and embed the prompts."""
    arch = copy.deepcopy(arch)
    prompts = build_prompts(arch.get("prompts", "paper"))
    model = Teacher(n_prompts=len(prompts), **arch)
    if pretrained:
        load_stable_diffusion(model, sd_model or arch.get("sd_model", SD15_HUB_ID))
        model.prompt_embeds.copy_(compute_prompt_embeddings(prompts, clip_model or arch.get("clip_model", CLIP_HUB_ID)))
    elif model.prompt_embeds.device.type != "meta":
        # Tiny/test builds: fixed pseudo-embeddings (seeded) so runs are reproducible without CLIP.
        g = torch.Generator().manual_seed(0)
        model.prompt_embeds.copy_(torch.randn(model.prompt_embeds.shape, generator=g) * 0.1)
    return model
