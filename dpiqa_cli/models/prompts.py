"""The quality prompts whose CLIP embeddings condition the teacher's U-Net.

Two sets, by name:
- `paper`: 9 scenes x 11 distortion groups x 5 quality levels = 495 prompts (paper, Sec. 3).
- `release`: 9 scenes x 33 fine distortion names x 5 levels = 1485 prompts (the authors' code).
Both use "a photo of a {scene} with {distortion} artifacts, which is of {quality} quality" and
enumerate quality, then scene, then distortion, so row order matches the released embeddings.
"""
from __future__ import annotations

from itertools import product

from dpiqa_cli.errors import DpiqaError

SCENES = ["animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others"]
QUALITIES = ["bad", "poor", "fair", "good", "perfect"]
DISTORTION_GROUPS = [
    "jpeg2000 compression", "jpeg compression", "noise", "blur", "color", "contrast",
    "overexposure", "underexposure", "spatial", "quantization", "other",
]
FINE_DISTORTIONS = [
    "jpeg2000 compression", "jpeg compression", "white noise", "gaussian blur", "fastfading", "fnoise",
    "contrast", "lens", "motion", "diffusion", "shifting", "color quantization", "oversaturation",
    "desaturation", "white with color", "impulse", "multiplicative", "white noise with denoise",
    "brighten", "darken", "shifting the mean", "jitter", "noneccentricity patch", "pixelate",
    "quantization", "color blocking", "sharpness", "realistic blur", "realistic noise",
    "underexposure", "overexposure", "realistic contrast change", "other realistic",
]
TEMPLATE = "a photo of a {scene} with {distortion} artifacts, which is of {quality} quality"
PROMPT_SETS = {"paper": DISTORTION_GROUPS, "release": FINE_DISTORTIONS}


def build_prompts(name: str = "paper") -> list[str]:
    """All prompts of a named set, in the released order (quality, scene, distortion)."""
    if name not in PROMPT_SETS:
        raise DpiqaError(f"unknown prompt set {name!r}; choose one of {', '.join(PROMPT_SETS)}")
    return [
        TEMPLATE.format(scene=s, distortion=d, quality=q)
        for q, s, d in product(QUALITIES, SCENES, PROMPT_SETS[name])
    ]
