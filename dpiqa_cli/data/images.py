"""Decoding images, shared by scoring and training (`load_rgb`, `decode_image`) and by gallery thumbnails
(`load_thumbnail`):
- the pixel limit is checked from the header, before any pixel is decoded (decompression bombs); it is
  per call: Pillow's process-wide `Image.MAX_IMAGE_PIXELS` is left as it is, and set to a call's higher
  limit only while that call retries an image Pillow refused (`_pillow_limit`), then restored;
- JPEGs use `draft()` so that a large photo is DCT-scaled by a power of two to no less than the input
  size, then everything gets the same bilinear resize to size x size (aspect ratio ignored, as the
  authors do); EXIF orientation is applied first;
- every mode becomes 8-bit RGB; 16-bit and 32-bit modes are scaled, not clipped; transparency is
  composited onto white (transparent areas of logos/screenshots are usually meant as "page");
- a failure raises `ImageError` with a one-line reason, never a Pillow traceback.
"""
from __future__ import annotations

import os
import stat
import threading
import warnings
from contextlib import contextmanager
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dpiqa_cli.data import reasons as R

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
try:  # HEIC/HEIF only when the optional plugin is installed
    import pillow_heif

    pillow_heif.register_heif_opener()
    IMAGE_EXTS |= {".heic", ".heif"}
except ImportError:
    pass

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: above any camera photo, far below a decompression bomb
MIN_SIDE = 8  # smaller images (1x1 tracking pixels, icons) carry no quality signal: refused, not scored


class ImageError(Exception):
    """An image that cannot be used; str(exc) is a one-line reason."""


class _PillowRefused(ImageError):
    """Pillow's own decompression-bomb check refused the image (at its process-wide limit, not ours)."""


# Held while Pillow's limit is changed, so that two calls never interleave their set-and-restore. Reentrant:
# a decode inside a decode (none today) must not deadlock.
_PILLOW_LIMIT_LOCK = threading.RLock()


@contextmanager
def _pillow_limit(limit: int | None):
    """Pillow's `MAX_IMAGE_PIXELS` set to `limit` (None: off) inside the block, restored after it. Only the
    rare image that Pillow refuses below the caller's limit comes here, so serialising them costs nothing;
    another thread's Pillow call meanwhile sees the higher limit, and dpiqa's own calls still apply theirs."""
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _within_limit(max_pixels: int | None, fn):
    """fn() under Pillow's own limit; when Pillow refuses an image that this call's limit is above (None:
    --max-pixels 0, no limit), fn() once more with Pillow's limit raised to the call's, whose header check
    (`_open_checked`) then decides."""
    try:
        return fn()
    except _PillowRefused:
        pillow = Image.MAX_IMAGE_PIXELS
        if pillow is None or (max_pixels and max_pixels <= pillow):
            raise
    with _pillow_limit(max_pixels):
        return fn()


def _check_file(path: str) -> int:
    """The file's size, or a one-line reason why it cannot be read."""
    if os.path.islink(path) and not os.path.exists(path):
        raise ImageError(R.BROKEN_SYMLINK.format(target=os.readlink(path)))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(R.NO_SUCH_FILE) from None
    except OSError as exc:
        raise ImageError(R.CANNOT_STAT.format(why=exc.strerror or exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(R.IS_DIRECTORY)
    return st.st_size


def _open_checked(path: str | BinaryIO, max_pixels: int | None) -> Image.Image:
    """Open (header only) with one-line reasons for every way a file can be unusable. `path` may also be a
    binary file object holding a file's bytes (read elsewhere, e.g. from an object store by Ray)."""
    if hasattr(path, "read"):
        size = path.seek(0, os.SEEK_END)
        path.seek(0)
    else:
        size = _check_file(path)
    if size == 0:
        raise ImageError(R.EMPTY_FILE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except PermissionError:
        raise ImageError(R.PERMISSION_DENIED) from None
    except UnidentifiedImageError:
        raise ImageError(R.NOT_AN_IMAGE) from None
    except Image.DecompressionBombError as exc:
        raise _PillowRefused(R.PIXEL_BOMB.format(why=exc)) from None
    except (OSError, ValueError, SyntaxError) as exc:
        if "truncat" in str(exc).lower():  # e.g. "Truncated File Read": the file ends inside its header
            raise ImageError(R.TRUNCATED.format(why=exc)) from None
        raise ImageError(R.UNREADABLE_HEADER.format(why=exc)) from None
    w, h = img.size
    if max_pixels and w * h > max_pixels:
        img.close()
        raise ImageError(R.TOO_MANY_PIXELS.format(w=w, h=h, n=w * h, limit=max_pixels))
    if min(w, h) < MIN_SIDE:
        img.close()
        raise ImageError(R.TOO_SMALL.format(w=w, h=h, min_side=MIN_SIDE))
    return img


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    w, h = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not reject a decodable image
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _scale_wide(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float greyscale -> 8-bit L, scaled by the range the mode can hold."""
    a = np.asarray(img)
    if img.mode.startswith("I;16"):
        a = a.astype(np.float64) / 65535.0
    elif img.mode == "I":  # Pillow opens 16-bit PNG/TIFF greyscale as "I" too: 0..65535
        a = a.astype(np.float64)
        a = a / (65535.0 if a.max(initial=0) <= 65535 else float(np.iinfo(np.int32).max))
    else:  # "F": [0, 1] floats as is, else 8- or 16-bit ranges stored as float
        a = a.astype(np.float64)
        top = a.max(initial=0)
        a = a if top <= 1.0 else a / (255.0 if top <= 255 else 65535.0)
    return Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8), "L")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        return _scale_wide(img).convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def image_size(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The oriented (width, height) from the file's header, with the same checks as decoding; raises ImageError."""
    def read() -> tuple[int, int]:
        with _open_checked(os.fspath(path), max_pixels) as img:
            return _oriented_size(img)
    return _within_limit(max_pixels, read)


def load_rgb(path: str | os.PathLike | BinaryIO, size: int | tuple[int, int] | Callable[[int, int], tuple[int, int]] | None,
             max_pixels: int | None = DEFAULT_MAX_PIXELS, draft: bool = True) -> tuple[Image.Image, tuple[int, int]]:
    """Decode to an RGB image resized to size x size, to a (width, height) box, or to the box that a callable
    returns for the oriented (width, height) (a view's layout); None keeps the size. Also returns the
    original oriented size."""
    def box_of(orig: tuple[int, int]):
        return size(*orig) if callable(size) else (size, size) if isinstance(size, int) else size

    def finish(img: Image.Image, orig: tuple[int, int]) -> Image.Image:
        box = box_of(orig)
        return img.resize(tuple(box), Image.BILINEAR) if box and img.size != tuple(box) else img

    return _decode(path, max_pixels, _draft_box(box_of, draft), finish)


def decode_for(path: str | os.PathLike | BinaryIO, box_of: Callable[[int, int], tuple[int, int]],
               max_pixels: int | None = DEFAULT_MAX_PIXELS, draft: bool = True) -> tuple[Image.Image, tuple[int, int]]:
    """Decode to RGB at the smallest JPEG DCT scale that keeps at least the box `box_of(width, height)` gives
    for the oriented size, without resizing; also returns the original oriented size."""
    return _decode(path, max_pixels, _draft_box(lambda orig: box_of(*orig), draft), lambda img, orig: img)


def _draft_box(box_of, draft: bool):
    """draft_box for `_decode`: the box in the file's stored orientation, or None (no DCT scaling)."""
    def draft_box(orig: tuple[int, int], raw: tuple[int, int]):
        box = box_of(orig)
        if not (draft and box):
            return None
        return tuple(box) if raw == orig else tuple(box)[::-1]
    return draft_box


def load_thumbnail(path: str | os.PathLike, max_side: int,
                   max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, tuple[int, int]]:
    """An RGB image fitted inside max_side x max_side (aspect ratio kept, never enlarged), decoded exactly as
    for scoring (EXIF orientation, colour modes, pixel limit), and the original oriented size."""
    def fit(size: tuple[int, int]) -> tuple[int, int]:
        scale = min(1.0, max_side / max(size))
        return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))

    def draft_box(orig: tuple[int, int], raw: tuple[int, int]) -> tuple[int, int]:
        box = fit(orig)  # in the stored (unrotated) orientation, so the DCT shortcut never leaves too few pixels
        return box if raw == orig else box[::-1]

    def finish(img: Image.Image, orig: tuple[int, int]) -> Image.Image:
        box = fit(orig)
        # reducing_gap: a large PNG or TIFF (no draft) is first box-reduced in integer steps: fast, same look
        return img.resize(box, Image.BICUBIC, reducing_gap=2.0) if img.size != box else img

    return _decode(path, max_pixels, draft_box, finish)


def _decode(path: str | os.PathLike | BinaryIO, max_pixels: int | None, draft_box, finish) -> tuple[Image.Image, tuple[int, int]]:
    """Open, check, draft, load, orient, convert to RGB, then finish(img, orig); one-line reasons on failure.

    draft_box: None, a (width, height) box, or draft_box(oriented size, stored size) -> box."""
    path = path if hasattr(path, "read") else os.fspath(path)
    return _within_limit(max_pixels, lambda: _decode_once(path, max_pixels, draft_box, finish))


def _decode_once(path: str | BinaryIO, max_pixels: int | None, draft_box,
                 finish) -> tuple[Image.Image, tuple[int, int]]:
    img = _open_checked(path, max_pixels)
    try:
        with img:
            orig = _oriented_size(img)
            if callable(draft_box):
                draft_box = draft_box(orig, img.size)
            if draft_box and img.format == "JPEG":
                img.draft("RGB", tuple(draft_box))  # DCT scaling: 1/2, 1/4, 1/8, never below the box
            img.load()
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            return finish(img, orig), orig
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(R.PERMISSION_DENIED) from None
    except Image.DecompressionBombError as exc:  # e.g. a GIF frame larger than its header says
        raise _PillowRefused(R.PIXEL_BOMB.format(why=exc)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in msg or isinstance(exc, EOFError):
            raise ImageError(R.TRUNCATED.format(why=msg)) from None
        raise ImageError(R.CANNOT_DECODE.format(why=msg)) from None
    except MemoryError:
        raise ImageError(R.OUT_OF_MEMORY) from None


def decode_uint8(path: str | os.PathLike, size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 draft: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
    """(H x W x 3 uint8 array at size x size, original (width, height))."""
    img, orig = load_rgb(path, size, max_pixels, draft)
    return np.array(img, dtype=np.uint8), orig  # a writable copy for torch.from_numpy


def decode_image(path: str | os.PathLike, size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 draft: bool = True):
    """(3 x size x size float tensor in [0, 1], original (width, height)); raises ImageError."""
    import torch  # the only torch use in this module: discovery and decoding stay torch-free

    arr, orig = decode_uint8(path, size, max_pixels, draft)
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0), orig
