"""The camera family of the level benchmark (dpiqa_cli.evaluate.camera_levels) and run_level_bench's families."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate import camera_levels as C
from dpiqa_cli.evaluate import levels as L

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two real photos (scikit-image's), about 256 px on the long side."""
    d = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("chelsea", "coffee"):
        img = Image.fromarray(getattr(skimage_data, name)())
        img.thumbnail((256, 256), Image.Resampling.LANCZOS)
        out[name] = d / f"{name}.png"
        img.save(out[name])
    return out


@pytest.fixture(scope="module")
def camera_set(photos, tmp_path_factory):
    return C.write_camera_set(photos, tmp_path_factory.mktemp("set"))


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def _luma(a: np.ndarray) -> np.ndarray:
    return a @ np.array([0.299, 0.587, 0.114])


def _gradient(a: np.ndarray) -> float:
    y = _luma(a)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def test_camera_set_files(photos, camera_set):
    assert len(camera_set) == len(photos) * (1 + len(C.CAMERA_TYPES) * len(C.CAMERA_LEVELS))
    for photo in photos:
        assert camera_set[(photo, "pristine", 0)].name == f"{photo}_pristine_0.png"  # write_level_set's file
        for t in C.CAMERA_TYPES:
            for lv in C.CAMERA_LEVELS:
                f = camera_set[(photo, t, lv)]
                assert f.suffix == (".jpg" if t in ("phone", "blur_noise_jpeg") else ".png")
                with Image.open(f) as im, Image.open(photos[photo]) as src:
                    assert im.size == src.size and im.format == ("JPEG" if f.suffix == ".jpg" else "PNG")


@pytest.mark.parametrize("dtype", C.CAMERA_TYPES)
def test_every_level_changes_the_photo_more_than_the_last(camera_set, photos, dtype):
    for photo in photos:
        clean = _rgb(camera_set[(photo, "pristine", 0)])
        copies = [_rgb(camera_set[(photo, dtype, lv)]) for lv in C.CAMERA_LEVELS]
        rmse = [float(np.sqrt(((c - clean) ** 2).mean())) for c in copies]
        assert rmse[0] > 1.0, (photo, rmse)  # 8-bit levels: level 1 is a real change
        assert all(a < b for a, b in zip(rmse, rmse[1:])), (photo, rmse)
        # ... and the change is the named defect
        g = [_gradient(clean)] + [_gradient(c) for c in copies]
        mean = [_luma(clean).mean()] + [_luma(c).mean() for c in copies]
        if dtype in ("motion_blur", "defocus", "resampled", "haze", "blur_noise_jpeg"):
            assert all(a > b for a, b in zip(g, g[1:])), (photo, g)  # detail lost, level by level
        elif dtype == "oversharpened":
            assert all(a < b for a, b in zip(g, g[1:])), (photo, g)
        elif dtype == "underexposed":
            assert all(a > b for a, b in zip(mean, mean[1:])), (photo, mean)
        elif dtype == "overexposed":
            assert all(a < b for a, b in zip(mean, mean[1:])), (photo, mean)
        if dtype == "haze":
            lows = [np.percentile(_luma(a), 1) for a in [clean] + copies]  # the veil lifts the blacks
            assert all(a < b for a, b in zip(lows, lows[1:])), (photo, lows)


def test_camera_set_is_deterministic_and_seeded_per_photo_and_level(photos, camera_set, tmp_path):
    again = C.write_camera_set(photos, tmp_path / "again")
    assert all(again[k].read_bytes() == camera_set[k].read_bytes() for k in camera_set)
    same = C.write_camera_set({"a": photos["chelsea"], "b": photos["chelsea"]}, tmp_path / "same")
    for t in ("phone", "blur_noise_jpeg", "motion_blur"):  # the random ones: noise draws, streak direction
        assert same[("a", t, 2)].read_bytes() != same[("b", t, 2)].read_bytes()
    assert same[("a", "haze", 2)].read_bytes() == same[("b", "haze", 2)].read_bytes()  # no random part


def test_kernels_cover_their_area():
    for length in C.MOTION_LENGTH:
        for angle in (0.0, 0.4, np.pi / 2, 2.5):
            k = C.streak_kernel(length, angle)
            assert k.sum() == pytest.approx(length, rel=0.03)  # 1 px wide, `length` long
    for radius in C.DEFOCUS_RADIUS:
        assert C.disk_kernel(radius).sum() == pytest.approx(np.pi * radius ** 2, rel=0.05)
    with pytest.raises(ValueError, match="unknown camera distortion"):
        C.camera_distort(Image.new("RGB", (8, 8)), "defocus", 5, "x")


def _fake(photos, sign: float, pristine: float) -> dict:
    s = {(p, t, lv): -sign * lv for p in photos for t in C.CAMERA_TYPES for lv in C.CAMERA_LEVELS}
    s.update({(p, "pristine", 0): pristine for p in photos})
    return s


def test_summarise_camera_perfect_reversed_constant():
    names = ["a", "b"]
    perfect = C.summarise_camera(_fake(names, 1.0, pristine=0.0), names)
    reversed_ = C.summarise_camera(_fake(names, -1.0, pristine=0.0), names)
    flat = C.summarise_camera({k: 0.3 for k in _fake(names, 1.0, 0.0)}, names)
    for t in C.CAMERA_TYPES:
        assert perfect["per_type"][t]["srcc"] == pytest.approx(1.0)
        assert perfect["per_type"][t]["plcc"] == pytest.approx(1.0)
        assert reversed_["per_type"][t]["srcc"] == pytest.approx(-1.0)
        assert flat["per_type"][t]["srcc"] == 0.0 and flat["per_type"][t]["plcc"] == 0.0
    assert perfect["mean_srcc"] == pytest.approx(1.0) and flat["mean_srcc"] == 0.0
    assert perfect["pristine_vs_level2"]["wins"] == perfect["pristine_vs_level2"]["cases"] == 18
    assert reversed_["pristine_vs_level2"]["wins"] == 0 and flat["pristine_vs_level2"]["wins"] == 0  # a tie loses


def test_summarise_camera_counts_the_pristine_copy_as_level_0():
    names = ["a"]
    s = _fake(names, 1.0, pristine=-10.0)  # levels in order, but the pristine copy below all of them
    out = C.summarise_camera(s, names)
    assert out["per_type"]["haze"]["srcc"] == pytest.approx(0.0)  # ranks 5,1,2,3,4 against 5,4,3,2,1
    assert out["pristine_vs_level2"]["wins"] == 0 and "a/haze" in out["pristine_vs_level2"]["lost"]
    s[("a", "defocus", 2)] = -11.0  # pristine now beats defocus level 2 (only)
    w = C.summarise_camera(s, names)["pristine_vs_level2"]
    assert (w["wins"], w["cases"]) == (1, 9) and "a/defocus" not in w["lost"]


def _by_level(paths):  # the level from the file name: a perfect scorer
    return [-float(p.stem.rsplit("_", 1)[1]) for p in paths]


def test_run_level_bench_with_both_families(photos, tmp_path):
    one = {"chelsea": photos["chelsea"]}
    out = L.run_level_bench(one, {"perfect": _by_level, "flat": lambda p: [0.0] * len(p)}, tmp_path / "b",
                            families=("classic", "camera"))
    assert out["perfect"]["per_type"]["blur"]["srcc"] == pytest.approx(1.0)  # the classic summary, as before
    assert out["perfect"]["camera"]["mean_srcc"] == pytest.approx(1.0)
    assert out["perfect"]["pristine_all"] == {"wins": 12, "cases": 12, "rate": 1.0, "lost": []}
    assert out["flat"]["pristine_all"]["wins"] == 0 and len(out["flat"]["pristine_all"]["lost"]) == 12
    data = json.loads((tmp_path / "b" / "levels.json").read_text())
    assert len(data["scores"]["perfect"]) == 1 + 3 * 5 + 9 * 4  # one pristine copy for both families
    assert data["camera_types"] == list(C.CAMERA_TYPES) and data["camera_strengths"]["haze_t"] == list(C.HAZE_T)
    md = (tmp_path / "b" / "levels.md").read_text()
    assert "| jpeg | 1.000 | 1.000 | 0.000 | 0.000 |" in md  # the classic table is still there
    assert "| scorer (SRCC) | motion blur | defocus |" in md and "| scorer (PLCC) |" in md
    assert "| perfect | " + "1.000 | " * 10 + "9/9 (100 %) | 12/12 (100 %) |" in md
    assert "| flat | " + "0.000 | " * 10 + "0/9 (0 %) | 0/12 (0 %) |" in md


def test_run_level_bench_camera_only_and_bad_family(photos, tmp_path):
    one = {"coffee": photos["coffee"]}
    out = L.run_level_bench(one, {"perfect": _by_level}, tmp_path / "c", families=["camera"])
    assert set(out["perfect"]) == {"photos", "camera"}
    assert "| jpeg |" not in (tmp_path / "c" / "levels.md").read_text()
    with pytest.raises(DpiqaError, match="level families must be among classic, camera"):
        L.run_level_bench(one, {"perfect": _by_level}, tmp_path / "d", families=("camera", "lab"))
