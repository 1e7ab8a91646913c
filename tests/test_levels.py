"""The level-ranking benchmark (dpiqa_cli.evaluate.levels) on small generated images."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate import levels as L


def natural_like(seed: int = 0, size: int = 128) -> Image.Image:
    """A random field with a 1/f amplitude spectrum, as natural photos have, tinted: PIQE finds it clean."""
    rng = np.random.default_rng(seed)
    f = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2)
    y = np.real(np.fft.ifft2(np.exp(2j * np.pi * rng.random((size, size))) / np.maximum(f, 1 / size)))
    y = (y - y.min()) / np.ptp(y) * 255
    return Image.fromarray(np.clip(y[..., None] * rng.uniform(0.6, 1.0, 3), 0, 255).astype(np.uint8))


@pytest.fixture
def photos(tmp_path):
    out = {}
    for i, name in enumerate(("alpha", "beta")):
        out[name] = tmp_path / f"{name}.png"
        natural_like(i).save(out[name])
    return out


def _gradient(path) -> float:
    y = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def test_level_set_files_and_monotone_distortions(photos, tmp_path):
    files = L.write_level_set(photos, tmp_path / "set")
    assert len(files) == len(photos) * (1 + len(L.TYPES) * len(L.LEVELS))
    for photo in photos:
        assert files[(photo, "pristine", 0)].suffix == ".png"
        assert all(files[(photo, "jpeg", lv)].suffix == ".jpg" for lv in L.LEVELS)
        clean = _rgb(files[(photo, "pristine", 0)])
        blur = [_gradient(files[(photo, "blur", lv)]) for lv in L.LEVELS]
        noise = [np.std(_rgb(files[(photo, "noise", lv)]) - clean) for lv in L.LEVELS]
        size = [files[(photo, "jpeg", lv)].stat().st_size for lv in L.LEVELS]
        assert _gradient(files[(photo, "pristine", 0)]) > blur[0]
        assert all(a > b for a, b in zip(blur, blur[1:])), blur
        assert all(a < b for a, b in zip(noise, noise[1:])), noise
        assert all(a > b for a, b in zip(size, size[1:])), size


def test_noise_is_seeded_per_photo_and_level(photos, tmp_path):
    a = L.write_level_set(photos, tmp_path / "a")
    b = L.write_level_set(photos, tmp_path / "b")
    assert a[("alpha", "noise", 2)].read_bytes() == b[("alpha", "noise", 2)].read_bytes()
    same = {"alpha": photos["alpha"], "alpha2": photos["alpha"]}
    c = L.write_level_set(same, tmp_path / "c")
    assert c[("alpha", "noise", 2)].read_bytes() != c[("alpha2", "noise", 2)].read_bytes()
    assert c[("alpha", "noise", 2)].read_bytes() != c[("alpha", "noise", 3)].read_bytes()


def _fake_scores(photos, sign: float, pristine: float) -> dict:
    s = {(p, t, lv): -sign * lv for p in photos for t in L.TYPES for lv in L.LEVELS}
    s.update({(p, "pristine", 0): pristine for p in photos})
    return s


def test_summarise_perfect_reversed_and_constant():
    names = ["a", "b", "c"]
    perfect = L.summarise(_fake_scores(names, 1.0, pristine=1.0), names)
    reversed_ = L.summarise(_fake_scores(names, -1.0, pristine=-100.0), names)
    for t in L.TYPES:
        assert perfect["per_type"][t]["srcc"] == pytest.approx(1.0)
        assert perfect["per_type"][t]["plcc"] == pytest.approx(1.0)
        assert reversed_["per_type"][t]["srcc"] == pytest.approx(-1.0)
        assert set(perfect["per_type"][t]["per_photo"]) == set(names)
    assert perfect["pristine_vs_level3"] == {"wins": 9, "cases": 9, "rate": 1.0, "lost": []}
    assert reversed_["pristine_vs_level3"]["wins"] == 0 and len(reversed_["pristine_vs_level3"]["lost"]) == 9
    flat = L.summarise({k: 0.5 for k in _fake_scores(names, 1.0, 1.0)}, names)
    assert flat["per_type"]["blur"]["srcc"] == 0.0 and flat["pristine_vs_level3"]["wins"] == 0  # a tie is lost


def test_pristine_counts_each_case():
    names = ["a", "b"]
    s = _fake_scores(names, 1.0, pristine=-3.5)  # above level 4 (-4), below level 3 (-3): loses every case
    s[("a", "blur", 3)] = -10.0  # ... except a/blur
    w = L.summarise(s, names)["pristine_vs_level3"]
    assert (w["wins"], w["cases"]) == (1, 6) and "a/blur" not in w["lost"] and "b/jpeg" in w["lost"]


def test_piqe_ranks_strong_noise_below_clean(photos, tmp_path):
    files = L.write_level_set({"alpha": photos["alpha"]}, tmp_path / "set")
    clean, noisy = L.piqe_scorer([files[("alpha", "pristine", 0)], files[("alpha", "noise", 5)]])
    assert -100.0 <= noisy < clean <= 0.0


def test_run_level_bench_writes_json_and_table(photos, tmp_path):
    def by_level(paths):  # reads the level back from the file name: a perfect scorer
        return [-float(p.stem.rsplit("_", 1)[1]) for p in paths]

    out = L.run_level_bench(photos, {"perfect": by_level, "flat": lambda paths: [0.0] * len(paths)}, tmp_path / "bench")
    assert out["perfect"]["per_type"]["jpeg"]["srcc"] == pytest.approx(1.0)
    data = json.loads((tmp_path / "bench" / "levels.json").read_text())
    assert set(data["summaries"]) == {"perfect", "flat"} and len(data["scores"]["flat"]) == 32
    table = (tmp_path / "bench" / "levels.md").read_text()
    assert "| perfect SRCC | perfect PLCC | flat SRCC | flat PLCC |" in table
    assert "| jpeg | 1.000 | 1.000 | 0.000 | 0.000 |" in table and "| pristine > level 3 | 6/6 (100 %)" in table


def test_wrong_number_of_scores_and_unreadable_photo(photos, tmp_path):
    with pytest.raises(DpiqaError, match="returned 1 scores"):
        L.run_level_bench(photos, {"short": lambda paths: [0.0]}, tmp_path / "bench")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DpiqaError, match="cannot read level photo bad"):
        L.write_level_set({"bad": bad}, tmp_path / "x")
