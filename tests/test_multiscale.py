"""The multiscale view: a bounded crop budget at any size and aspect ratio, the same crops on every path."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dpiqa_cli.data.views import DETAIL_MIN_SCALE, View, decode_views, view_from_config
from dpiqa_cli.errors import DpiqaError

SIZES = [(1024, 768), (768, 1024), (640, 480), (512, 512), (1600, 1200), (4000, 3000), (6000, 4000), (8660, 5773),
         (12000, 9000), (10000, 300), (300, 10000), (2000, 600), (100, 80), (1536, 1024)]


@pytest.mark.parametrize("native_crops", [0, 1, 2, 3, 4])
def test_the_crop_budget_holds_for_any_size_and_aspect_ratio(native_crops):
    v = View("multiscale", 512, native_crops=native_crops)
    for w, h in SIZES:
        parts = v.parts(w, h)
        assert 1 <= len(parts[0].corners) <= v.look_crops, (w, h)
        assert v.n_crops(w, h) <= v.look_crops + native_crops, (w, h)
        for part in parts:
            pw, ph = part.box
            assert min(pw, ph) >= 512 and len(set(part.corners)) == len(part.corners)
            assert all(0 <= x <= pw - 512 and 0 <= y <= ph - 512 for x, y in part.corners), (w, h, part)
        look = parts[0].box
        assert max(look) <= max(1024, round(512 * max(w, h) / min(w, h)))  # display scale, or one crop high
        if len(parts) == 2:
            assert max(parts[1].box) <= v.max_side and max(parts[1].box) >= DETAIL_MIN_SCALE * max(look)
    assert v.n_crops(8660, 5773) == v.n_crops(4000, 3000)  # a 50 MP photo costs what a 12 MP one does
    assert len(v.parts(1024, 768)) == 1 and v.n_crops(1024, 768) == 4  # a display-size photo: its 4 look crops


def test_a_panorama_keeps_its_whole_length_in_the_look():
    v = View("multiscale", 512)
    (w, h), corners = v.parts(10000, 300)[0].box, v.parts(10000, 300)[0].corners
    assert h == 512 and len(corners) == 4
    xs = [x for x, _ in corners]
    assert xs[0] == 0 and xs[-1] == w - 512 and xs == sorted(xs)  # spread over the whole panorama
    detail = v.parts(10000, 300)
    assert len(detail) == 1  # its own pixels are under the look's scale: no detail crops


def test_detail_crops_are_the_photos_own_pixels_and_decoding_is_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.random((1200, 1600, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    v = View("multiscale", 256, look_side=512, native_crops=2)
    crops, size = decode_views(tmp_path / "a.png", v)
    parts = v.parts(*size)
    assert size == (1600, 1200) and parts[1].box == (1600, 1200) and len(crops) == v.n_crops(*size)
    n_look = len(parts[0].corners)
    for k, (x, y) in enumerate(parts[1].corners):  # no resize: the pixels themselves
        np.testing.assert_array_equal(crops[n_look + k], a[y:y + 256, x:x + 256])
    again, _ = decode_views(tmp_path / "a.png", v)
    np.testing.assert_array_equal(crops, again)


def test_a_large_jpeg_is_decoded_at_the_dct_scale_its_finest_part_needs(tmp_path, monkeypatch):
    from dpiqa_cli.data import views

    path = tmp_path / "big.jpg"
    Image.fromarray((np.random.default_rng(1).random((300, 400, 3)) * 255).astype(np.uint8)).resize(
        (4000, 3000)).save(path, quality=85)
    seen = []
    real = views._cut
    monkeypatch.setattr(views, "_cut", lambda img, part, s: seen.append(img.size) or real(img, part, s))
    crops, size = decode_views(path, View("multiscale", 512, max_side=2000, native_crops=2))
    assert size == (4000, 3000) and set(seen) == {(2000, 1500)}  # 1/2 DCT scale, one decode for both parts
    assert crops.shape == (6, 512, 512, 3)


def test_combine_weighs_the_look_and_the_detail():
    v = View("multiscale", 512, native_crops=2, native_weight=0.25)
    scores = np.array([0.8, 0.8, 0.8, 0.8, 0.4, 0.6])
    assert v.combine(scores, (4000, 3000)) == pytest.approx(0.75 * 0.8 + 0.25 * 0.5)
    assert v.combine(scores[:4], (1024, 768)) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        v.combine(scores)


def test_config_round_trip_and_bad_values():
    v = View("multiscale", 64, max_side=640, combine_rule="q25", look_side=128, look_crops=3, native_crops=1,
             native_weight=0.7)
    assert view_from_config({"view": v.to_config()}, 64) == v
    assert View("multiscale", 512).max_side == 4000 and View("native", 512).max_side == 1024
    for bad in (dict(look_side=32), dict(look_crops=0), dict(native_crops=-1), dict(native_weight=1.5),
                dict(max_side=32)):
        with pytest.raises(DpiqaError):
            View("multiscale", 64, **bad)


def test_every_runtime_scores_the_same_crops(tmp_path, run_cli):
    """torch, ONNX Runtime and the training data cut the same crops and combine them the same way."""
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint
    from dpiqa_cli.train.data import TableDataset

    net = load_model("tiny-student").model.eval()
    view = View("multiscale", 64, max_side=400, look_side=128, native_crops=2, native_weight=0.5)
    ckpt = save_checkpoint(net, tmp_path / "m.safetensors", spec_name="tiny-student", info={"view": view.to_config()})
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(3).random((300, 400, 3)) * 255).astype(np.uint8)).save(img)
    crops, size = decode_views(img, view)
    with torch.inference_mode():
        ref = net(torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0))[0].reshape(-1).numpy()
    expected = view.combine(ref, size)
    assert len(crops) == 4 + 2
    got = {}
    for runtime in ("torch", "onnx"):
        code, out, err = run_cli("score", img, "-w", ckpt, "-j", "0", "-q", "--runtime", runtime)
        assert code == 0, err
        got[runtime] = float(out.splitlines()[1].split(",")[2])
    assert got["torch"] == pytest.approx(expected, abs=1e-6) and got["onnx"] == pytest.approx(expected, abs=1e-5)
    ds = TableDataset([str(img)], [0.5], view)
    items = torch.stack([ds[i]["x"] for i in range(len(ds))])
    np.testing.assert_allclose(items.permute(0, 2, 3, 1).numpy() * 255, crops, atol=1e-3)
    assert ds.per_image(ref) == pytest.approx([expected])


def test_up_to_display_size_the_look_is_the_tiling_views_grid():
    """At <= 1024 px the multiscale view cuts exactly the native (tiling) view's crops and scores them alike."""
    ms, tiles = View("multiscale", 512), View("native", 512, max_side=4000)
    for w, h in ((1024, 768), (768, 1024), (1024, 576), (640, 480), (512, 512), (1000, 1000)):
        assert ms.parts(w, h) == tiles.parts(w, h), (w, h)
        scores = np.linspace(0.2, 0.9, ms.n_crops(w, h))
        assert ms.combine(scores, (w, h)) == tiles.combine(scores, (w, h))
