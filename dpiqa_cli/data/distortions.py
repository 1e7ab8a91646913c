"""Synthetic distortions for `dpiqa synth`, in the spirit of KADID-10k (Lin, Hosu & Saupe 2019).

Each is a pure function `f(img, t, rng) -> img` of an H x W x 3 float32 RGB image in [0, 1], a strength t
in [0, 1] and a numpy Generator (used by the random ones only). With L levels, level k has
t = (k - 1) / (L - 1), interpolated between five anchors in pixels at the working resolution (level 1 just
visible, level 5 severe); `max_strength` > 1 stretches the levels past the last anchor."""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image
from scipy import ndimage, signal

# The camera "linear light" model: a plain 2.2 gamma is close enough to sRGB for degradations.
_GAMMA = 2.2
# A typical camera colour-correction matrix (rows sum to 1): it correlates and amplifies sensor noise
# into the coloured blotches of real low-light photos.
_CCM = np.array([[1.65, -0.50, -0.15], [-0.25, 1.55, -0.30], [0.00, -0.55, 1.55]], dtype=np.float32)
_CCM_INV = np.linalg.inv(_CCM).astype(np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _p(anchors, t: float, lo: float = -np.inf, hi: float = np.inf) -> float:
    """The parameter at strength t, linear between the five level anchors; past t = 1 (`dpiqa synth
    --max-strength`) it continues along the last segment, kept within [lo, hi], the type's valid range."""
    x = t * (len(anchors) - 1)
    if x <= len(anchors) - 1:
        v = float(np.interp(x, np.arange(len(anchors)), anchors))
    else:
        v = anchors[-1] + (x - (len(anchors) - 1)) * (anchors[-1] - anchors[-2])
    return float(min(max(v, lo), hi))


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _from_u8(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0


def _convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # reflect-pad then 'valid' so borders are not darkened by the zero padding of the FFT
    kh, kw = kernel.shape
    pad = ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2), (0, 0))
    x = np.pad(img, pad, mode="reflect")
    return signal.fftconvolve(x, kernel[:, :, None].astype(np.float32), mode="valid", axes=(0, 1))


def _gauss(img: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")


def _luma(img: np.ndarray) -> np.ndarray:
    return img @ _LUMA


def _encode_decode(img: np.ndarray, **save) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(_to_u8(img)).save(buf, **save)
    buf.seek(0)
    with Image.open(buf) as im:
        return _from_u8(np.asarray(im.convert("RGB")))


# ---- blur ----------------------------------------------------------------------------------


def gaussian_blur(img, t, rng):
    return _gauss(img, _p([0.7, 1.3, 2.2, 3.5, 5.5], t))


def motion_blur(img, t, rng):
    """Camera shake: a straight anti-aliased line kernel of the level's length at a random angle."""
    length = _p([3, 7, 12, 18, 27], t)
    angle = rng.uniform(0.0, np.pi)
    r = int(np.ceil(length / 2)) + 1
    s = np.linspace(-length / 2, length / 2, int(length * 8) + 1)
    xs, ys = r + s * np.cos(angle), r + s * np.sin(angle)
    k = np.zeros((2 * r + 2, 2 * r + 2), np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), wgt)  # bilinear splat of points along the line
    return _convolve(img, k / k.sum())


def defocus_blur(img, t, rng):
    """Out of focus: a uniform disk (pillbox) point-spread function, 4x supersampled edges."""
    radius = _p([1.0, 2.0, 3.2, 5.0, 8.0], t)
    r = int(np.ceil(radius))
    n = 2 * r + 1
    g = (np.arange(n * 4) + 0.5) / 4.0 - (r + 0.5)  # 4 sub-samples per pixel, centred on the kernel
    inside = (g[:, None] ** 2 + g[None, :] ** 2 <= radius ** 2).astype(np.float64)
    k = inside.reshape(n, 4, n, 4).mean(axis=(1, 3))
    return _convolve(img, k / k.sum())


# ---- noise ---------------------------------------------------------------------------------


def white_noise(img, t, rng):
    sigma = _p([0.015, 0.03, 0.05, 0.075, 0.11], t)
    return img + rng.normal(0.0, sigma, img.shape).astype(np.float32)


def color_noise(img, t, rng):
    """White noise in the chroma planes only (KADID's 'white noise in colour component')."""
    sigma = _p([0.02, 0.04, 0.065, 0.1, 0.15], t)
    h, w, _ = img.shape
    cb, cr = rng.normal(0.0, sigma, (2, h, w)).astype(np.float32)
    # inverse BT.601: chroma offsets added to RGB with the luma unchanged
    return img + np.stack([1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb], axis=-1)


def impulse_noise(img, t, rng):
    """Salt and pepper: a fraction of pixels (all channels together) set to black or white."""
    density = _p([0.005, 0.012, 0.03, 0.06, 0.11], t)
    u = rng.random(img.shape[:2])
    out = img.copy()
    out[u < density / 2] = 0.0
    out[(u >= density / 2) & (u < density)] = 1.0
    return out


def camera_noise(img, t, rng):
    """Low-light sensor noise as a camera pipeline makes it.

    Undo gamma and the colour matrix to reach a RAW-like linear signal, add heteroscedastic
    Poisson-Gaussian noise (shot noise ~ signal, plus read noise), blur it slightly (demosaicing
    correlates neighbours), then reapply the colour matrix (which turns it into chroma blotches) and
    gamma (which makes it strongest in the shadows).
    """
    shot = _p([0.002, 0.005, 0.01, 0.02, 0.04], t)
    read = _p([0.0005, 0.0012, 0.0025, 0.005, 0.009], t)
    raw = np.clip(np.clip(img, 0, 1) ** _GAMMA @ _CCM_INV.T, 0, None)
    noise = rng.standard_normal(img.shape).astype(np.float32) * np.sqrt(shot * raw + read ** 2)
    noise = _gauss(noise, 0.6) * 1.6  # re-scale so the blur keeps roughly the same per-pixel variance
    lin = np.clip((raw + noise) @ _CCM.T, 0, 1)
    return lin ** (1.0 / _GAMMA)


# ---- compression ---------------------------------------------------------------------------


def jpeg(img, t, rng):
    return _encode_decode(img, format="JPEG", quality=int(round(_p([45, 28, 15, 8, 4], t, lo=1))))


def jpeg2000(img, t, rng):
    ratio = _p([30, 60, 120, 240, 480], t)
    return _encode_decode(img, format="JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True)


def webp(img, t, rng):
    return _encode_decode(img, format="WEBP", quality=int(round(_p([40, 20, 10, 4, 0], t, lo=0))), method=4)


# ---- brightness, contrast, colour ----------------------------------------------------------


def overexposure(img, t, rng):
    """Exposure raised by EV stops in linear light; highlights clip as on a sensor."""
    ev = _p([0.4, 0.8, 1.3, 1.9, 2.6], t)
    return np.clip(np.clip(img, 0, 1) ** _GAMMA * 2.0 ** ev, 0, 1) ** (1.0 / _GAMMA)


def underexposure(img, t, rng):
    """Exposure lowered by EV stops in linear light; the 8-bit output then loses shadow detail."""
    ev = _p([0.6, 1.2, 1.9, 2.7, 3.6], t)
    return (np.clip(img, 0, 1) ** _GAMMA * 2.0 ** -ev) ** (1.0 / _GAMMA)


def contrast_decrease(img, t, rng):
    c = _p([0.7, 0.5, 0.35, 0.24, 0.15], t, lo=0.05)
    mean = img.mean(axis=(0, 1), keepdims=True)
    return mean + (img - mean) * c


def saturation_decrease(img, t, rng):
    s = _p([0.6, 0.4, 0.25, 0.1, 0.0], t, lo=0.0)
    y = _luma(img)[..., None]
    return y + (img - y) * s


def saturation_increase(img, t, rng):
    s = _p([1.5, 2.0, 2.7, 3.5, 4.5], t)
    y = _luma(img)[..., None]
    return y + (img - y) * s


def color_quantization(img, t, rng):
    """Palette reduction (median cut, no dithering): banding and false contours."""
    colors = int(round(_p([48, 24, 12, 7, 4], t, lo=2)))
    pal = Image.fromarray(_to_u8(img)).quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return _from_u8(np.asarray(pal.convert("RGB")))


def pixelate(img, t, rng):
    """Block averaging to factor x factor cells, shown with nearest-neighbour upscaling."""
    f = _p([2, 3, 4.5, 6.5, 9], t)
    h, w, _ = img.shape
    small = Image.fromarray(_to_u8(img)).resize((max(1, round(w / f)), max(1, round(h / f))), Image.Resampling.BOX)
    return _from_u8(np.asarray(small.resize((w, h), Image.Resampling.NEAREST)))


def oversharpen(img, t, rng):
    """Unsharp masking pushed too far: halos and amplified texture."""
    amount = _p([1.0, 2.0, 3.5, 5.5, 8.0], t)
    return img + amount * (img - _gauss(img, 1.5))


def camera_chain(img, t, rng):
    """A cheap camera end to end: lens blur, sensor noise, in-camera sharpening, then JPEG."""
    x = _gauss(img, _p([0.5, 0.8, 1.1, 1.5, 2.0], t))
    x = camera_noise(x, _p([0.0, 0.2, 0.4, 0.6, 0.8], t), rng)
    x = np.clip(x + 0.6 * (x - _gauss(x, 1.0)), 0, 1)
    return _encode_decode(x, format="JPEG", quality=int(round(_p([75, 55, 38, 25, 14], t, lo=1))))


# ---- camera defects: what phones and casual shooting add -------------------------------------


def haze(img, t, rng):
    """Atmospheric veil: I = J t + A (1 - t), the airlight A a pale grey-blue, the transmission t falling
    towards the top of the frame (distance) so the veil is thicker in the sky than in the foreground."""
    t0 = _p([0.85, 0.7, 0.55, 0.4, 0.28], t, lo=0.05)
    air = np.array([0.82, 0.85, 0.9], np.float32) * rng.uniform(0.9, 1.05)
    h = img.shape[0]
    depth = np.linspace(1.0, 0.6, h, dtype=np.float32)[:, None, None]  # rows from the top
    trans = np.clip(t0 ** depth, 0.0, 1.0)
    return np.clip(img, 0, 1) * trans + air * (1.0 - trans)


def color_cast(img, t, rng):
    """White balance off: red and blue gains moved apart in linear light (too warm or too cool)."""
    shift = _p([0.08, 0.16, 0.26, 0.38, 0.52], t) * (1 if rng.random() < 0.5 else -1)
    gains = np.array([1.0 + shift, 1.0, 1.0 - shift], np.float32)
    return np.clip(np.clip(img, 0, 1) ** _GAMMA * gains, 0, 1) ** (1.0 / _GAMMA)


def sharpen_halo(img, t, rng):
    """Wide-radius "clarity" sharpening: bright and dark rims several pixels wide along every edge."""
    amount = _p([0.6, 1.1, 1.7, 2.5, 3.5], t)
    return img + amount * (img - _gauss(img, rng.uniform(2.5, 4.0)))


def denoise_smear(img, t, rng):
    """A phone's noise reduction: sensor noise, then edge-aware smoothing that wipes out fine texture
    (waxy skin, painted foliage) while keeping strong edges."""
    x = camera_noise(img, _p([0.15, 0.25, 0.35, 0.45, 0.55], t), rng)
    sigma = _p([1.2, 2.0, 3.0, 4.2, 5.5], t)
    smooth = _gauss(x, sigma)
    y = _luma(x)
    grad = np.hypot(ndimage.sobel(y, 0), ndimage.sobel(y, 1))
    keep = np.clip(grad / _p([0.9, 1.2, 1.6, 2.1, 2.7], t), 0.0, 1.0)[..., None]  # only strong edges survive
    return keep * x + (1.0 - keep) * smooth


def resample(img, t, rng):
    """Downscaled and enlarged back (a thumbnail blown up, a digital zoom): softness and ringing."""
    f = _p([1.6, 2.2, 3.0, 4.0, 5.5], t)
    h, w, _ = img.shape
    down = [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS][rng.integers(3)]
    small = Image.fromarray(_to_u8(img)).resize((max(1, round(w / f)), max(1, round(h / f))), down)
    return _from_u8(np.asarray(small.resize((w, h), Image.Resampling.BICUBIC)))


def blur_jpeg(img, t, rng):
    """LIVE-MD's first set: blur, then JPEG."""
    x = _gauss(img, _p([0.6, 1.0, 1.6, 2.3, 3.2], t))
    return _encode_decode(x, format="JPEG", quality=int(round(_p([60, 40, 25, 15, 9], t, lo=1))))


def blur_noise(img, t, rng):
    """LIVE-MD's second set: blur, then noise."""
    x = _gauss(img, _p([0.6, 1.0, 1.6, 2.3, 3.2], t))
    return x + rng.normal(0.0, _p([0.01, 0.02, 0.035, 0.05, 0.07], t), img.shape).astype(np.float32)


def dark_noise(img, t, rng):
    """A dim scene: under-exposed, then the sensor's shadow noise of the brightened result."""
    x = underexposure(img, _p([0.1, 0.2, 0.3, 0.45, 0.6], t), rng)
    return camera_noise(x, _p([0.2, 0.35, 0.5, 0.65, 0.8], t), rng)


# Names are the `type` column of synth.csv and the values of `dpiqa synth --types`.
DISTORTIONS: dict[str, Callable] = {
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "defocus_blur": defocus_blur,
    "white_noise": white_noise,
    "color_noise": color_noise,
    "impulse_noise": impulse_noise,
    "camera_noise": camera_noise,
    "jpeg": jpeg,
    "jpeg2000": jpeg2000,
    "webp": webp,
    "overexposure": overexposure,
    "underexposure": underexposure,
    "contrast_decrease": contrast_decrease,
    "saturation_decrease": saturation_decrease,
    "saturation_increase": saturation_increase,
    "color_quantization": color_quantization,
    "pixelate": pixelate,
    "oversharpen": oversharpen,
    "camera_chain": camera_chain,
    "haze": haze,
    "color_cast": color_cast,
    "sharpen_halo": sharpen_halo,
    "denoise_smear": denoise_smear,
    "resample": resample,
    "blur_jpeg": blur_jpeg,
    "blur_noise": blur_noise,
    "dark_noise": dark_noise,
}
# What photos from phones and casual shooting carry (optics, exposure, tone, processing, their mixtures):
# the pool the bundled model's build draws each reference's extra types from.
CAMERA_TYPES = ("motion_blur", "defocus_blur", "camera_noise", "underexposure", "overexposure",
                "contrast_decrease", "haze", "color_cast", "saturation_decrease", "oversharpen", "sharpen_halo",
                "denoise_smear", "resample", "webp", "camera_chain", "blur_jpeg", "blur_noise", "dark_noise")
# Types whose output must keep the codec's artefacts (they are decoded, then saved losslessly).
COMPRESSION_TYPES = ("jpeg", "jpeg2000", "webp", "camera_chain", "blur_jpeg")


def strength(level: int, levels: int, max_strength: float = 1.0) -> float:
    """Level k of L (1..L) -> strength in [0, max_strength]; a single level is the middle anchor."""
    if not 1 <= level <= levels:
        raise ValueError(f"level {level} outside 1..{levels}")
    return 0.5 * max_strength if levels == 1 else max_strength * (level - 1) / (levels - 1)


def apply(name: str, img: np.ndarray, level: int, levels: int, rng: np.random.Generator,
          max_strength: float = 1.0) -> np.ndarray:
    """Distort a uint8 H x W x 3 RGB image; returns uint8 of the same shape."""
    out = DISTORTIONS[name](_from_u8(img), strength(level, levels, max_strength), rng)
    return _to_u8(out)
