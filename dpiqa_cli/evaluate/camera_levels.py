"""The camera family of the level-ranking benchmark: 9 defects of photos in the wild, 4 levels each, from
just visible to clearly bad at about 1024 px (the constants below; docs/design.md, "The level benchmark").
Written for the benchmark alone, sharing no code or parameters with the training distortions
(`data.distortions`), so that a score here is not a replay of what a model trained on."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from scipy import ndimage, signal

from dpiqa_cli.evaluate.level_stats import Key, per_type, photo_seed, pristine_wins, write_set

CAMERA_TYPES = ("motion_blur", "defocus", "underexposed", "overexposed", "phone", "resampled", "haze",
                "oversharpened", "blur_noise_jpeg")
CAMERA_LABELS = {"motion_blur": "motion blur", "defocus": "defocus", "underexposed": "under-exposed",
                 "overexposed": "over-exposed", "phone": "phone pipeline (noise → denoise → JPEG 75)",
                 "resampled": "resampled", "haze": "haze / low contrast", "oversharpened": "oversharpened",
                 "blur_noise_jpeg": "blur + noise + JPEG"}
CAMERA_LEVELS = (1, 2, 3, 4)
CAMERA_PRISTINE_LEVEL = 2

MOTION_LENGTH = (4.0, 8.0, 14.0, 22.0)  # streak length, px
DEFOCUS_RADIUS = (1.5, 3.0, 5.0, 7.5)  # disk radius, px
UNDER_EV = (0.6, 1.3, 2.2, 3.2)  # stops down
OVER_EV = (0.5, 1.1, 1.8, 2.5)  # stops up
PHONE_SHOT = (0.0015, 0.004, 0.010, 0.022)  # noise variance per unit of linear signal
PHONE_READ = (0.0015, 0.003, 0.006, 0.010)  # signal-independent noise sigma, linear
PHONE_DENOISE_RADIUS = (2, 3, 4, 5)  # guided-filter window radius, px
PHONE_DENOISE_EDGE = (0.04, 0.065, 0.10, 0.15)  # luma step (on [0, 1]) the denoiser keeps; about 2x the noise
PHONE_CHROMA_SIGMA = (1.0, 1.5, 2.5, 3.5)  # chroma blur, px
PHONE_JPEG_QUALITY = 75
RESAMPLE_FACTOR = (1.6, 2.2, 3.0, 4.2)  # downscale factor
HAZE_T = (0.92, 0.80, 0.64, 0.46)  # transmission; the veil lifts the blacks most
HAZE_AIRLIGHT = (0.80, 0.84, 0.90)  # linear RGB: a bright, slightly blue veil
SHARPEN_AMOUNT = (1.2, 2.2, 3.5, 5.5)
SHARPEN_RADIUS = (1.2, 1.6, 2.0, 2.5)  # Gaussian sigma of the unsharp mask, px
COMBO_BLUR_SIGMA = (0.8, 1.5, 2.4, 3.6)  # px
COMBO_NOISE_SIGMA = (0.01, 0.02, 0.035, 0.055)  # on [0, 1], per channel
COMBO_JPEG_QUALITY = (65, 42, 25, 12)

JPEG_TYPES = ("phone", "blur_noise_jpeg")  # their copies are JPEG files
CAMERA_STRENGTHS = {
    "motion_length_px": MOTION_LENGTH, "defocus_radius_px": DEFOCUS_RADIUS, "under_ev": UNDER_EV,
    "over_ev": OVER_EV, "phone_shot": PHONE_SHOT, "phone_read": PHONE_READ,
    "phone_denoise_radius_px": PHONE_DENOISE_RADIUS, "phone_denoise_edge": PHONE_DENOISE_EDGE,
    "phone_chroma_sigma_px": PHONE_CHROMA_SIGMA, "phone_jpeg_quality": PHONE_JPEG_QUALITY,
    "resample_factor": RESAMPLE_FACTOR, "haze_t": HAZE_T, "haze_airlight": HAZE_AIRLIGHT,
    "sharpen_amount": SHARPEN_AMOUNT, "sharpen_radius_px": SHARPEN_RADIUS, "combo_blur_sigma_px": COMBO_BLUR_SIGMA,
    "combo_noise_sigma": COMBO_NOISE_SIGMA, "combo_jpeg_quality": COMBO_JPEG_QUALITY,
}

_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC_INV = np.linalg.inv(_YCC)


def _rng(photo: str, dtype: str, level: int) -> np.random.Generator:
    return np.random.default_rng([photo_seed(photo), CAMERA_TYPES.index(dtype) + 1, level])


def _to_linear(a: np.ndarray) -> np.ndarray:
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


def _to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _filter_linear(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A point-spread function applied to light, not to gamma-encoded values: bright spots bloom as in a lens."""
    kernel = kernel / kernel.sum()
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(_to_linear(a), ((ry, ry), (rx, rx), (0, 0)), mode="reflect")
    return _to_srgb(signal.fftconvolve(padded, kernel[..., None], mode="valid", axes=(0, 1)))


def streak_kernel(length: float, angle: float, sub: int = 8) -> np.ndarray:
    """A 1-px-wide straight streak of `length` px at `angle`, each pixel weighted by the area it covers
    (`sub` x `sub` samples per pixel)."""
    r = int(np.ceil(length / 2)) + 1
    g = (np.arange((2 * r + 1) * sub) + 0.5) / sub - (r + 0.5)
    y, x = np.meshgrid(g, g, indexing="ij")
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    inside = (np.abs(along) <= length / 2) & (np.abs(across) <= 0.5)
    return inside.reshape(2 * r + 1, sub, 2 * r + 1, sub).mean(axis=(1, 3))


def disk_kernel(radius: float) -> np.ndarray:
    """A disk of `radius` px whose edge falls linearly to 0 over one pixel."""
    r = int(np.ceil(radius + 0.5))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0)


def _guided_self(y: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with the image as its own guide: smooths where local variance is below eps,
    keeps edges above it, and smears fine texture as a phone's denoiser does."""
    size = 2 * radius + 1
    mean = ndimage.uniform_filter(y, size, mode="reflect")
    var = ndimage.uniform_filter(y * y, size, mode="reflect") - mean * mean
    a = var / (var + eps)
    b = mean - a * mean
    return ndimage.uniform_filter(a, size, mode="reflect") * y + ndimage.uniform_filter(b, size, mode="reflect")


def _phone(a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    lin = _to_linear(a)
    sigma = np.sqrt(PHONE_SHOT[k] * lin + PHONE_READ[k] ** 2)
    ycc = _to_srgb(lin + sigma * rng.standard_normal(lin.shape)) @ _YCC.T
    ycc[..., 0] = _guided_self(ycc[..., 0], PHONE_DENOISE_RADIUS[k], PHONE_DENOISE_EDGE[k] ** 2)
    for c in (1, 2):
        ycc[..., c] = ndimage.gaussian_filter(ycc[..., c], PHONE_CHROMA_SIGMA[k], mode="reflect")
    return ycc @ _YCC_INV.T  # JPEG follows, on saving


def _oversharpen(a: np.ndarray, k: int) -> np.ndarray:
    ycc = a @ _YCC.T
    y = ycc[..., 0]
    ycc[..., 0] = y + SHARPEN_AMOUNT[k] * (y - ndimage.gaussian_filter(y, SHARPEN_RADIUS[k], mode="reflect"))
    return ycc @ _YCC_INV.T


def _resample(img: Image.Image, k: int) -> np.ndarray:
    w, h = img.size
    small = img.resize((max(1, round(w / RESAMPLE_FACTOR[k])), max(1, round(h / RESAMPLE_FACTOR[k]))),
                       Image.Resampling.BILINEAR)
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0


def camera_distort(img: Image.Image, dtype: str, level: int, photo: str) -> Image.Image:
    """The copy of `img` with defect `dtype` at `level` (1-4), 8-bit RGB; for 'phone' and 'blur_noise_jpeg'
    the copy before its JPEG step (write_camera_set saves those as JPEG)."""
    if dtype not in CAMERA_TYPES or level not in CAMERA_LEVELS:
        raise ValueError(f"unknown camera distortion {dtype!r} level {level!r}")
    k = level - 1
    a = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
    if dtype == "motion_blur":
        angle = _rng(photo, dtype, 0).uniform(0.0, np.pi)  # level 0: the same direction at every level
        out = _filter_linear(a, streak_kernel(MOTION_LENGTH[k], angle))
    elif dtype == "defocus":
        out = _filter_linear(a, disk_kernel(DEFOCUS_RADIUS[k]))
    elif dtype == "underexposed":
        out = _to_srgb(_to_linear(a) * 2.0 ** -UNDER_EV[k])
    elif dtype == "overexposed":
        out = _to_srgb(_to_linear(a) * 2.0 ** OVER_EV[k])  # _to_srgb clips at full scale
    elif dtype == "phone":
        out = _phone(a, k, _rng(photo, dtype, level))
    elif dtype == "resampled":
        out = _resample(img.convert("RGB"), k)
    elif dtype == "haze":
        out = _to_srgb(_to_linear(a) * HAZE_T[k] + np.asarray(HAZE_AIRLIGHT) * (1.0 - HAZE_T[k]))
    elif dtype == "oversharpened":
        out = _oversharpen(a, k)
    else:  # blur_noise_jpeg
        out = ndimage.gaussian_filter(a, (COMBO_BLUR_SIGMA[k], COMBO_BLUR_SIGMA[k], 0), mode="reflect")
        out = out + _rng(photo, dtype, level).normal(0.0, COMBO_NOISE_SIGMA[k], out.shape)
    return Image.fromarray(np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8))


def write_camera_set(photos: dict[str, Path], out_dir: str | Path) -> dict[Key, Path]:
    """{(photo, type, level): file} for every photo: the pristine copy (the same file as write_level_set's)
    and the camera types x 4 levels. 'phone' and 'blur_noise_jpeg' copies are .jpg files; the others PNG."""
    def copy_of(img, photo, dtype, level):
        copy = camera_distort(img, dtype, level, photo)
        if dtype not in JPEG_TYPES:
            return copy, None
        return copy, PHONE_JPEG_QUALITY if dtype == "phone" else COMBO_JPEG_QUALITY[level - 1]

    return write_set(photos, out_dir, CAMERA_TYPES, CAMERA_LEVELS, copy_of)


def summarise_camera(scores: dict[Key, float], photos: Sequence[str]) -> dict:
    """Per camera type: per-photo and mean SRCC/PLCC of score vs -level over the pristine copy and 4 levels;
    their means over the types; and pristine > level 2."""
    keys = (0, *CAMERA_LEVELS)
    out: dict = {"photos": list(photos),
                 "per_type": {t: per_type(scores, photos, t, keys) for t in CAMERA_TYPES}}
    out["mean_srcc"] = float(np.mean([out["per_type"][t]["srcc"] for t in CAMERA_TYPES]))
    out["mean_plcc"] = float(np.mean([out["per_type"][t]["plcc"] for t in CAMERA_TYPES]))
    out[f"pristine_vs_level{CAMERA_PRISTINE_LEVEL}"] = pristine_wins(scores, photos, CAMERA_TYPES,
                                                                      CAMERA_PRISTINE_LEVEL)
    return out


def _wins(w: dict) -> str:
    return f"{w['wins']}/{w['cases']} ({100 * w['rate']:.0f} %)"


def camera_markdown_table(summaries: dict[str, dict], stat: str = "srcc",
                          pristine_all: dict[str, dict] | None = None) -> str:
    """One row per scorer ({name: summarise_camera result}): `stat` ('srcc' or 'plcc') per camera type, the
    mean over the types, pristine > level 2; with `pristine_all` ({name: combined wins}), a last column of
    the pristine rate over every type of every family."""
    head = (f"| scorer ({stat.upper()}) | " + " | ".join(CAMERA_LABELS[t] for t in CAMERA_TYPES)
            + f" | mean | pristine > level {CAMERA_PRISTINE_LEVEL} |")
    rule = "|---|" + "---:|" * (len(CAMERA_TYPES) + 2)
    if pristine_all is not None:
        head += " pristine > middle level, all types |"
        rule += "---:|"
    lines = [head, rule]
    for name, s in summaries.items():
        cells = [f"{s['per_type'][t][stat]:.3f}" for t in CAMERA_TYPES]
        cells += [f"{s[f'mean_{stat}']:.3f}", _wins(s[f"pristine_vs_level{CAMERA_PRISTINE_LEVEL}"])]
        if pristine_all is not None:
            cells.append(_wins(pristine_all[name]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
