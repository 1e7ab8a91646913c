"""The pixel limit is per call: a decompression bomb is refused with one line, --max-pixels 0 lifts every
limit, and Pillow's process-wide Image.MAX_IMAGE_PIXELS is the same after any call as before it."""
from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from dpiqa_cli.data.images import ImageError, image_size, load_rgb


def _png_header(path, w: int, h: int) -> None:
    """A PNG whose header claims w x h pixels (its data is a few bytes): Pillow opens it without decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_a_bomb_is_refused_with_one_line_and_0_lifts_the_limit(tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_header(bomb, 20_000, 20_000)  # 400 MP: above our default limit and twice Pillow's
    before = Image.MAX_IMAGE_PIXELS
    for limit in (100_000_000, 500_000_000 // 2):
        with pytest.raises(ImageError) as exc:
            load_rgb(bomb, 32, max_pixels=limit)
        assert str(exc.value).startswith("too many pixels") and "\n" not in str(exc.value)
    assert image_size(bomb, max_pixels=None) == (20_000, 20_000)  # --max-pixels 0: no limit, Pillow's included
    assert image_size(bomb, max_pixels=500_000_000) == (20_000, 20_000)  # a limit above Pillow's replaces it
    assert Image.MAX_IMAGE_PIXELS == before


@pytest.mark.parametrize("limit,decoded", [(None, True), (50_000, True), (5_000, False), (500, False)])
def test_the_calls_limit_decides_and_pillows_is_restored(tmp_path, monkeypatch, limit, decoded):
    # Pillow's limit made small, so that an ordinary image stands for a bomb it refuses: a higher limit of
    # the call's own decodes it, a lower one refuses it, and Pillow's stays as it was either way.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    Image.new("RGB", (100, 80), "blue").save(tmp_path / "a.png")  # 8,000 px: above twice Pillow's 1,000
    if decoded:
        img, orig = load_rgb(tmp_path / "a.png", 32, max_pixels=limit)
        assert img.size == (32, 32) and orig == (100, 80)
        assert image_size(tmp_path / "a.png", max_pixels=limit) == (100, 80)
    else:
        with pytest.raises(ImageError, match="too many pixels"):
            load_rgb(tmp_path / "a.png", 32, max_pixels=limit)
    assert Image.MAX_IMAGE_PIXELS == 1_000


def test_concurrent_calls_with_different_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    Image.new("RGB", (100, 80), "blue").save(tmp_path / "a.png")
    limits = [None, 50_000, 5_000, 500] * 25

    def one(limit):
        try:
            return load_rgb(tmp_path / "a.png", 16, max_pixels=limit)[1]
        except ImageError:
            return None

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, limits))
    assert got == [(100, 80) if limit is None or limit >= 8_000 else None for limit in limits]
    assert Image.MAX_IMAGE_PIXELS == 1_000


def test_score_max_pixels_0_scores_what_pillow_refuses(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    Image.new("RGB", (100, 80), "blue").save(tmp_path / "a.png")
    out = tmp_path / "s.csv"
    code, _, err = run_cli("score", tmp_path / "a.png", "-m", "tiny-student", "--device", "cpu", "--workers", "0",
                           "--max-pixels", "0", "-o", out, "-q")
    assert code == 0, err
    assert out.read_text().count("a.png") == 1 and not (tmp_path / "s.errors.csv").exists()
    assert Image.MAX_IMAGE_PIXELS == 1_000
