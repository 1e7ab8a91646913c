"""Full-reference quality for `dpiqa synth`'s labels: multi-scale SSIM (Wang, Simoncelli & Bovik 2003).

`ms_ssim`: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, L 1, means over the valid part of each map
as in the authors' MATLAB code; the standard five scale weights, renormalised over the scales an image
can hold (short side >= 11 px per scale); negative means clamped to 0, as pytorch-msssim does.
`color_ms_ssim`: 0.8 Y + 0.1 Cb + 0.1 Cr (BT.601; Hassan & Bhagvati 2012), so colour-only distortions count.
"""
from __future__ import annotations

import hashlib

import numpy as np
from scipy import ndimage

MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
YCC_WEIGHTS = np.array([0.8, 0.1, 0.1])
_WIN_SIGMA, _WIN_RADIUS = 1.5, 5  # 11-tap window
_K1, _K2 = 0.01, 0.03

# BT.601 full-range RGB -> YCbCr on [0, 1] (the chroma offset of 0.5 keeps the planes in [0, 1])
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64)


def rgb_to_ycbcr(img: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB in [0, 1] -> Y, Cb, Cr planes in [0, 1]."""
    ycc = img.astype(np.float64) @ _YCC.T
    ycc[..., 1:] += 0.5
    return ycc


def _blur(x: np.ndarray) -> np.ndarray:
    # the same Gaussian on each plane (planes first: contiguous rows filter 2-3x faster), then the 'valid' crop
    out = ndimage.gaussian_filter(x, (0, _WIN_SIGMA, _WIN_SIGMA), truncate=_WIN_RADIUS / _WIN_SIGMA + 0.1,
                                  mode="reflect")
    r = _WIN_RADIUS
    return out[:, r:-r, r:-r]


def _ref_terms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's own blurred mean and variance at one scale."""
    mx = _blur(x)
    return mx, _blur(x * x) - mx * mx


def _ssim_terms(x: np.ndarray, y: np.ndarray, ref: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-plane means of the SSIM map (l * cs) and of the contrast-structure map (each of shape planes)."""
    c1, c2 = _K1 ** 2, _K2 ** 2
    mx, sxx = ref
    my = _blur(y)
    syy = _blur(y * y) - my * my
    sxy = _blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(axis=(1, 2)), cs.mean(axis=(1, 2))


_REF_CACHE: dict = {}  # the last reference's terms per scale: synth scores each reference's images in a row


def _reference(x: np.ndarray, m: int) -> list:
    """[(x, its terms)] at each of m scales, reused while the same reference comes back."""
    key = (x.shape, m, hashlib.blake2b(x.tobytes(), digest_size=16).digest())
    if _REF_CACHE.get("key") != key:
        scales = []
        for _ in range(m):
            scales.append((x, _ref_terms(x)))
            x = _downsample(x)
        _REF_CACHE.clear()
        _REF_CACHE.update(key=key, scales=scales)
    return _REF_CACHE["scales"]


def _downsample(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
    x = x[:, :h, :w]
    return 0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2])


def n_scales(h: int, w: int, max_scales: int = 5) -> int:
    """How many scales fit: the shorter side at the coarsest scale must be at least the 11-px window."""
    s, side = 0, min(h, w)
    while s < max_scales and side >= 2 * _WIN_RADIUS + 1:  # the 'valid' map must be non-empty
        s += 1
        side //= 2
    if s == 0:
        raise ValueError(f"image too small for MS-SSIM: {w}x{h} (need at least 11 px on the shorter side)")
    return s


def ms_ssim_planes(ref: np.ndarray, dist: np.ndarray, max_scales: int = 5) -> np.ndarray:
    """MS-SSIM of each plane of two H x W x P float arrays in [0, 1]; returns P values in [0, 1]."""
    if ref.shape != dist.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {dist.shape}")
    x, y = ref.astype(np.float64), dist.astype(np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    m = n_scales(x.shape[0], x.shape[1], max_scales)
    x, y = (np.ascontiguousarray(a.transpose(2, 0, 1)) for a in (x, y))  # P x H x W
    w = MS_SSIM_WEIGHTS[:m] / MS_SSIM_WEIGHTS[:m].sum()
    out = np.ones(x.shape[0])
    for j, (xj, terms) in enumerate(_reference(x, m)):
        ssim, cs = _ssim_terms(xj, y, terms)
        if j == m - 1:
            out *= np.clip(ssim, 0.0, None) ** w[j]
        else:
            out *= np.clip(cs, 0.0, None) ** w[j]
            y = _downsample(y)
    return out


def ms_ssim(ref: np.ndarray, dist: np.ndarray, max_scales: int = 5) -> float:
    """MS-SSIM of two grayscale images (H x W, float in [0, 1])."""
    return float(ms_ssim_planes(ref, dist, max_scales)[0])


def color_ms_ssim(ref: np.ndarray, dist: np.ndarray, max_scales: int = 5) -> float:
    """0.8 MS-SSIM(Y) + 0.1 MS-SSIM(Cb) + 0.1 MS-SSIM(Cr) of two H x W x 3 RGB images.

    Accepts uint8 (0..255) or float ([0, 1]) arrays; 1.0 means identical.
    """
    def as_float(a):
        return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)

    q = ms_ssim_planes(rgb_to_ycbcr(as_float(ref)), rgb_to_ycbcr(as_float(dist)), max_scales)
    return float(np.dot(YCC_WEIGHTS, q))


def _srgb_to_lab(img: np.ndarray) -> np.ndarray:
    """H x W x 3 sRGB in [0, 1] -> CIE L*a*b* (D65)."""
    c = np.where(img <= 0.04045, img / 12.92, ((img + 0.055) / 1.055) ** 2.4)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def tone_difference(ref: np.ndarray, dist: np.ndarray, block: int = 8) -> float:
    """The mean CIE76 colour difference (Delta E*ab) between the two images' block means (`block` x `block`
    px): how far brightness, contrast and colour moved, with noise and fine detail averaged away. MS-SSIM
    barely sees a colour cast; this sees little else."""
    def means(a: np.ndarray) -> np.ndarray:
        x = a.astype(np.float64) / (255.0 if a.dtype == np.uint8 else 1.0)
        h, w = x.shape[0] // block * block, x.shape[1] // block * block
        return x[:h, :w].reshape(h // block, block, w // block, block, 3).mean(axis=(1, 3))
    return float(np.linalg.norm(_srgb_to_lab(means(ref)) - _srgb_to_lab(means(dist)), axis=-1).mean())
