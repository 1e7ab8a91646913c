"""Views: the crops a model sees, the same in training, scoring and ONNX; the native view's working scale."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dpiqa_cli.data.views import View, decode_views, view_from_config
from dpiqa_cli.errors import DpiqaError


def test_native_layout_covers_the_image_at_its_own_scale():
    v = View("native", 512)
    assert v.layout(1024, 768) == ((1024, 768), [(0, 0), (512, 0), (0, 256), (512, 256)])
    assert v.layout(512, 512) == ((512, 512), [(0, 0)])
    # past the limit: downscaled to a 1024 long side (a 12 MP and a 24 MP photo give 2 x 2 crops)
    assert v.layout(4000, 3000)[0] == (1024, 768) and len(v.layout(6000, 4000)[1]) == 4
    assert v.layout(3000, 4000)[0] == (768, 1024)
    # under one crop: upscaled until the short side holds one
    assert v.layout(451, 300) == ((770, 512), [(0, 0), (258, 0)])
    (w, h), corners = v.layout(1200, 300)  # a panorama keeps its shape: short side 512, four crops across
    assert (w, h) == (2048, 512) and [x for x, _ in corners] == [0, 512, 1024, 1536]
    for width, height in ((1024, 768), (800, 600), (2000, 700), (640, 427)):
        (w, h), corners = v.layout(width, height)
        covered = np.zeros((h, w), bool)
        for x, y in corners:
            assert 0 <= x <= w - 512 and 0 <= y <= h - 512
            covered[y:y + 512, x:x + 512] = True
        assert covered.all(), (width, height)
    assert v.crops_per_image() is None and View("whole", 512).crops_per_image() == 1


def test_view_config_round_trip_and_bad_values():
    v = View("native", 64, max_side=256, combine_rule="q25")
    assert view_from_config({"view": v.to_config()}, 64) == v
    assert view_from_config({"patches": True}, 64) == View("patches", 64)  # older checkpoints
    assert view_from_config({}, 64) == View("whole", 64)
    assert v.combine(np.array([0.1, 0.5, 0.9, 0.3])) == pytest.approx(np.quantile([0.1, 0.5, 0.9, 0.3], 0.25))
    assert View("native", 64).combine(np.array([0.2, 0.4])) == pytest.approx(0.3)
    for bad in (dict(name="tiles"), dict(name="native", combine_rule="median"), dict(name="native", max_side=32)):
        with pytest.raises(DpiqaError):
            View(size=64, **{"max_side": 1024, **bad})


def test_native_crops_are_the_image_at_its_own_pixels(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.random((150, 200, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    crops, size = decode_views(tmp_path / "a.png", View("native", 64, max_side=256))
    assert size == (200, 150) and crops.shape == (4 * 3, 64, 64, 3)
    np.testing.assert_array_equal(crops[0], a[:64, :64])  # no resize: the pixels themselves
    np.testing.assert_array_equal(crops[-1], a[-64:, -64:])


def test_a_24_mp_jpeg_is_decoded_at_the_working_scale_in_bounded_memory(tmp_path):
    path = tmp_path / "big.jpg"
    rng = np.random.default_rng(1)
    small = Image.fromarray((rng.random((400, 600, 3)) * 255).astype(np.uint8))
    small.resize((6000, 4000), Image.BILINEAR).save(path, quality=90)
    code = (f"import resource; from dpiqa_cli.data.views import View, decode_views\n"
            f"before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"crops, size = decode_views({str(path)!r}, View('native', 512))\n"
            f"after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"print(crops.shape, size, (after - before) / 1024)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    grown_mb = float(r.stdout.split()[-1])
    assert r.stdout.startswith("(4, 512, 512, 3) (6000, 4000)"), r.stdout
    assert grown_mb < 40, f"decoding grew the process by {grown_mb:.0f} MB (a full decode is 72 MB of pixels)"


def test_training_items_are_the_view_crops_and_validation_combines_them(tmp_path):
    from dpiqa_cli.train.data import TableDataset

    rng = np.random.default_rng(2)
    paths = []
    for i, (w, h) in enumerate(((128, 96), (64, 64))):
        p = tmp_path / f"{i}.png"
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(p)
        paths.append(str(p))
    view = View("native", 64, max_side=128)
    val = TableDataset(paths, [0.3, 0.8], view)
    assert len(val) == 4 + 1 and val.item_image.tolist() == [0, 0, 0, 0, 1]
    crops, _ = decode_views(paths[0], view)
    for k in range(4):
        np.testing.assert_allclose(val[k]["x"].permute(1, 2, 0).numpy() * 255, crops[k], atol=1e-3)
    assert float(val[2]["y"]) == pytest.approx(0.3) and float(val[4]["y"]) == pytest.approx(0.8)
    np.testing.assert_allclose(val.per_image(np.array([0.1, 0.2, 0.3, 0.4, 0.9])), [0.25, 0.9])
    train = TableDataset(paths, [0.3, 0.8], view, train=True, seed=5)
    firsts = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        x = train[0]["x"]
        assert x.shape == (3, 64, 64) and torch.equal(x, train[0]["x"])  # seeded per (epoch, item)
        firsts.add(x.sum().item())
    assert len(firsts) > 1  # training draws crop positions (and flips); validation keeps the grid


def test_score_and_onnx_use_the_checkpoints_native_view(tmp_path, run_cli):
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    net = load_model("tiny-student").model.eval()
    view = View("native", 64, max_side=128)
    ckpt = save_checkpoint(net, tmp_path / "n.safetensors", spec_name="tiny-student", info={"view": view.to_config()})
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(3).random((90, 120, 3)) * 255).astype(np.uint8)).save(img)
    code, out, err = run_cli("score", img, "-w", ckpt, "-j", "0", "-q")
    assert code == 0, err
    got = float(out.splitlines()[1].split(",")[2])
    crops, _ = decode_views(img, view)
    with torch.inference_mode():
        ref = net(torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0))[0].reshape(-1)
    assert len(crops) == 4 and got == pytest.approx(float(ref.mean()), abs=1e-6)
    code, _, err = run_cli("export", "-w", ckpt, "-o", tmp_path / "n.onnx")
    assert code == 2 and "would overwrite the checkpoint config" in err  # n.json is the checkpoint's own
    code, _, err = run_cli("export", "-w", ckpt, "-o", tmp_path / "e.onnx")
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["view"] == view.to_config()
    code, out, err = run_cli("score", img, "-m", tmp_path / "e.onnx", "-j", "0", "-q")
    assert code == 0, err
    assert float(out.splitlines()[1].split(",")[2]) == pytest.approx(got, abs=1e-5)


def test_score_max_side_replaces_the_native_limit(tmp_path, run_cli):
    """`--max-side` cuts the crops of the native view with another limit, on torch and ONNX alike, and a
    resumed run can tell the two apart; it is refused for a whole-view model and under the crop size."""
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint
    from dpiqa_cli.models.resolve import resolve_model

    net = load_model("tiny-student").model.eval()
    ckpt = save_checkpoint(net, tmp_path / "n.safetensors", spec_name="tiny-student",
                           info={"view": View("native", 64, max_side=128).to_config()})
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(3).random((90, 120, 3)) * 255).astype(np.uint8)).save(img)
    scores = {}
    for limit in (None, 64):
        extra = [] if limit is None else ["--max-side", str(limit)]
        code, out, err = run_cli("score", img, "-w", ckpt, "-j", "0", "-q", "--runtime", "torch", *extra)
        assert code == 0, err
        scores[limit] = float(out.splitlines()[1].split(",")[2])
    crops, _ = decode_views(img, View("native", 64, max_side=64))
    with torch.inference_mode():
        ref = net(torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0))[0].reshape(-1)
    assert len(crops) == 2 and scores[64] == pytest.approx(float(ref.mean()), abs=1e-6)
    assert scores[64] != pytest.approx(scores[None], abs=1e-6)  # 2 crops of a 85 x 64 resize, not 4 of 128 x 96
    code, _, err = run_cli("export", "-w", ckpt, "-o", tmp_path / "e.onnx")
    assert code == 0, err
    code, out, err = run_cli("score", img, "-m", tmp_path / "e.onnx", "-j", "0", "-q", "--max-side", "64")
    assert code == 0, err
    assert float(out.splitlines()[1].split(",")[2]) == pytest.approx(scores[64], abs=1e-5)
    assert resolve_model(str(ckpt), max_side=64).identity["view"] != resolve_model(str(ckpt)).identity["view"]
    whole = save_checkpoint(net, tmp_path / "w.safetensors", spec_name="tiny-student", info={"view": {"name": "whole"}})
    for args, words in ((["-w", whole, "--max-side", "256"], "native and multiscale views only"),
                        (["-w", ckpt, "--max-side", "32"], "under the crop size")):
        code, out, err = run_cli("score", img, "-j", "0", "-q", *args)
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ") and words in err, err
