"""Acceptance test of the bundled default model on its 12 test photos, which no training or choice has used.

The photos (`split == test` in tools/default_model/manifest.csv) are fetched as the build fetches them and
brought to about 1024 px; `dpiqa_cli.evaluate.levels` gives each Gaussian blur, Gaussian noise and JPEG at
5 levels. Criteria: per type, the mean per-photo SRCC of score against level is >= 0.90 and at least that of
full-resolution PIQE on the same images; the pristine photo beats its level-3 copy in >= 95 % of cases.
And the native view's reason to exist: mild noise on a large photo is seen.

The scoring tests are marked `acceptance` and left out of the default run until a bundled model meets the
bar: `python -m pytest -m acceptance tests/acceptance`. The manifest check below always runs.
"""
from __future__ import annotations

import pytest

from dpiqa_cli.evaluate.levels import TYPES, piqe_scorer, score_set, summarise, write_level_set
from tools.default_model.fetch import fetch_photos
from tools.default_model.manifest import load_manifest, photos_in
from tools.default_model.references import prepare_eval_photos
from tools.default_model.scorers import checkpoint_scorer
from tools.default_model.view_check import view_check

MIN_SRCC, MIN_PRISTINE_WINS = 0.90, 0.95


@pytest.fixture(scope="module")
def test_photos(tmp_path_factory):
    fetched = fetch_photos(splits=("test",))
    return prepare_eval_photos(fetched, tmp_path_factory.mktemp("test-photos"))


@pytest.fixture(scope="module")
def summaries(test_photos, tmp_path_factory):
    files = write_level_set(test_photos, tmp_path_factory.mktemp("levels"))
    names = list(test_photos)
    return {name: summarise(score_set(files, fn), names)
            for name, fn in (("dpiqa", checkpoint_scorer(None)), ("PIQE", piqe_scorer))}


def test_the_test_photos_are_never_trained_on():
    rows = load_manifest()
    test = photos_in(rows, "test")
    assert len(test) >= 12 and not set(test) & set(photos_in(rows, "train", "val"))


@pytest.mark.acceptance
@pytest.mark.parametrize("dtype", TYPES)
def test_srcc_against_level(summaries, dtype):
    r = summaries["dpiqa"]["per_type"][dtype]
    per_photo = {p: round(v["srcc"], 2) for p, v in r["per_photo"].items()}
    assert r["srcc"] >= MIN_SRCC, f"{dtype}: mean SRCC {r['srcc']:.3f} < {MIN_SRCC} (per photo: {per_photo})"


@pytest.mark.acceptance
@pytest.mark.parametrize("dtype", TYPES)
def test_at_least_as_good_as_piqe(summaries, dtype):
    ours, piqe = (summaries[n]["per_type"][dtype]["srcc"] for n in ("dpiqa", "PIQE"))
    assert ours >= piqe, f"{dtype}: SRCC {ours:.3f} below full-resolution PIQE's {piqe:.3f}"


@pytest.mark.acceptance
def test_pristine_beats_level_3(summaries):
    w = summaries["dpiqa"]["pristine_vs_level3"]
    assert w["rate"] >= MIN_PRISTINE_WINS, f"pristine lost to its level-3 copy in {w['lost']}"


@pytest.mark.acceptance
def test_native_view_sees_mild_noise_on_a_12_mp_photo(test_photos, tmp_path):
    """Clean vs noise of sigma 6 (8-bit), both upscaled to 4000 x 3000: the noisy copy ranks lower, every photo."""
    check = view_check(None, test_photos, tmp_path)
    assert check["lower"]["native"] == check["photos"], check["rows"]["native"]
