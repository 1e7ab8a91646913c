"""`dpiqa synth`: types and levels, determinism, labels, the CSV, the FR measure and CLI errors.

Everything runs on two 96x64 crops of scikit-image photos, in-process (workers=0), in a few seconds.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from usage_checks import usage_error

from dpiqa_cli.data import distortions as D
from dpiqa_cli.data.fr_quality import color_ms_ssim, ms_ssim
from dpiqa_cli.data.synth import synthesize

REQUIRED = {"gaussian_blur", "motion_blur", "defocus_blur", "white_noise", "impulse_noise", "jpeg", "jpeg2000",
            "overexposure", "underexposure", "contrast_decrease", "saturation_decrease", "color_quantization",
            "pixelate", "camera_noise", "camera_chain"}


def _photo(name: str, size=(96, 64)) -> np.ndarray:
    import skimage.data

    return np.asarray(Image.fromarray(getattr(skimage.data, name)()).resize(size, Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    Image.fromarray(_photo("coffee")).save(d / "coffee.png")
    Image.fromarray(_photo("chelsea")).save(d / "chelsea.jpg", quality=95)
    return d


@pytest.fixture(scope="module")
def synth_run(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, synthesize(src, out, seed=0, workers=0)


def test_types_and_levels(synth_run):
    out, df = synth_run
    assert len(D.DISTORTIONS) >= 15 and REQUIRED <= set(D.DISTORTIONS)
    dist = df[df.type != "pristine"]
    grid = dist.groupby(["ref", "type"])["level"].apply(sorted)
    assert set(dist.type) == set(D.DISTORTIONS)
    assert all(levels == [1, 2, 3, 4, 5] for levels in grid)
    assert len(df) == 2 * (len(D.DISTORTIONS) * 5 + 1)
    pristine = df[df.type == "pristine"]
    assert sorted(pristine.path) == ["refs/chelsea.png", "refs/coffee.png"] and (pristine.mos == 1.0).all()
    assert "images/coffee_jpeg_3.png" in set(df.path)
    for p in df.path:
        with Image.open(out / p) as im:
            assert im.format == "PNG" and im.size == (96, 64) and im.mode == "RGB"


def test_labels_are_each_images_ms_ssim_monotone_in_level(synth_run):
    _, df = synth_run
    assert df.mos.between(0.0, 1.0).all() and df.fr.between(0.0, 1.0).all()
    dist = df[df.type != "pristine"]
    for (ref, dtype), grp in dist.groupby(["ref", "type"]):
        grp = grp.sort_values("level")
        own = np.clip(2.0 * grp["fr"].to_numpy() - 1.0, 0.0, 1.0)
        np.testing.assert_allclose(grp["mos"], np.minimum.accumulate(own), atol=2e-6)  # rounded to 6 decimals
        assert grp["mos"].is_monotonic_decreasing, f"{ref} {dtype}: label rises with level"
    # per image, not per condition: the two references get different labels for the same type and level
    assert (dist.groupby(["type", "level"])["mos"].nunique() > 1).any()
    # the FR measure itself falls with level for the classic types, before any monotone fix-up
    for dtype in ("gaussian_blur", "white_noise", "jpeg"):
        fr = df[df.type == dtype].groupby("level")["fr"].mean()
        assert (np.diff(fr.to_numpy()) < 0).all(), dtype


def test_condition_labels_are_one_per_type_and_level(src, tmp_path):
    df = synthesize(src, tmp_path / "c", seed=0, types="gaussian_blur,jpeg,pixelate", workers=0, label="condition")
    for dtype, grp in df[df.type != "pristine"].groupby("type"):
        by_level = grp.groupby("level")["mos"].agg(["min", "max"])
        assert (by_level["min"] == by_level["max"]).all(), f"{dtype}: one label per (type, level)"
        assert by_level["min"].is_monotonic_decreasing, f"{dtype}: label rises with level"
        assert by_level["min"].iloc[0] < 1.0
    assert json.loads((tmp_path / "c" / "synth.json").read_text())["label_kind"] == "condition"


def test_mixed_labels_are_half_image_half_condition(src, synth_run, tmp_path):
    _, image = synth_run  # same source, seed and types: the same images and per-image labels
    mixed = synthesize(src, tmp_path / "m", seed=0, workers=0, label="mixed")
    assert (mixed[["path", "fr"]].to_numpy() == image[["path", "fr"]].to_numpy()).all()
    own = image["mos"].to_numpy()
    mean = image.groupby(["type", "level"])["mos"].transform("mean").to_numpy()
    np.testing.assert_allclose(mixed["mos"], 0.5 * own + 0.5 * mean, atol=2e-6)
    assert (mixed.loc[mixed.type == "pristine", "mos"] == 1.0).all()
    dist = mixed[mixed.type != "pristine"]
    for (ref, dtype), grp in dist.groupby(["ref", "type"]):
        assert grp.sort_values("level")["mos"].is_monotonic_decreasing, f"{ref} {dtype}: label rises with level"
    assert (dist.groupby(["type", "level"])["mos"].nunique() > 1).any()  # still per image
    assert json.loads((tmp_path / "m" / "synth.json").read_text())["label_kind"] == "mixed"


def test_tone_labels_see_colour_and_exposure_shifts_that_ms_ssim_misses(src, synth_run, tmp_path):
    _, image = synth_run
    tone = synthesize(src, tmp_path / "t", seed=0, workers=0, label="tone",
                      types="color_cast,underexposure,gaussian_blur")
    assert (tone.loc[tone.type == "pristine", "mos"] == 1.0).all() and (tone.loc[tone.type == "pristine", "de"] == 0).all()
    both = tone.merge(image[["path", "mos"]], on="path", suffixes=("", "_image"))
    dist = both[both.type != "pristine"]
    assert (dist["mos"] <= dist["mos_image"] + 1e-6).all()  # the tone factor only lowers a label
    cast = dist[(dist.type == "color_cast") & (dist.level == 5)]
    blur = dist[(dist.type == "gaussian_blur") & (dist.level == 5)]
    assert (cast["mos_image"] - cast["mos"]).min() > 0.1  # a strong cast: MS-SSIM alone keeps it near clean
    assert (blur["mos_image"] - blur["mos"]).max() < 0.05  # blur barely moves the block means
    for (ref, dtype), grp in dist.groupby(["ref", "type"]):
        assert grp.sort_values("level")["mos"].is_monotonic_decreasing, f"{ref} {dtype}: label rises with level"


def test_camera_types_worsen_with_level():
    img = _photo("coffee")
    for name in D.CAMERA_TYPES:
        assert name in D.DISTORTIONS
        q = [color_ms_ssim(img, D.apply(name, img, lv, 5, np.random.default_rng(7))) for lv in (1, 3, 5)]
        assert q[0] > q[2] and q[0] < 1.0, (name, q)


def test_types_per_reference_are_drawn_per_reference(tmp_path):
    from dpiqa_cli.data.synth import types_of_reference

    names = list(D.DISTORTIONS)
    always = ["gaussian_blur", "white_noise", "jpeg"]
    draws = {ref: types_of_reference(names, ref, 0, 6, always) for ref in (f"r{i}" for i in range(12))}
    for ref, got in draws.items():
        assert len(got) == 6 and set(always) <= set(got) and got == [t for t in names if t in got]
        assert got == types_of_reference(names, ref, 0, 6, always)  # seeded by the reference's name
    assert len({tuple(t) for t in draws.values()}) > 6  # references differ in what they get
    assert types_of_reference(names, "r0", 0, None, always) == names
    src = tmp_path / "src"
    src.mkdir()
    for i, name in enumerate(("coffee", "chelsea", "astronaut")):
        Image.fromarray(_photo(name, (48, 40))).save(src / f"p{i}.png")
    df = synthesize(src, tmp_path / "o", seed=0, levels=2, workers=0, per_ref=4, always="jpeg")
    per_ref = df[df.type != "pristine"].groupby("ref")["type"].unique()
    assert all(len(t) == 4 and "jpeg" in t for t in per_ref) and len(df) == 3 * (4 * 2 + 1)


def test_deterministic_per_seed(src, synth_run, tmp_path):
    out, df = synth_run
    again = synthesize(src, tmp_path / "a", seed=0, workers=0)
    assert (tmp_path / "a" / "synth.csv").read_bytes() == (out / "synth.csv").read_bytes()
    pd.testing.assert_frame_equal(again, df)
    for p in df.path:
        assert (tmp_path / "a" / p).read_bytes() == (out / p).read_bytes(), p
    other = synthesize(src, tmp_path / "b", seed=1, types="white_noise,motion_blur", workers=0)
    for p in other.path[other.type == "white_noise"]:
        assert (tmp_path / "b" / p).read_bytes() != (out / p).read_bytes(), "the seed changes the noise"


def test_same_result_with_worker_processes(src, synth_run, tmp_path):
    out, _ = synth_run
    df = synthesize(src, tmp_path / "w", seed=0, types=["white_noise"], workers=2)
    for p in df.path[df.type == "white_noise"]:
        assert (tmp_path / "w" / p).read_bytes() == (out / p).read_bytes()


def test_csv_and_metadata(synth_run):
    out, df = synth_run
    csv = pd.read_csv(out / "synth.csv")
    assert list(csv.columns[:5]) == ["path", "mos", "ref", "type", "level"]
    assert len(csv) == len(df) and csv.mos.between(0, 1).all()
    assert all((out / p).is_file() for p in csv.path) and all((out / r).is_file() for r in csv.ref)
    meta = json.loads((out / "synth.json").read_text())
    assert meta["seed"] == 0 and meta["levels"] == 5 and meta["types"] == list(D.DISTORTIONS)
    assert "MS-SSIM" in meta["label"] and "MS-SSIM" in (out / "README.md").read_text()


def test_distortions_are_pure_functions():
    img = _photo("astronaut", (80, 80))
    before = img.copy()
    for name in D.DISTORTIONS:
        a = D.apply(name, img, 3, 5, np.random.default_rng(7))
        b = D.apply(name, img, 3, 5, np.random.default_rng(7))
        assert a.dtype == np.uint8 and a.shape == img.shape
        assert np.array_equal(a, b), name
        assert not np.array_equal(a, img), f"{name} left the image unchanged"
    assert np.array_equal(img, before)


def test_compressed_types_carry_codec_artefacts():
    img = _photo("chelsea", (128, 96))
    out = D.apply("jpeg", img, 5, 5, np.random.default_rng(0))
    # quality-4 JPEG: 8x8 blocks, so pixel differences jump at block edges more than inside blocks
    g = out.astype(float).mean(axis=2)
    dx = np.abs(np.diff(g, axis=1)).mean(axis=0)
    assert dx[7::8].mean() > 1.5 * np.delete(dx, np.s_[7::8]).mean()


def test_ms_ssim_reference_values():
    from scipy import ndimage
    from skimage.metrics import structural_similarity

    x = _photo("coffee", (200, 180)).mean(axis=2) / 255.0
    y = ndimage.gaussian_filter(x, 1.5)
    ref = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ms_ssim(x, y, max_scales=1) == pytest.approx(ref, abs=1e-9)  # one scale is plain SSIM
    assert ms_ssim(x, x) == pytest.approx(1.0)
    assert 0.0 < ms_ssim(x, ndimage.gaussian_filter(x, 3)) < ms_ssim(x, y) < 1.0
    rgb = _photo("coffee", (200, 180))
    assert color_ms_ssim(rgb, rgb) == pytest.approx(1.0)
    gray = np.repeat(rgb.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert color_ms_ssim(rgb, gray) < 0.99  # chroma planes make colour loss visible to the measure


def test_max_strength_continues_past_the_fifth_anchor(src, tmp_path):
    assert D._p([0.7, 1.3, 2.2, 3.5, 5.5], 1.5) == pytest.approx(9.5)  # the last segment, twice more
    assert D._p([45, 28, 15, 8, 4], 1.5, lo=1) == 1  # kept in the type's valid range
    img = _photo("astronaut", (64, 64))
    for name in D.DISTORTIONS:  # every type stays a valid image at the stretched levels
        for level in range(1, 8):
            out = D.apply(name, img, level, 7, np.random.default_rng(0), max_strength=1.5)
            assert out.shape == img.shape and out.dtype == np.uint8
    df = synthesize(src, tmp_path / "s", types="gaussian_blur,white_noise", levels=7, max_strength=1.5, workers=0)
    for _, grp in df[df.type != "pristine"].groupby(["ref", "type"]):
        fr = grp.sort_values("level")["fr"].to_numpy()
        assert len(fr) == 7 and fr[-1] < fr[4] < fr[0]  # level 7 is stronger than level 5, the old maximum
    assert json.loads((tmp_path / "s" / "synth.json").read_text())["max_strength"] == 1.5
    # 7 levels to 1.5 step by a quarter, as 5 levels to 1 do: their first five are the default's five
    five = synthesize(src, tmp_path / "f", types="gaussian_blur", levels=5, workers=0)
    blur = df[(df.type == "gaussian_blur") & (df.level <= 5)]
    assert blur.set_index(["ref", "level"])["fr"].equals(five[five.type != "pristine"].set_index(["ref", "level"])["fr"])


@pytest.mark.parametrize("args, needle", [
    (["{missing}", "{out}"], "source folder not found"),
    (["{empty}", "{out}"], "no images"),
    (["{src}", "{out}", "--types", "jpeg,sepia"], "unknown distortion type 'sepia'"),
    (["{src}", "{out}", "--levels", "0"], "--levels"),
    (["{src}", "{out}", "--size", "8"], "--size"),
    (["{src}", "{out}", "--label", "mean"], "--label"),
    (["{src}", "{out}", "--per-ref", "1", "--always", "jpeg,pixelate"], "--per-ref"),
    (["{src}", "{out}", "--per-ref", "3", "--always", "sepia"], "unknown distortion type 'sepia'"),
    (["{src}", "{out}", "--max-strength", "0"], "--max-strength"),
    (["{src}", "{out}", "--max-strength", "strong"], ("invalid value", "--max-strength")),  # click's words
])
def test_cli_errors(run_cli, src, tmp_path, args, needle):
    (tmp_path / "empty").mkdir()
    fill = dict(missing=tmp_path / "nope", empty=tmp_path / "empty", src=src, out=tmp_path / "out")
    code, _, err = run_cli("synth", *[a.format(**fill) for a in args])
    usage_error(code, err, *((needle,) if isinstance(needle, str) else needle))


def test_cli_writes_dataset(run_cli, src, tmp_path):
    code, out, _ = run_cli("-q", "synth", src, tmp_path / "o", "--types", "jpeg,pixelate", "--levels", "3",
                           "--size", "48", "--workers", "0", "--seed", "3")
    assert code == 0 and "wrote" in out
    df = pd.read_csv(tmp_path / "o" / "synth.csv")
    assert len(df) == 2 * (2 * 3 + 1) and set(df.level) == {0, 1, 2, 3}
    with Image.open(tmp_path / "o" / "refs" / "coffee.png") as im:
        assert min(im.size) == 48  # --size downscales the shorter side
