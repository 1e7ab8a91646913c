"""The real loading path for SD v1.5 and CLIP, exercised on tiny local folders (no network here)."""
import gzip
import json

import pytest
import torch

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models import architectures as C
from dpiqa_cli.models import teacher as T
from dpiqa_cli.models.registry import get_spec


def write_clip_tokenizer(folder):
    """Build CLIPTokenizer files from the BPE merges open_clip ships (the same vocabulary as OpenAI CLIP)."""
    import open_clip.tokenizer as oct

    merges = gzip.open(oct.default_bpe(), "rt", encoding="utf-8").read().split("\n")[1:49152 - 256 - 2 + 1]
    byte_chars = list(oct.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def test_sd_components_load_from_a_local_diffusers_folder(tmp_path):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(5)
    UNet2DConditionModel(**C.TINY_UNET).save_pretrained(tmp_path / "sd" / "unet")
    AutoencoderKL(**C.TINY_VAE).save_pretrained(tmp_path / "sd" / "vae")
    ref_unet = UNet2DConditionModel.from_pretrained(tmp_path / "sd", subfolder="unet")
    model = get_spec("tiny-teacher").build()
    T.load_stable_diffusion(model, str(tmp_path / "sd"), local_files_only=True)
    assert all(torch.equal(a, b) for a, b in zip(model.unet.state_dict().values(), ref_unet.state_dict().values()))


def test_missing_sd_weights_give_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = get_spec("tiny-teacher").build()
    with pytest.raises(DpiqaError, match="Stable Diffusion v1.5 U-Net/VAE weights not available") as exc:
        T.load_stable_diffusion(model)  # the default hub id, offline and not cached
    assert "\n" not in str(exc.value) and "huggingface-cli download" in str(exc.value)
    with pytest.raises(DpiqaError, match="lacks the expected files"):
        T.load_stable_diffusion(model, str(tmp_path))


def test_prompt_embeddings_come_from_clip_get_text_features(tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    write_clip_tokenizer(tmp_path / "clip")
    torch.manual_seed(0)
    CLIPTextModelWithProjection(CLIPTextConfig(**C.TINY_CLIP_TEXT)).save_pretrained(tmp_path / "clip")
    tok = CLIPTokenizer.from_pretrained(tmp_path / "clip")
    assert tok("a photo of a cat")["input_ids"][1:-1] == [320, 1125, 539, 320, 2368]  # OpenAI CLIP token ids
    model = T.build_teacher({**get_spec("tiny-teacher").arch, "clip_model": str(tmp_path / "clip")}, pretrained=False)
    from dpiqa_cli.models.prompts import build_prompts

    emb = T.compute_prompt_embeddings(build_prompts("paper")[:7], str(tmp_path / "clip"), local_files_only=True)
    assert emb.shape == (7, 32) and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])  # different prompts, different embeddings
    with pytest.raises(DpiqaError, match="CLIP ViT-L/14 text model not available"):
        T.compute_prompt_embeddings(["x"], str(tmp_path / "nope"), local_files_only=True)
    assert model.prompt_embeds.shape == (495, 32)
